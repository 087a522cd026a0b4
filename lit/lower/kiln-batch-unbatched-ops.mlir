// RUN: kiln-opt %s --kiln-batch-unbatched-ops --split-input-file | filecheck %s

// TorchScript's conv2d on an unbatched [C, H, W] input: a batch of one around the convolution.
// CHECK-LABEL: func.func @unbatched_conv2d
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[3,8,8],f32>, %[[W:.+]]: !torch.vtensor<[4,3,3,3],f32>
//       CHECK:   %[[BX:.+]] = torch.aten.unsqueeze %[[X]], %[[ZERO:[^ ]+]] : !torch.vtensor<[3,8,8],f32>, !torch.int -> !torch.vtensor<[1,3,8,8],f32>
//       CHECK:   %[[C:.+]] = torch.aten.conv2d %[[BX]], %[[W]], {{.*}} -> !torch.vtensor<[1,4,6,6],f32>
//       CHECK:   %[[R:.+]] = torch.aten.squeeze.dim %[[C]], %[[ZERO]] : !torch.vtensor<[1,4,6,6],f32>, !torch.int -> !torch.vtensor<[4,6,6],f32>
//       CHECK:   return %[[R]]
func.func @unbatched_conv2d(%x: !torch.vtensor<[3,8,8],f32>, %w: !torch.vtensor<[4,3,3,3],f32>, %b: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4,6,6],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %s = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %p = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.conv2d %x, %w, %b, %s, %p, %s, %int1 : !torch.vtensor<[3,8,8],f32>, !torch.vtensor<[4,3,3,3],f32>, !torch.vtensor<[4],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> !torch.vtensor<[4,6,6],f32>
  return %0 : !torch.vtensor<[4,6,6],f32>
}

// -----

// A batched convolution is left alone.
// CHECK-LABEL: func.func @batched_conv2d
//   CHECK-NOT:   torch.aten.unsqueeze
//       CHECK:   torch.aten.conv2d %arg0
//   CHECK-NOT:   torch.aten.squeeze
func.func @batched_conv2d(%x: !torch.vtensor<[2,3,8,8],f32>, %w: !torch.vtensor<[4,3,3,3],f32>, %b: !torch.vtensor<[4],f32>) -> !torch.vtensor<[2,4,6,6],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %s = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %p = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.conv2d %x, %w, %b, %s, %p, %s, %int1 : !torch.vtensor<[2,3,8,8],f32>, !torch.vtensor<[4,3,3,3],f32>, !torch.vtensor<[4],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> !torch.vtensor<[2,4,6,6],f32>
  return %0 : !torch.vtensor<[2,4,6,6],f32>
}

// -----

// Poolings too, every tensor result squeezed back (max_pool1d_with_indices has two).
// CHECK-LABEL: func.func @unbatched_max_pool1d_with_indices
//       CHECK:   %[[BX:.+]] = torch.aten.unsqueeze %arg0, %{{.+}} : !torch.vtensor<[3,8],f32>, !torch.int -> !torch.vtensor<[1,3,8],f32>
//       CHECK:   %[[V0:.+]], %[[V1:.+]] = torch.aten.max_pool1d_with_indices %[[BX]], {{.*}} -> !torch.vtensor<[1,3,4],f32>, !torch.vtensor<[1,3,4],si64>
//   CHECK-DAG:   %[[A:.+]] = torch.aten.squeeze.dim %[[V0]], {{.*}} -> !torch.vtensor<[3,4],f32>
//   CHECK-DAG:   %[[B:.+]] = torch.aten.squeeze.dim %[[V1]], {{.*}} -> !torch.vtensor<[3,4],si64>
//       CHECK:   return %[[A]], %[[B]]
func.func @unbatched_max_pool1d_with_indices(%x: !torch.vtensor<[3,8],f32>) -> (!torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],si64>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %false = torch.constant.bool false
  %k = torch.prim.ListConstruct %int2 : (!torch.int) -> !torch.list<int>
  %p = torch.prim.ListConstruct %int0 : (!torch.int) -> !torch.list<int>
  %d = torch.prim.ListConstruct %int1 : (!torch.int) -> !torch.list<int>
  %0:2 = torch.aten.max_pool1d_with_indices %x, %k, %k, %p, %d, %false : !torch.vtensor<[3,8],f32>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool -> !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],si64>
  return %0#0, %0#1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],si64>
}
