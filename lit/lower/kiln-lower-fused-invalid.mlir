// RUN: not kiln-opt %s --kiln-lower-fused 2>&1 | filecheck %s

// A group written by hand around an op that is not elementwise cannot become one
// linalg.generic: the pass names the op and the table it would need a row in.
func.func @matmul_in_a_group(%x: !torch.vtensor<[4,4],f32>) -> !torch.vtensor<[4,4],f32> {
  // CHECK: {{.*}}.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.fused' holds 'torch.aten.mm', which has no scalar lowering; kiln-lower-fused knows the ops of ELEMENTWISE_OPS
  %0 = "kiln.fused"(%x) ({
  ^bb0(%a: !torch.vtensor<[4,4],f32>):
    %1 = torch.aten.mm %a, %a : !torch.vtensor<[4,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
    "kiln.yield"(%1) : (!torch.vtensor<[4,4],f32>) -> ()
  }) : (!torch.vtensor<[4,4],f32>) -> !torch.vtensor<[4,4],f32>
  return %0 : !torch.vtensor<[4,4],f32>
}
