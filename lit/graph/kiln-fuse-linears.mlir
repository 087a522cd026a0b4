// RUN: %PYTHON -c "import torch; torch.save({'q': torch.ones(4, 2), 'k': torch.ones(4, 3), 'v': torch.ones(4, 2)}, '%t.pt')"
// RUN: kiln-opt %s --kiln-fuse-linears --params %t.pt | filecheck %s

// Q, K and V projections of one input: one mm on a [4, 7] weight, three slices.
// CHECK-LABEL: func.func @qkv
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[5,4],f32>)
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "q#0"} : () -> !torch.vtensor<[4,7],f32>
//       CHECK:   %[[Y:.+]] = torch.aten.mm %[[X]], %[[W]] : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,7],f32> -> !torch.vtensor<[5,7],f32>
//       CHECK:   %[[Q:.+]] = torch.aten.slice.Tensor %[[Y]], %{{.+}} -> !torch.vtensor<[5,2],f32>
//       CHECK:   %[[K:.+]] = torch.aten.slice.Tensor %[[Y]], %{{.+}} -> !torch.vtensor<[5,3],f32>
//       CHECK:   %[[V:.+]] = torch.aten.slice.Tensor %[[Y]], %{{.+}} -> !torch.vtensor<[5,2],f32>
//   CHECK-NOT:   torch.aten.mm
//       CHECK:   return %[[Q]], %[[K]], %[[V]]
func.func @qkv(%x: !torch.vtensor<[5,4],f32>) -> (!torch.vtensor<[5,2],f32>, !torch.vtensor<[5,3],f32>, !torch.vtensor<[5,2],f32>) {
  %wq = "kiln.param"() {qualname = "q"} : () -> !torch.vtensor<[4,2],f32>
  %wk = "kiln.param"() {qualname = "k"} : () -> !torch.vtensor<[4,3],f32>
  %wv = "kiln.param"() {qualname = "v"} : () -> !torch.vtensor<[4,2],f32>
  %q = torch.aten.mm %x, %wq : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32> -> !torch.vtensor<[5,2],f32>
  %k = torch.aten.mm %x, %wk : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,3],f32> -> !torch.vtensor<[5,3],f32>
  %v = torch.aten.mm %x, %wv : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32> -> !torch.vtensor<[5,2],f32>
  return %q, %k, %v : !torch.vtensor<[5,2],f32>, !torch.vtensor<[5,3],f32>, !torch.vtensor<[5,2],f32>
}

// Different inputs, or a weight that is an argument: nothing to fuse.
// CHECK-LABEL: func.func @not_siblings
//       CHECK:   torch.aten.mm %{{.+}}, %{{.+}} : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32>
//       CHECK:   torch.aten.mm %{{.+}}, %{{.+}} : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,3],f32>
//       CHECK:   torch.aten.mm %{{.+}}, %{{.+}} : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32>
//   CHECK-NOT:   torch.aten.slice.Tensor
func.func @not_siblings(%x: !torch.vtensor<[5,4],f32>, %y: !torch.vtensor<[5,4],f32>, %w: !torch.vtensor<[4,2],f32>) -> (!torch.vtensor<[5,2],f32>, !torch.vtensor<[5,3],f32>, !torch.vtensor<[5,2],f32>) {
  %wq = "kiln.param"() {qualname = "q"} : () -> !torch.vtensor<[4,2],f32>
  %wk = "kiln.param"() {qualname = "k"} : () -> !torch.vtensor<[4,3],f32>
  %q = torch.aten.mm %x, %wq : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32> -> !torch.vtensor<[5,2],f32>
  %k = torch.aten.mm %y, %wk : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,3],f32> -> !torch.vtensor<[5,3],f32>
  %v = torch.aten.mm %x, %w : !torch.vtensor<[5,4],f32>, !torch.vtensor<[4,2],f32> -> !torch.vtensor<[5,2],f32>
  return %q, %k, %v : !torch.vtensor<[5,2],f32>, !torch.vtensor<[5,3],f32>, !torch.vtensor<[5,2],f32>
}
