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

// Matrix products torch-mlir's lowering crashes on are named instead: unsigned operands,
// and an empty contracted dimension; a signed one is not.
// CHECK: error: 'torch.aten.mm' multiplies unsigned integer matrices
// CHECK: error: 'torch.aten.mm' has an empty contracted dimension (K = 0)
// CHECK-NOT: error: 'torch.aten.mm'
func.func @matmuls(%u: !torch.vtensor<[2,2],ui8>, %e: !torch.vtensor<[3,0],f32>, %f: !torch.vtensor<[0,4],f32>, %s: !torch.vtensor<[2,2],si8>) -> (!torch.vtensor<[2,2],ui8>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[2,2],si8>) {
  %0 = torch.aten.mm %u, %u : !torch.vtensor<[2,2],ui8>, !torch.vtensor<[2,2],ui8> -> !torch.vtensor<[2,2],ui8>
  %1 = torch.aten.mm %e, %f : !torch.vtensor<[3,0],f32>, !torch.vtensor<[0,4],f32> -> !torch.vtensor<[3,4],f32>
  %2 = torch.aten.mm %s, %s : !torch.vtensor<[2,2],si8>, !torch.vtensor<[2,2],si8> -> !torch.vtensor<[2,2],si8>
  return %0, %1, %2 : !torch.vtensor<[2,2],ui8>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[2,2],si8>
}

// A view of an empty tensor is named (its lowering divides by the size 0: SIGFPE); an
// elementwise op on one is not.
// CHECK-NOT: error: 'torch.aten.relu'
// CHECK: error: 'torch.aten.view' has an empty tensor (a dimension of size 0)
func.func @empty(%x: !torch.vtensor<[0,3],f32>) -> !torch.vtensor<[3,0],f32> {
  %0 = torch.aten.relu %x : !torch.vtensor<[0,3],f32> -> !torch.vtensor<[0,3],f32>
  %int3 = torch.constant.int 3
  %int-1 = torch.constant.int -1
  %shape = torch.prim.ListConstruct %int3, %int-1 : (!torch.int, !torch.int) -> !torch.list<int>
  %1 = torch.aten.view %0, %shape : !torch.vtensor<[0,3],f32>, !torch.list<int> -> !torch.vtensor<[3,0],f32>
  return %1 : !torch.vtensor<[3,0],f32>
}
