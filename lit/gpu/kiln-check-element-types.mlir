// RUN: not kiln-opt %s --pass-pipeline='kiln-check-element-types{refuse=f64,f16,bf16 target=vulkan}' --split-input-file 2>&1 | filecheck %s

// Integer floor division as torch-mlir lowers it, through f64: refused, naming the ops.
// CHECK: error: 'arith.sitofp' computes f64, which the vulkan target does not compute; compile this program for 'cpu', or in float32
func.func @floor_divide(%a: i64, %b: i64) -> i64 {
  %x = arith.sitofp %a : i64 to f64
  %y = arith.sitofp %b : i64 to f64
  %q = arith.divf %x, %y : f64
  %f = math.floor %q : f64
  %r = arith.fptosi %f : f64 to i64
  return %r : i64
}

// -----

// A float16 tensor argument is refused too (the portable profile ran f16 to wrong numbers).
// CHECK: error: 'func.func' computes f16, which the vulkan target does not compute
func.func @half(%x: tensor<4xf16>) -> tensor<4xf16> {
  return %x : tensor<4xf16>
}

// -----

// 32-bit code passes unchanged.
// CHECK-LABEL: func.func @single
//       CHECK:   arith.addf %{{.+}}, %{{.+}} : f32
func.func @single(%x: f32) -> f32 {
  %y = arith.addf %x, %x : f32
  return %y : f32
}
