// RUN: %PYTHON -c "import torch; torch.save({'fc.weight': torch.arange(6.0).reshape(2, 3), 'fc.bias': torch.tensor([0.5])}, '%t.pt')"
// RUN: kiln-opt %s --kiln-inline-params --params %t.pt | filecheck %s
// RUN: not kiln-opt %s --kiln-inline-params 2>&1 | filecheck %s --check-prefix=MISSING

// Each kiln.param becomes a literal of its weight; a one-element weight is a splat.
// CHECK-LABEL: func.func @linear
//   CHECK-NOT:   kiln.param
//       CHECK:   %[[W:.+]] = torch.vtensor.literal(dense_resource<kiln_fc_weight> : tensor<2x3xf32>) : !torch.vtensor<[2,3],f32>
//       CHECK:   %[[B:.+]] = torch.vtensor.literal(dense<5.000000e-01> : tensor<1xf32>) : !torch.vtensor<[1],f32>
//       CHECK:   torch.aten.linear %{{.+}}, %[[W]], %[[B]]
// MISSING: kiln-inline-params.mlir:[[# @LINE + 2]]:{{[0-9]+}}: error: 'kiln.param' "fc.weight" has no value; pass the weights
func.func @linear(%x: !torch.vtensor<[4,3],f32>) -> !torch.vtensor<[4,2],f32> {
  %w = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[2,3],f32>
  %b = "kiln.param"() {qualname = "fc.bias"} : () -> !torch.vtensor<[1],f32>
  %y = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,3],f32>, !torch.vtensor<[2,3],f32>, !torch.vtensor<[1],f32> -> !torch.vtensor<[4,2],f32>
  return %y : !torch.vtensor<[4,2],f32>
}

// A function without parameters is left as it was.
// CHECK-LABEL: func.func @no_params
//  CHECK-NEXT:   torch.aten.tanh
func.func @no_params(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %y = torch.aten.tanh %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  return %y : !torch.vtensor<[4],f32>
}
