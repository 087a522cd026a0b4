// RUN: kiln-opt %s --kiln-form-mmt4d-dispatches --split-input-file | filecheck %s

// A packed 1x1 convolution's epilogue (bias, residual add, ReLU) on [C, H, W] after the
// unpack's [C, H*W]: one dispatch region holds the fill, the mmt4d, the unpack and both
// generics, made two-dimensional (the residual collapsed before the region, the result
// expanded after it; no reshape inside, where IREE could not tile it).
// CHECK-LABEL: func.func @epilogue
//       CHECK:   %[[RES:.+]] = tensor.collapse_shape %arg3 {{\[}}[0], [1, 2]] : tensor<256x14x14xf32> into tensor<256x196xf32>
//       CHECK:   %[[D:.+]] = "flow.dispatch.region"() ({
//       CHECK:     %[[F:.+]] = linalg.fill
//       CHECK:     %[[M:.+]] = linalg.mmt4d ins(%arg0, %arg1 : {{.+}}) outs(%[[F]] : tensor<33x16x6x16xf32>)
//       CHECK:     %[[U:.+]] = linalg.unpack %[[M]] {{.+}} -> tensor<256x196xf32>
//   CHECK-NOT:     tensor.expand_shape
//       CHECK:     %[[B:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]} ins(%[[U]], %arg2 : tensor<256x196xf32>, tensor<256xf32>)
//       CHECK:     %[[R:.+]] = linalg.generic {{.+}} ins(%[[B]], %[[RES]] : tensor<256x196xf32>, tensor<256x196xf32>)
//       CHECK:     "flow.return"(%[[R]]) : (tensor<256x196xf32>) -> ()
//       CHECK:   }, {
//       CHECK:   }) {operandSegmentSizes = array<i32: 0, 0>} : () -> tensor<256x196xf32>
//       CHECK:   %[[Y:.+]] = tensor.expand_shape %[[D]] {{\[}}[0], [1, 2]] output_shape [256, 14, 14] : tensor<256x196xf32> into tensor<256x14x14xf32>
//       CHECK:   return %[[Y]]
func.func @epilogue(%a: tensor<33x256x6x1xf32>, %b: tensor<16x256x16x1xf32>, %bias: tensor<256xf32>,
                    %res: tensor<256x14x14xf32>) -> tensor<256x14x14xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<33x16x6x16xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<33x16x6x16xf32>) -> tensor<33x16x6x16xf32>
  %mm = linalg.mmt4d ins(%a, %b : tensor<33x256x6x1xf32>, tensor<16x256x16x1xf32>) outs(%z : tensor<33x16x6x16xf32>) -> tensor<33x16x6x16xf32>
  %e2 = tensor.empty() : tensor<256x196xf32>
  %u = linalg.unpack %mm outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [6, 16] into %e2 : tensor<33x16x6x16xf32> -> tensor<256x196xf32>
  %x = tensor.expand_shape %u [[0], [1, 2]] output_shape [256, 14, 14] : tensor<256x196xf32> into tensor<256x14x14xf32>
  %e3 = tensor.empty() : tensor<256x14x14xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %bias : tensor<256x14x14xf32>, tensor<256xf32>) outs(%e3 : tensor<256x14x14xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<256x14x14xf32>
  %r2 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%r, %res : tensor<256x14x14xf32>, tensor<256x14x14xf32>) outs(%e3 : tensor<256x14x14xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    %m = arith.maximumf %s, %cst : f32
    linalg.yield %m : f32
  } -> tensor<256x14x14xf32>
  return %r2 : tensor<256x14x14xf32>
}

// -----

