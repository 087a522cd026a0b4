// RUN: kiln-opt %s --kiln-check-indices | filecheck %s

// An embedding's indices are asserted to lie in [0, rows) before the gather reads with them.
// CHECK-LABEL: func.func @embedding
// CHECK: %[[SIZE:.+]] = torch.aten.size.int %arg0, %{{.+}} : !torch.vtensor<[10,4],f32>, !torch.int -> !torch.int
// CHECK: %[[MIN:.+]] = torch.aten.min %arg1 : !torch.vtensor<[2],si64> -> !torch.vtensor<[],si64>
// CHECK: %[[GE:.+]] = torch.aten.ge.Scalar %[[MIN]], %{{.+}} : !torch.vtensor<[],si64>, !torch.int -> !torch.vtensor<[],i1>
// CHECK: %[[MAX:.+]] = torch.aten.max %arg1 : !torch.vtensor<[2],si64> -> !torch.vtensor<[],si64>
// CHECK: %[[LT:.+]] = torch.aten.lt.Scalar %[[MAX]], %[[SIZE]]
// CHECK: %[[AND:.+]] = torch.aten.logical_and %[[GE]], %[[LT]]
// CHECK: %[[OK:.+]] = torch.aten.Bool.Tensor %[[AND]]
// CHECK: torch.runtime.assert %[[OK]], "index out of range: embedding got an index outside dimension 0
// CHECK: torch.aten.embedding %arg0, %arg1,
func.func @embedding(%w: !torch.vtensor<[10,4],f32>, %i: !torch.vtensor<[2],si64>) -> !torch.vtensor<[2,4],f32> {
  %int-1 = torch.constant.int -1
  %false = torch.constant.bool false
  %0 = torch.aten.embedding %w, %i, %int-1, %false, %false : !torch.vtensor<[10,4],f32>, !torch.vtensor<[2],si64>, !torch.int, !torch.bool, !torch.bool -> !torch.vtensor<[2,4],f32>
  return %0 : !torch.vtensor<[2,4],f32>
}

// x[i] accepts -rows <= i < rows, as eager does, then reads i + rows where i is negative: the index list is
// rebuilt with the wrapped index.
// CHECK-LABEL: func.func @getitem
// CHECK: %[[SIZE:.+]] = torch.aten.size.int %arg0
// CHECK: %[[LOW:.+]] = torch.aten.neg.int %[[SIZE]]
// CHECK: %[[MIN:.+]] = torch.aten.min %arg1
// CHECK: torch.aten.ge.Scalar %[[MIN]], %[[LOW]]
// CHECK: torch.runtime.assert
// CHECK: %[[NEG:.+]] = torch.aten.lt.Scalar %arg1, %{{.+}} : !torch.vtensor<[3],si64>, !torch.int -> !torch.vtensor<[3],i1>
// CHECK: %[[UP:.+]] = torch.aten.add.Scalar %arg1, %[[SIZE]], %{{.+}}
// CHECK: %[[WRAPPED:.+]] = torch.aten.where.self %[[NEG]], %[[UP]], %arg1
// CHECK: %[[LIST:.+]] = torch.prim.ListConstruct %[[WRAPPED]]
// CHECK: torch.aten.index.Tensor %arg0, %[[LIST]]
func.func @getitem(%x: !torch.vtensor<[10,4],f32>, %i: !torch.vtensor<[3],si64>) -> !torch.vtensor<[3,4],f32> {
  %0 = torch.prim.ListConstruct %i : (!torch.vtensor<[3],si64>) -> !torch.list<optional<vtensor>>
  %1 = torch.aten.index.Tensor %x, %0 : !torch.vtensor<[10,4],f32>, !torch.list<optional<vtensor>> -> !torch.vtensor<[3,4],f32>
  return %1 : !torch.vtensor<[3,4],f32>
}

// A boolean mask selects rather than indexes: no check.
// CHECK-LABEL: func.func @mask
// CHECK-NOT: torch.runtime.assert
// CHECK: torch.aten.index.Tensor
func.func @mask(%x: !torch.vtensor<[10],f32>, %m: !torch.vtensor<[10],i1>) -> !torch.vtensor<[?],f32> {
  %0 = torch.prim.ListConstruct %m : (!torch.vtensor<[10],i1>) -> !torch.list<optional<vtensor>>
  %1 = torch.aten.index.Tensor %x, %0 : !torch.vtensor<[10],f32>, !torch.list<optional<vtensor>> -> !torch.vtensor<[?],f32>
  return %1 : !torch.vtensor<[?],f32>
}
