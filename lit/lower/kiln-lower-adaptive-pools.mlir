// RUN: kiln-opt %s --kiln-lower-adaptive-pools --split-input-file | filecheck %s

// 5x7 -> 3x4 has uneven, overlapping windows: x @ Q_w, transpose, @ Q_h, transpose back.
// PyTorch's windows over 5 rows for 3 outputs: rows 0-1, 1-3, 3-4 (weights 1/2, 1/3, 1/2).
// CHECK-LABEL: func.func @uneven
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[1,2,5,7],f32>)
//   CHECK-NOT:   adaptive_avg_pool2d
//       CHECK:   %[[QW:.+]] = torch.vtensor.literal(dense<{{.*}}> : tensor<7x4xf32>) : !torch.vtensor<[7,4],f32>
//       CHECK:   %[[A:.+]] = torch.aten.matmul %[[X]], %[[QW]] : {{.*}} -> !torch.vtensor<[1,2,5,4],f32>
//       CHECK:   %[[B:.+]] = torch.aten.transpose.int %[[A]], {{.*}} -> !torch.vtensor<[1,2,4,5],f32>
//       CHECK:   %[[QH:.+]] = torch.vtensor.literal(dense<{{\[\[}}5.000000e-01, 0.000000e+00, 0.000000e+00], [5.000000e-01, 0.333333343, 0.000000e+00], [0.000000e+00, 0.333333343, 0.000000e+00], [0.000000e+00, 0.333333343, 5.000000e-01], [0.000000e+00, 0.000000e+00, 5.000000e-01]]> : tensor<5x3xf32>)
//       CHECK:   %[[C:.+]] = torch.aten.matmul %[[B]], %[[QH]] : {{.*}} -> !torch.vtensor<[1,2,4,3],f32>
//       CHECK:   %[[D:.+]] = torch.aten.transpose.int %[[C]], {{.*}} -> !torch.vtensor<[1,2,3,4],f32>
//       CHECK:   return %[[D]]
func.func @uneven(%x: !torch.vtensor<[1,2,5,7],f32>) -> !torch.vtensor<[1,2,3,4],f32> {
  %int3 = torch.constant.int 3
  %int4 = torch.constant.int 4
  %size = torch.prim.ListConstruct %int3, %int4 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.adaptive_avg_pool2d %x, %size : !torch.vtensor<[1,2,5,7],f32>, !torch.list<int> -> !torch.vtensor<[1,2,3,4],f32>
  return %0 : !torch.vtensor<[1,2,3,4],f32>
}

// -----

// Even windows (global pooling) stay an adaptive pool: torch-mlir lowers those to avg pooling.
// CHECK-LABEL: func.func @even
//       CHECK:   torch.aten.adaptive_avg_pool2d
//   CHECK-NOT:   torch.aten.matmul
func.func @even(%x: !torch.vtensor<[1,2,6,6],f32>) -> !torch.vtensor<[1,2,3,1],f32> {
  %int3 = torch.constant.int 3
  %int1 = torch.constant.int 1
  %size = torch.prim.ListConstruct %int3, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.adaptive_avg_pool2d %x, %size : !torch.vtensor<[1,2,6,6],f32>, !torch.list<int> -> !torch.vtensor<[1,2,3,1],f32>
  return %0 : !torch.vtensor<[1,2,3,1],f32>
}

// -----

// One-d: one matmul.
// CHECK-LABEL: func.func @uneven_1d
//       CHECK:   %[[Q:.+]] = torch.vtensor.literal({{.*}} : tensor<5x3xf32>)
//       CHECK:   %[[R:.+]] = torch.aten.matmul %arg0, %[[Q]] : {{.*}} -> !torch.vtensor<[2,4,3],f32>
//   CHECK-NOT:   torch.aten.transpose
//       CHECK:   return %[[R]]
func.func @uneven_1d(%x: !torch.vtensor<[2,4,5],f32>) -> !torch.vtensor<[2,4,3],f32> {
  %int3 = torch.constant.int 3
  %size = torch.prim.ListConstruct %int3 : (!torch.int) -> !torch.list<int>
  %0 = torch.aten.adaptive_avg_pool1d %x, %size : !torch.vtensor<[2,4,5],f32>, !torch.list<int> -> !torch.vtensor<[2,4,3],f32>
  return %0 : !torch.vtensor<[2,4,3],f32>
}

// -----

// Max over uneven windows (rows 5 -> 3: 0-1, 1-3, 3-4), indices unused: a slice and an amax
// per window, then a cat; the even axis (4 -> 2) is pooled the same way, and first (the last axis).
// CHECK-LABEL: func.func @uneven_max
//   CHECK-NOT:   adaptive_max_pool2d
//       CHECK:   torch.aten.slice.Tensor %arg0, {{.*}} -> !torch.vtensor<[1,2,5,2],f32>
//       CHECK:   torch.aten.amax {{.*}} -> !torch.vtensor<[1,2,5,1],f32>
//       CHECK:   %[[W:.+]] = torch.aten.cat {{.*}} -> !torch.vtensor<[1,2,5,2],f32>
//       CHECK:   torch.aten.slice.Tensor %[[W]], {{.*}} -> !torch.vtensor<[1,2,2,2],f32>
//       CHECK:   torch.aten.slice.Tensor %[[W]], {{.*}} -> !torch.vtensor<[1,2,3,2],f32>
//       CHECK:   torch.aten.slice.Tensor %[[W]], {{.*}} -> !torch.vtensor<[1,2,2,2],f32>
//       CHECK:   %[[Y:.+]] = torch.aten.cat {{.*}} -> !torch.vtensor<[1,2,3,2],f32>
//       CHECK:   return %[[Y]]
func.func @uneven_max(%x: !torch.vtensor<[1,2,5,4],f32>) -> !torch.vtensor<[1,2,3,2],f32> {
  %int3 = torch.constant.int 3
  %int2 = torch.constant.int 2
  %size = torch.prim.ListConstruct %int3, %int2 : (!torch.int, !torch.int) -> !torch.list<int>
  %0:2 = torch.aten.adaptive_max_pool2d %x, %size : !torch.vtensor<[1,2,5,4],f32>, !torch.list<int> -> !torch.vtensor<[1,2,3,2],f32>, !torch.vtensor<[1,2,3,2],si64>
  return %0#0 : !torch.vtensor<[1,2,3,2],f32>
}

// -----

// The indices are used: left to torch-mlir.
// CHECK-LABEL: func.func @max_with_indices
//       CHECK:   torch.aten.adaptive_max_pool2d
func.func @max_with_indices(%x: !torch.vtensor<[1,2,5,4],f32>) -> !torch.vtensor<[1,2,3,2],si64> {
  %int3 = torch.constant.int 3
  %int2 = torch.constant.int 2
  %size = torch.prim.ListConstruct %int3, %int2 : (!torch.int, !torch.int) -> !torch.list<int>
  %0:2 = torch.aten.adaptive_max_pool2d %x, %size : !torch.vtensor<[1,2,5,4],f32>, !torch.list<int> -> !torch.vtensor<[1,2,3,2],f32>, !torch.vtensor<[1,2,3,2],si64>
  return %0#1 : !torch.vtensor<[1,2,3,2],si64>
}
