// RUN: kiln-opt %s --pass-pipeline='kiln-expand-dynamic-reshapes,canonicalize' --split-input-file | filecheck %s

// [B*S, N] -> [B, S, N] by a shape tensor becomes an expand_shape; the GELU-like generic after
// it runs on [B*S, N] and the collapse back to [B*S, N] before the next linear folds away.
// CHECK-LABEL: func.func @split_then_elementwise
//  CHECK-SAME:   (%[[X:[a-z0-9]+]]: tensor<?x16xf32>
//       CHECK:   %[[G:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]} ins(%[[X]], %{{.+}} : tensor<?x16xf32>, tensor<16xf32>) outs(%{{.+}} : tensor<?x16xf32>)
//       CHECK:     math.tanh
//   CHECK-NOT:   tensor.reshape
//   CHECK-NOT:   tensor.expand_shape
//   CHECK-NOT:   tensor.collapse_shape
//       CHECK:   return %[[G]] : tensor<?x16xf32>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#col3 = affine_map<(d0, d1, d2) -> (d2)>
func.func @split_then_elementwise(%x: tensor<?x16xf32>, %b: i64, %s: i64) -> tensor<?x16xf32> {
  %c16 = arith.constant 16 : i64
  %bias = arith.constant dense<0.5> : tensor<16xf32>
  %shape = tensor.from_elements %b, %s, %c16 : tensor<3xi64>
  %r = tensor.reshape %x(%shape) : (tensor<?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %d0 = tensor.dim %r, %c0 : tensor<?x?x16xf32>
  %d1 = tensor.dim %r, %c1 : tensor<?x?x16xf32>
  %e = tensor.empty(%d0, %d1) : tensor<?x?x16xf32>
  %g = linalg.generic {indexing_maps = [#id3, #col3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %bias : tensor<?x?x16xf32>, tensor<16xf32>) outs(%e : tensor<?x?x16xf32>) {
  ^bb0(%in: f32, %v: f32, %out: f32):
    %a = arith.addf %in, %v : f32
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  } -> tensor<?x?x16xf32>
  %c = tensor.collapse_shape %g [[0, 1], [2]] : tensor<?x?x16xf32> into tensor<?x16xf32>
  return %c : tensor<?x16xf32>
}

// -----

// A reshape that does not split one dynamic dim in two is left alone.
// CHECK-LABEL: func.func @other_reshape
//       CHECK:   tensor.reshape
func.func @other_reshape(%x: tensor<?x16xf32>, %b: i64) -> tensor<?x4x4xf32> {
  %c4 = arith.constant 4 : i64
  %shape = tensor.from_elements %b, %c4, %c4 : tensor<3xi64>
  %r = tensor.reshape %x(%shape) : (tensor<?x16xf32>, tensor<3xi64>) -> tensor<?x4x4xf32>
  return %r : tensor<?x4x4xf32>
}

// -----

// A shape of index values is used as it is (no cast).
// CHECK-LABEL: func.func @index_shape
//       CHECK:   tensor.expand_shape %arg0 {{\[}}[0, 1], [2]] output_shape [%arg1, %arg2, 16]
//   CHECK-NOT:   tensor.reshape
func.func @index_shape(%x: tensor<?x16xf32>, %b: index, %s: index) -> tensor<?x?x16xf32> {
  %c16 = arith.constant 16 : index
  %shape = tensor.from_elements %b, %s, %c16 : tensor<3xindex>
  %r = tensor.reshape %x(%shape) : (tensor<?x16xf32>, tensor<3xindex>) -> tensor<?x?x16xf32>
  return %r : tensor<?x?x16xf32>
}
