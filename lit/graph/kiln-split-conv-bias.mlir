// RUN: %PYTHON -c "import torch; torch.save({'conv.weight': torch.ones(2, 1, 3, 3), 'conv.bias': torch.ones(2), 'c1.weight': torch.ones(3, 2, 3), 'c1.bias': torch.ones(3)}, '%t.pt')"
// RUN: kiln-opt %s --kiln-split-conv-bias --params %t.pt | filecheck %s

// A convolution with a known bias: the convolution loses it, an add of the bias shaped
// [C, 1, 1] follows, and the old [C] param is gone.
// CHECK-LABEL: func.func @conv_with_bias
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[1,1,4,4],f32>)
//   CHECK-NOT:   qualname = "conv.bias"}
//       CHECK:   %[[NONE:.+]] = torch.constant.none
//       CHECK:   %[[Y:.+]] = torch.aten.convolution %[[X]], %{{.+}}, %[[NONE]],
//       CHECK:   %[[B:.+]] = "kiln.param"() {qualname = "conv.bias#{{[0-9]+}}"} : () -> !torch.vtensor<[2,1,1],f32>
//       CHECK:   %[[Z:.+]] = torch.aten.add.Tensor %[[Y]], %[[B]], %{{.+}} : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
//       CHECK:   return %[[Z]]
func.func @conv_with_bias(%x: !torch.vtensor<[1,1,4,4],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,3,3],f32>
  %b = "kiln.param"() {qualname = "conv.bias"} : () -> !torch.vtensor<[2],f32>
  %y = torch.aten.convolution %x, %w, %b, %ones, %ones, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,3,3],f32>, !torch.vtensor<[2],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  return %y : !torch.vtensor<[1,2,4,4],f32>
}

// TorchScript's conv1d: the bias becomes [C, 1].
// CHECK-LABEL: func.func @conv1d_with_bias
//       CHECK:   torch.aten.conv1d %{{.+}}, %{{.+}}, %{{.+}} : !torch.vtensor<[1,2,5],f32>, !torch.vtensor<[3,2,3],f32>, !torch.none,
//       CHECK:   "kiln.param"() {qualname = "c1.bias#{{[0-9]+}}"} : () -> !torch.vtensor<[3,1],f32>
//       CHECK:   torch.aten.add.Tensor
func.func @conv1d_with_bias(%x: !torch.vtensor<[1,2,5],f32>) -> !torch.vtensor<[1,3,3],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %one = torch.prim.ListConstruct %int1 : (!torch.int) -> !torch.list<int>
  %zero = torch.prim.ListConstruct %int0 : (!torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "c1.weight"} : () -> !torch.vtensor<[3,2,3],f32>
  %b = "kiln.param"() {qualname = "c1.bias"} : () -> !torch.vtensor<[3],f32>
  %y = torch.aten.conv1d %x, %w, %b, %one, %zero, %one, %int1 : !torch.vtensor<[1,2,5],f32>, !torch.vtensor<[3,2,3],f32>, !torch.vtensor<[3],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> !torch.vtensor<[1,3,3],f32>
  return %y : !torch.vtensor<[1,3,3],f32>
}

// A bias computed from an input is not known: nothing changes.
// CHECK-LABEL: func.func @runtime_bias
//       CHECK:   torch.aten.convolution %{{.+}}, %{{.+}}, %arg1,
//   CHECK-NOT:   torch.aten.add.Tensor
func.func @runtime_bias(%x: !torch.vtensor<[1,1,4,4],f32>, %b: !torch.vtensor<[2],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,3,3],f32>
  %y = torch.aten.convolution %x, %w, %b, %ones, %ones, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,3,3],f32>, !torch.vtensor<[2],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  return %y : !torch.vtensor<[1,2,4,4],f32>
}

// TorchScript's conv2d on unbatched input ([C, H, W]): the channels are axis 0, so the pass
// leaves it alone even where H happens to equal the bias length.
// CHECK-LABEL: func.func @unbatched_conv2d
//       CHECK:   torch.aten.conv2d %{{.+}}, %{{.+}}, %{{.+}} : !torch.vtensor<[1,2,4],f32>, !torch.vtensor<[2,1,3,3],f32>, !torch.vtensor<[2],f32>,
//   CHECK-NOT:   torch.aten.add.Tensor
func.func @unbatched_conv2d(%x: !torch.vtensor<[1,2,4],f32>) -> !torch.vtensor<[2,2,4],f32> {
  %int1 = torch.constant.int 1
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,3,3],f32>
  %b = "kiln.param"() {qualname = "conv.bias"} : () -> !torch.vtensor<[2],f32>
  %y = torch.aten.conv2d %x, %w, %b, %ones, %ones, %ones, %int1 : !torch.vtensor<[1,2,4],f32>, !torch.vtensor<[2,1,3,3],f32>, !torch.vtensor<[2],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> !torch.vtensor<[2,2,4],f32>
  return %y : !torch.vtensor<[2,2,4],f32>
}
