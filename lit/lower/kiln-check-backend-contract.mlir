// RUN: not kiln-opt %s --kiln-check-backend-contract 2>&1 | filecheck %s

// A tensor of unknown rank or dtype is named with its op instead of reaching torch-mlir's
// lowering, where some patterns crash on it; ops with static types are not named.
// CHECK-NOT: torch.aten.relu' has
// CHECK: error: 'torch.aten.tanh' has a tensor of unknown rank or dtype
// CHECK-NOT: torch.aten.relu' has
func.func @open(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor {
  %0 = torch.aten.relu %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  %1 = torch.aten.tanh %0 : !torch.vtensor<[4],f32> -> !torch.vtensor
  return %1 : !torch.vtensor
}
