// RUN: kiln-opt %s --kiln-narrow-float64-scalars --split-input-file | filecheck %s

// An f32 model's Python floats: an f64 constant truncated to f32 (LayerNorm's eps) becomes an
// f32 constant, rounded as truncf rounds; a comparison of an extended f32 with an f32-exact
// f64 constant (-inf) is made in f32. The f64 constants and the extension are gone.
// CHECK-LABEL: func.func @eps_and_mask
//   CHECK-NOT:   f64
//       CHECK:   linalg.generic
//       CHECK:     %[[NINF:.+]] = arith.constant 0xFF800000 : f32
//       CHECK:     arith.cmpf oeq, %in, %[[NINF]] : f32
//       CHECK:     %[[EPS:.+]] = arith.constant 9.99999974E-6 : f32
//       CHECK:     arith.addf %in, %[[EPS]] : f32
//   CHECK-NOT:   f64
func.func @eps_and_mask(%x: tensor<4xf32>) -> tensor<4xf32> {
  %eps = arith.constant 1.000000e-05 : f64
  %ninf = arith.constant 0xFFF0000000000000 : f64
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]} ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %wide = arith.extf %in : f32 to f64
    %is_ninf = arith.cmpf oeq, %wide, %ninf : f64
    %eps32 = arith.truncf %eps : f64 to f32
    %sum = arith.addf %in, %eps32 : f32
    %v = arith.select %is_ninf, %in, %sum : f32
    linalg.yield %v : f32
  } -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// A comparison with a constant that is no f32 value (0.1 in f64) stays in f64: narrowing it
// would change which values compare equal.
// CHECK-LABEL: func.func @inexact
//       CHECK:   arith.constant 1.000000e-01 : f64
//       CHECK:   arith.extf
//       CHECK:   arith.cmpf olt, %{{.+}}, %{{.+}} : f64
func.func @inexact(%x: f32) -> i1 {
  %c = arith.constant 0.1 : f64
  %w = arith.extf %x : f32 to f64
  %b = arith.cmpf olt, %w, %c : f64
  return %b : i1
}
