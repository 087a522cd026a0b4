// RUN: %PYTHON -c "import torch; torch.save({'up.weight': torch.arange(24.).reshape(2, 3, 2, 2)}, '%t.pt')"
// RUN: kiln-opt %s --kiln-conv-transpose-to-conv --params %t.pt | filecheck %s

// A stride-1 transposed convolution (weight [Cin=2, Cout=3, 2, 2], padding 0) becomes a direct
// one: weight [3, 2, 2, 2] with channel axes swapped and the kernel flipped, padding k-1-p = 1.
// CHECK-LABEL: func.func @unit_stride
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[1,2,4,4],f32>)
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "up.weight#0"} : () -> !torch.vtensor<[3,2,2,2],f32>
//       CHECK:   %[[STRIDE:.+]] = torch.prim.ListConstruct
//       CHECK:   %[[P0:.+]] = torch.constant.int 1
//       CHECK:   %[[P1:.+]] = torch.constant.int 1
//       CHECK:   %[[PAD:.+]] = torch.prim.ListConstruct %[[P0]], %[[P1]]
//       CHECK:   %[[DILATION:.+]] = torch.prim.ListConstruct
//       CHECK:   %[[FALSE:.+]] = torch.constant.bool false
//       CHECK:   %[[O0:.+]] = torch.constant.int 0
//       CHECK:   %[[O1:.+]] = torch.constant.int 0
//       CHECK:   %[[OUTPUT_PADDING:.+]] = torch.prim.ListConstruct %[[O0]], %[[O1]]
//       CHECK:   %[[Y:.+]] = torch.aten.convolution %[[X]], %[[W]], %{{.+}}, %[[STRIDE]], %[[PAD]], %[[DILATION]], %[[FALSE]], %[[OUTPUT_PADDING]], %{{.+}} : {{.*}} -> !torch.vtensor<[1,3,5,5],f32>
//       CHECK:   return %[[Y]]
func.func @unit_stride(%x: !torch.vtensor<[1,2,4,4],f32>) -> !torch.vtensor<[1,3,5,5],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %true = torch.constant.bool true
  %none = torch.constant.none
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "up.weight"} : () -> !torch.vtensor<[2,3,2,2],f32>
  %y = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %true, %zeros, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,3,2,2],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,3,5,5],f32>
  return %y : !torch.vtensor<[1,3,5,5],f32>
}

// Stride 2 stays transposed (it spreads its input out; no direct convolution does that).
// CHECK-LABEL: func.func @strided
//       CHECK:   torch.aten.convolution %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %true,
func.func @strided(%x: !torch.vtensor<[1,2,4,4],f32>) -> !torch.vtensor<[1,3,8,8],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %true = torch.constant.bool true
  %none = torch.constant.none
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %twos = torch.prim.ListConstruct %int2, %int2 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "up.weight"} : () -> !torch.vtensor<[2,3,2,2],f32>
  %y = torch.aten.convolution %x, %w, %none, %twos, %zeros, %ones, %true, %zeros, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,3,2,2],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,3,8,8],f32>
  return %y : !torch.vtensor<[1,3,8,8],f32>
}
