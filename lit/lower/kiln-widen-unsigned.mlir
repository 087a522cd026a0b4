// RUN: kiln-opt %s --kiln-widen-unsigned | filecheck %s

// A sum of uint8 is computed on int32 (torch-mlir would read the bytes as signed); a view
// and the conversion itself are left alone.
// CHECK-LABEL: func.func @sum
// CHECK: %[[INT32:.+]] = torch.constant.int 3
// CHECK: %[[WIDE:.+]] = torch.aten.to.dtype %arg0, %[[INT32]], {{.+}} : !torch.vtensor<[3],ui8>, !torch.int, !torch.bool, !torch.bool, !torch.none -> !torch.vtensor<[3],si32>
// CHECK: torch.aten.sum %[[WIDE]], %{{.+}} : !torch.vtensor<[3],si32>, !torch.none -> !torch.vtensor<[],si64>
func.func @sum(%x: !torch.vtensor<[3],ui8>) -> !torch.vtensor<[],si64> {
  %none = torch.constant.none
  %0 = torch.aten.sum %x, %none : !torch.vtensor<[3],ui8>, !torch.none -> !torch.vtensor<[],si64>
  return %0 : !torch.vtensor<[],si64>
}

// A uint8 result is computed as int32 and converted back: arithmetic modulo 256.
// CHECK-LABEL: func.func @add
// CHECK: %[[A:.+]] = torch.aten.to.dtype %arg0, {{.+}} -> !torch.vtensor<[3],si32>
// CHECK: %[[B:.+]] = torch.aten.to.dtype %arg0, {{.+}} -> !torch.vtensor<[3],si32>
// CHECK: %[[SUM:.+]] = torch.aten.add.Tensor %[[A]], %[[B]], %{{.+}} : !torch.vtensor<[3],si32>, !torch.vtensor<[3],si32>, !torch.int -> !torch.vtensor<[3],si32>
// CHECK: %[[UINT8:.+]] = torch.constant.int 0
// CHECK: %[[BACK:.+]] = torch.aten.to.dtype %[[SUM]], %[[UINT8]], {{.+}} -> !torch.vtensor<[3],ui8>
// CHECK: %[[VIEW:.+]] = torch.aten.view %[[BACK]]
// CHECK: return %[[VIEW]]
func.func @add(%x: !torch.vtensor<[3],ui8>) -> !torch.vtensor<[1,3],ui8> {
  %int1 = torch.constant.int 1
  %int3 = torch.constant.int 3
  %0 = torch.aten.add.Tensor %x, %x, %int1 : !torch.vtensor<[3],ui8>, !torch.vtensor<[3],ui8>, !torch.int -> !torch.vtensor<[3],ui8>
  %shape = torch.prim.ListConstruct %int1, %int3 : (!torch.int, !torch.int) -> !torch.list<int>
  %1 = torch.aten.view %0, %shape : !torch.vtensor<[3],ui8>, !torch.list<int> -> !torch.vtensor<[1,3],ui8>
  return %1 : !torch.vtensor<[1,3],ui8>
}
