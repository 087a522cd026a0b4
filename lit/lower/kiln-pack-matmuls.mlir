// RUN: kiln-opt %s --kiln-pack-matmuls --split-input-file | filecheck %s
// RUN: kiln-opt %s --kiln-pack-matmuls --split-input-file --target cpu --target cuda | filecheck %s --check-prefix=GPU

// A matmul from zeros: both operands packed (6x1 and 16x1 tiles, 128 rows padded to 22 x 6),
// a 6x16x1 mmt4d from a packed fill, the result unpacked.
// CHECK-LABEL: func.func @matmul
//       CHECK:   %[[A:.+]] = linalg.pack %arg0 padding_value(%{{.+}} : f32) inner_dims_pos = [0, 1] inner_tiles = [6, 1] into %{{.+}} : tensor<128x64xf32> -> tensor<22x64x6x1xf32>
//       CHECK:   %[[B:.+]] = linalg.pack %{{.+}} padding_value(%{{.+}} : f32) outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [16, 1] into %{{.+}} : tensor<64x32xf32> -> tensor<2x64x16x1xf32>
//       CHECK:   %[[C:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<22x2x6x16xf32>)
//       CHECK:   %[[R:.+]] = linalg.mmt4d ins(%[[A]], %[[B]] : tensor<22x64x6x1xf32>, tensor<2x64x16x1xf32>) outs(%[[C]] : tensor<22x2x6x16xf32>)
//       CHECK:   %[[U:.+]] = linalg.unpack %[[R]] inner_dims_pos = [0, 1] inner_tiles = [6, 16] into %{{.+}} : tensor<22x2x6x16xf32> -> tensor<128x32xf32>
//       CHECK:   return %[[U]]
//   CHECK-NOT:   linalg.matmul
// GPU-LABEL: func.func @matmul
//       GPU:   linalg.matmul
//   GPU-NOT:   linalg.mmt4d
func.func @matmul(%a: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w = arith.constant dense<1.0> : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<128x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<128x32xf32>) -> tensor<128x32xf32>
  %y = linalg.matmul ins(%a, %w : tensor<128x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  return %y : tensor<128x32xf32>
}

// -----

