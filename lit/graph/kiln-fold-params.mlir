// RUN: %PYTHON -c "import torch; torch.save({'fc.weight': torch.ones(2, 3), 'fc.bias': torch.ones(2), 'scale': torch.ones(3)}, '%t.pt')"
// RUN: kiln-opt %s --kiln-fold-params --params %t.pt | filecheck %s
// RUN: kiln-opt %s --kiln-fold-params --params %t.pt --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-fold-params: 2 params computed at compile time
// STATS: // kiln-fold-params: 1 identity ops dropped

// export's linear: the weight transpose and the bias * 1 become params; mm * 1 goes away.
// CHECK-LABEL: func.func @exported_linear
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4,3],f32>)
//   CHECK-NOT:   torch.aten.permute
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "fc.weight#0"} : () -> !torch.vtensor<[3,2],f32>
//       CHECK:   %[[MM:.+]] = torch.aten.mm %[[X]], %[[W]]
//       CHECK:   %[[B:.+]] = "kiln.param"() {qualname = "fc.bias#0"} : () -> !torch.vtensor<[2],f32>
//   CHECK-NOT:   torch.aten.mul.Scalar
//       CHECK:   %[[Y:.+]] = torch.aten.add.Tensor %[[MM]], %[[B]]
//       CHECK:   return %[[Y]]
func.func @exported_linear(%x: !torch.vtensor<[4,3],f32>) -> !torch.vtensor<[4,2],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %w = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[2,3],f32>
  %perm = torch.prim.ListConstruct %int1, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %wt = torch.aten.permute %w, %perm : !torch.vtensor<[2,3],f32>, !torch.list<int> -> !torch.vtensor<[3,2],f32>
  %mm = torch.aten.mm %x, %wt : !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,2],f32> -> !torch.vtensor<[4,2],f32>
  %mm1 = torch.aten.mul.Scalar %mm, %int1 : !torch.vtensor<[4,2],f32>, !torch.int -> !torch.vtensor<[4,2],f32>
  %b = "kiln.param"() {qualname = "fc.bias"} : () -> !torch.vtensor<[2],f32>
  %b1 = torch.aten.mul.Scalar %b, %int1 : !torch.vtensor<[2],f32>, !torch.int -> !torch.vtensor<[2],f32>
  %y = torch.aten.add.Tensor %mm1, %b1, %int1 : !torch.vtensor<[4,2],f32>, !torch.vtensor<[2],f32>, !torch.int -> !torch.vtensor<[4,2],f32>
  return %y : !torch.vtensor<[4,2],f32>
}

// Ops reading an argument stay; so does an expand, which would only grow the weights.
// CHECK-LABEL: func.func @not_parameter_only
//       CHECK:   %[[S:.+]] = "kiln.param"() {qualname = "scale"}
//       CHECK:   %[[E:.+]] = torch.aten.expand %[[S]]
//       CHECK:   torch.aten.mul.Tensor %{{.+}}, %[[E]]
//       CHECK:   torch.aten.mul.Scalar %{{.+}}, %{{.+}} : !torch.vtensor<[4,3],f32>, !torch.int
func.func @not_parameter_only(%x: !torch.vtensor<[4,3],f32>) -> !torch.vtensor<[4,3],f32> {
  %int2 = torch.constant.int 2
  %int3 = torch.constant.int 3
  %int4 = torch.constant.int 4
  %false = torch.constant.bool false
  %s = "kiln.param"() {qualname = "scale"} : () -> !torch.vtensor<[3],f32>
  %size = torch.prim.ListConstruct %int4, %int3 : (!torch.int, !torch.int) -> !torch.list<int>
  %e = torch.aten.expand %s, %size, %false : !torch.vtensor<[3],f32>, !torch.list<int>, !torch.bool -> !torch.vtensor<[4,3],f32>
  %y = torch.aten.mul.Tensor %x, %e : !torch.vtensor<[4,3],f32>, !torch.vtensor<[4,3],f32> -> !torch.vtensor<[4,3],f32>
  %z = torch.aten.mul.Scalar %y, %int2 : !torch.vtensor<[4,3],f32>, !torch.int -> !torch.vtensor<[4,3],f32>
  return %z : !torch.vtensor<[4,3],f32>
}