// Two packed matmuls summed (a downsample and a block's last convolution): the sum joins
// the later one's region (its other operand comes from before that mmt4d); the earlier
// region ends at its unpack.
// CHECK-LABEL: func.func @two_branches
//       CHECK:   %[[D1:.+]] = "flow.dispatch.region"() ({
//       CHECK:     %[[U1:.+]] = linalg.unpack
//       CHECK:     "flow.return"(%[[U1]])
//       CHECK:   %[[D2:.+]] = "flow.dispatch.region"() ({
//       CHECK:     %[[U2:.+]] = linalg.unpack
//       CHECK:     %[[S:.+]] = linalg.generic {{.+}} ins(%[[D1]], %[[U2]] : tensor<64x32xf32>, tensor<64x32xf32>)
//       CHECK:     "flow.return"(%[[S]])
//       CHECK:   return %[[D2]]
func.func @two_branches(%a: tensor<11x16x6x1xf32>, %b: tensor<2x16x16x1xf32>) -> tensor<64x32xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<11x2x6x16xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<11x2x6x16xf32>) -> tensor<11x2x6x16xf32>
  %m1 = linalg.mmt4d ins(%a, %b : tensor<11x16x6x1xf32>, tensor<2x16x16x1xf32>) outs(%z : tensor<11x2x6x16xf32>) -> tensor<11x2x6x16xf32>
  %e1 = tensor.empty() : tensor<64x32xf32>
  %u1 = linalg.unpack %m1 inner_dims_pos = [0, 1] inner_tiles = [6, 16] into %e1 : tensor<11x2x6x16xf32> -> tensor<64x32xf32>
  %m2 = linalg.mmt4d ins(%a, %b : tensor<11x16x6x1xf32>, tensor<2x16x16x1xf32>) outs(%z : tensor<11x2x6x16xf32>) -> tensor<11x2x6x16xf32>
  %u2 = linalg.unpack %m2 inner_dims_pos = [0, 1] inner_tiles = [6, 16] into %e1 : tensor<11x2x6x16xf32> -> tensor<64x32xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%u1, %u2 : tensor<64x32xf32>, tensor<64x32xf32>) outs(%e1 : tensor<64x32xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    linalg.yield %t : f32
  } -> tensor<64x32xf32>
  return %s : tensor<64x32xf32>
}

// -----

// No unpack after the mmt4d (Kiln's Winograd reshapes its products): IREE's own dispatch.
// CHECK-LABEL: func.func @no_unpack
//   CHECK-NOT:   flow.dispatch.region
func.func @no_unpack(%a: tensor<4x11x16x6x1xf32>, %b: tensor<4x1x16x16x1xf32>) -> tensor<4x66x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x11x1x6x16xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<4x11x1x6x16xf32>) -> tensor<4x11x1x6x16xf32>
  %m = linalg.batch_mmt4d ins(%a, %b : tensor<4x11x16x6x1xf32>, tensor<4x1x16x16x1xf32>) outs(%z : tensor<4x11x1x6x16xf32>) -> tensor<4x11x1x6x16xf32>
  %c = tensor.collapse_shape %m [[0], [1, 2, 3], [4]] : tensor<4x11x1x6x16xf32> into tensor<4x66x16xf32>
  return %c : tensor<4x66x16xf32>
}

// -----

// A generic after the reshape that reads its accumulator (here the residual, passed as
// `outs`) cannot be made two-dimensional with a new empty accumulator: the region ends at
// the unpack, and the reshape and the generic stay outside, unchanged.
// CHECK-LABEL: func.func @reads_accumulator
//       CHECK:   %[[D:.+]] = "flow.dispatch.region"() ({
//       CHECK:     %[[U:.+]] = linalg.unpack
//       CHECK:     "flow.return"(%[[U]]) : (tensor<256x196xf32>) -> ()
//       CHECK:   %[[X:.+]] = tensor.expand_shape %[[D]]
//       CHECK:   linalg.generic {{.+}} ins(%[[X]] : tensor<256x14x14xf32>) outs(%arg2 : tensor<256x14x14xf32>)
func.func @reads_accumulator(%a: tensor<33x256x6x1xf32>, %b: tensor<16x256x16x1xf32>,
                             %res: tensor<256x14x14xf32>) -> tensor<256x14x14xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<33x16x6x16xf32>
  %z = linalg.fill ins(%cst : f32) outs(%e : tensor<33x16x6x16xf32>) -> tensor<33x16x6x16xf32>
  %mm = linalg.mmt4d ins(%a, %b : tensor<33x256x6x1xf32>, tensor<16x256x16x1xf32>) outs(%z : tensor<33x16x6x16xf32>) -> tensor<33x16x6x16xf32>
  %e2 = tensor.empty() : tensor<256x196xf32>
  %u = linalg.unpack %mm outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [6, 16] into %e2 : tensor<33x16x6x16xf32> -> tensor<256x196xf32>
  %x = tensor.expand_shape %u [[0], [1, 2]] output_shape [256, 14, 14] : tensor<256x196xf32> into tensor<256x14x14xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<256x14x14xf32>) outs(%res : tensor<256x14x14xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = arith.addf %p, %o : f32
    linalg.yield %s : f32
  } -> tensor<256x14x14xf32>
  return %r : tensor<256x14x14xf32>
}