// A feed-forward block: the bias add and the activation between the two matmuls run on the
// packed tiles (the bias reshaped to 16-wide column tiles), and the second matmul's left
// operand is those tiles transposed, not an unpack and a pack. The last bias add stays
// after the unpack, where IREE fuses it into the unpack's dispatch.
// CHECK-LABEL: func.func @feed_forward
//       CHECK:   %[[H:.+]] = linalg.mmt4d {{.+}} -> tensor<22x4x6x16xf32>
//       CHECK:   %[[BIAS:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0, 1]] output_shape [4, 16] : tensor<64xf32> into tensor<4x16xf32>
//       CHECK:   %[[ADD:.+]] = linalg.generic {{.+}} ins(%[[H]], %[[BIAS]] : tensor<22x4x6x16xf32>, tensor<4x16xf32>)
//       CHECK:     arith.addf
//       CHECK:   %[[RELU:.+]] = linalg.generic {{.+}} ins(%[[ADD]] : tensor<22x4x6x16xf32>)
//       CHECK:     arith.maximumf
//       CHECK:   %[[T:.+]] = linalg.transpose ins(%[[RELU]] : tensor<22x4x6x16xf32>) outs(%{{.+}} : tensor<22x4x16x6xf32>) permutation = [0, 1, 3, 2]
//       CHECK:   %[[TC:.+]] = tensor.collapse_shape %[[T]] {{\[}}[0], [1, 2], [3]] : tensor<22x4x16x6xf32> into tensor<22x64x6xf32>
//       CHECK:   %[[A2:.+]] = tensor.expand_shape %[[TC]] {{\[}}[0], [1], [2, 3]] output_shape [22, 64, 6, 1]
//       CHECK:   %[[Y:.+]] = linalg.mmt4d ins(%[[A2]], %{{.+}} : tensor<22x64x6x1xf32>, tensor<2x64x16x1xf32>)
//       CHECK:   %[[U:.+]] = linalg.unpack %[[Y]]
//       CHECK:   linalg.generic {{.+}} ins(%[[U]], %{{.+}} : tensor<128x32xf32>, tensor<32xf32>)
//   CHECK-NOT:   linalg.unpack
//   CHECK-NOT:   linalg.pack
//       CHECK:   return
#rows = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
func.func @feed_forward(%x: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w1 = arith.constant dense<1.0> : tensor<64x64xf32>
  %b1 = arith.constant dense<0.5> : tensor<64xf32>
  %w2 = arith.constant dense<2.0> : tensor<64x32xf32>
  %b2 = arith.constant dense<0.25> : tensor<32xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<128x64xf32>
  %acc1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<128x64xf32>) -> tensor<128x64xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<128x64xf32>, tensor<64x64xf32>) outs(%acc1 : tensor<128x64xf32>) -> tensor<128x64xf32>
  %hb = linalg.generic {indexing_maps = [#rows, #cols, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%h, %b1 : tensor<128x64xf32>, tensor<64xf32>) outs(%e1 : tensor<128x64xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<128x64xf32>
  %r = linalg.generic {indexing_maps = [#rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%hb : tensor<128x64xf32>) outs(%e1 : tensor<128x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<128x64xf32>
  %e2 = tensor.empty() : tensor<128x32xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<128x32xf32>) -> tensor<128x32xf32>
  %y = linalg.matmul ins(%r, %w2 : tensor<128x64xf32>, tensor<64x32xf32>) outs(%acc2 : tensor<128x32xf32>) -> tensor<128x32xf32>
  %yb = linalg.generic {indexing_maps = [#rows, #cols, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%y, %b2 : tensor<128x32xf32>, tensor<32xf32>) outs(%e2 : tensor<128x32xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<128x32xf32>
  return %yb : tensor<128x32xf32>
}

// -----

// Left alone: fewer than 16 rows (IREE's narrow tiles suit those better), a transposed
// matmul (other indexing maps), and f64.
// CHECK-LABEL: func.func @left_alone
//   CHECK-NOT:   linalg.mmt4d
//       CHECK:   linalg.matmul ins(%arg0
//       CHECK:   linalg.matmul indexing_maps
//       CHECK:   linalg.matmul ins(%arg2
#lhs_t = affine_map<(d0, d1, d2) -> (d2, d0)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @left_alone(%narrow: tensor<8x64xf32>, %t: tensor<64x128xf32>, %d: tensor<128x64xf64>)
    -> (tensor<8x32xf32>, tensor<128x32xf32>, tensor<128x32xf64>) {
  %w = arith.constant dense<1.0> : tensor<64x32xf32>
  %wd = arith.constant dense<1.0> : tensor<64x32xf64>
  %zero = arith.constant 0.0 : f32
  %zd = arith.constant 0.0 : f64
  %e8 = tensor.empty() : tensor<8x32xf32>
  %a8 = linalg.fill ins(%zero : f32) outs(%e8 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %y8 = linalg.matmul ins(%narrow, %w : tensor<8x64xf32>, tensor<64x32xf32>) outs(%a8 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %e = tensor.empty() : tensor<128x32xf32>
  %a = linalg.fill ins(%zero : f32) outs(%e : tensor<128x32xf32>) -> tensor<128x32xf32>
  %yt = linalg.matmul indexing_maps = [#lhs_t, #rhs, #out] ins(%t, %w : tensor<64x128xf32>, tensor<64x32xf32>) outs(%a : tensor<128x32xf32>) -> tensor<128x32xf32>
  %ed = tensor.empty() : tensor<128x32xf64>
  %ad = linalg.fill ins(%zd : f64) outs(%ed : tensor<128x32xf64>) -> tensor<128x32xf64>
  %yd = linalg.matmul ins(%d, %wd : tensor<128x64xf64>, tensor<64x32xf64>) outs(%ad : tensor<128x32xf64>) -> tensor<128x32xf64>
  return %y8, %yt, %yd : tensor<8x32xf32>, tensor<128x32xf32>, tensor<128x32xf64>
}
