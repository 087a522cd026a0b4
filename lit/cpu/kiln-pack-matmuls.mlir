// RUN: kiln-opt %s --kiln-pack-matmuls --split-input-file | filecheck %s
// RUN: kiln-opt %s --pass-pipeline='kiln-pack-matmuls{tile=16x16}' --split-input-file | filecheck %s --check-prefix=T16
// RUN: not kiln-opt %s --pass-pipeline='kiln-pack-matmuls{tile=6by16}' --split-input-file 2>&1 | filecheck %s --check-prefix=BAD
// BAD: tile '6by16' is not ROWSxCOLUMNS

// A matmul from zeros: both operands packed (6x1 and 16x1 tiles, 128 rows padded to 22 x 6),
// a 6x16x1 mmt4d from a packed fill, the result unpacked.
// CHECK-LABEL: func.func @matmul
//       CHECK:   %[[A:.+]] = linalg.pack %arg0 padding_value(%{{.+}} : f32) inner_dims_pos = [0, 1] inner_tiles = [6, 1] into %{{.+}} : tensor<128x64xf32> -> tensor<22x64x6x1xf32>
//       CHECK:   %[[B:.+]] = linalg.pack %{{.+}} padding_value(%{{.+}} : f32) outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [16, 1] into %{{.+}} : tensor<64x32xf32> -> tensor<2x64x16x1xf32>
//       CHECK:   %[[C:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<22x2x6x16xf32>)
//       CHECK:   %[[R:.+]] = linalg.mmt4d ins(%[[A]], %[[B]] : tensor<22x64x6x1xf32>, tensor<2x64x16x1xf32>) outs(%[[C]] : tensor<22x2x6x16xf32>)
//       CHECK:   %[[U:.+]] = linalg.unpack %[[R]] inner_dims_pos = [0, 1] inner_tiles = [6, 16] into %{{.+}} : tensor<22x2x6x16xf32> -> tensor<128x32xf32>
//       CHECK:   return %[[U]]
//   CHECK-NOT:   linalg.matmul
// The tile is an option (AVX-512 code gets another, `passes/cpu/tiles.py`): 16x16 here.
// T16-LABEL: func.func @matmul
//       T16:   linalg.pack %arg0 {{.+}} inner_tiles = [16, 1] {{.+}} -> tensor<8x64x16x1xf32>
//       T16:   linalg.mmt4d {{.+}} -> tensor<8x2x16x16xf32>
//       T16:   linalg.unpack {{.+}} inner_tiles = [16, 16]
func.func @matmul(%a: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w = arith.constant dense<1.0> : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<128x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<128x32xf32>) -> tensor<128x32xf32>
  %y = linalg.matmul ins(%a, %w : tensor<128x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  return %y : tensor<128x32xf32>
}

// -----

// A feed-forward block: the bias add and the activation between the two matmuls run on the
// packed tiles (the bias reshaped to 16-wide column tiles), and the second matmul's left
// operand is those tiles transposed, not an unpack and a pack. The last bias add stays
// after the unpack, where IREE fuses it into the unpack's dispatch.
// CHECK-LABEL: func.func @feed_forward
//       CHECK:   %[[H:.+]] = linalg.mmt4d {{.+}} -> tensor<22x4x6x16xf32>
//       CHECK:   %[[BIAS:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0, 1]] output_shape [4, 16] : tensor<64xf32> into tensor<4x16xf32>
//       CHECK:   %[[ADD:.+]] = linalg.generic {{.+}} ins(%[[H]], %[[BIAS]] : tensor<22x4x6x16xf32>, tensor<4x16xf32>)
//       CHECK:     arith.addf
//       CHECK:   %[[RELU:.+]] = linalg.generic {{.+}} ins(%[[ADD]] : tensor<22x4x6x16xf32>)
//       CHECK:     arith.maximumf
//       CHECK:   %[[T:.+]] = linalg.transpose ins(%[[RELU]] : tensor<22x4x6x16xf32>) outs(%{{.+}} : tensor<22x4x16x6xf32>) permutation = [0, 1, 3, 2]
//       CHECK:   %[[TC:.+]] = tensor.collapse_shape %[[T]] {{\[}}[0], [1, 2], [3]] : tensor<22x4x16x6xf32> into tensor<22x64x6xf32>
//       CHECK:   %[[A2:.+]] = tensor.expand_shape %[[TC]] {{\[}}[0], [1], [2, 3]] output_shape [22, 64, 6, 1]
//       CHECK:   %[[Y:.+]] = linalg.mmt4d ins(%[[A2]], %{{.+}} : tensor<22x64x6x1xf32>, tensor<2x64x16x1xf32>)
//       CHECK:   %[[U:.+]] = linalg.unpack %[[Y]]
//       CHECK:   linalg.generic {{.+}} ins(%[[U]], %{{.+}} : tensor<128x32xf32>, tensor<32xf32>)
//   CHECK-NOT:   linalg.unpack
//   CHECK-NOT:   linalg.pack
//       CHECK:   return
#rows = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
func.func @feed_forward(%x: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w1 = arith.constant dense<1.0> : tensor<64x64xf32>
  %b1 = arith.constant dense<0.5> : tensor<64xf32>
  %w2 = arith.constant dense<2.0> : tensor<64x32xf32>
  %b2 = arith.constant dense<0.25> : tensor<32xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<128x64xf32>
  %acc1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<128x64xf32>) -> tensor<128x64xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<128x64xf32>, tensor<64x64xf32>) outs(%acc1 : tensor<128x64xf32>) -> tensor<128x64xf32>
  %hb = linalg.generic {indexing_maps = [#rows, #cols, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%h, %b1 : tensor<128x64xf32>, tensor<64xf32>) outs(%e1 : tensor<128x64xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<128x64xf32>
  %r = linalg.generic {indexing_maps = [#rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%hb : tensor<128x64xf32>) outs(%e1 : tensor<128x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<128x64xf32>
  %e2 = tensor.empty() : tensor<128x32xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<128x32xf32>) -> tensor<128x32xf32>
  %y = linalg.matmul ins(%r, %w2 : tensor<128x64xf32>, tensor<64x32xf32>) outs(%acc2 : tensor<128x32xf32>) -> tensor<128x32xf32>
  %yb = linalg.generic {indexing_maps = [#rows, #cols, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%y, %b2 : tensor<128x32xf32>, tensor<32xf32>) outs(%e2 : tensor<128x32xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<128x32xf32>
  return %yb : tensor<128x32xf32>
}

// -----

// Left alone: fewer than 16 rows (IREE's narrow tiles suit those better), a transposed
// matmul (other indexing maps), and f64.
// CHECK-LABEL: func.func @left_alone
//   CHECK-NOT:   linalg.mmt4d
//       CHECK:   linalg.matmul ins(%arg0
//       CHECK:   linalg.matmul indexing_maps
//       CHECK:   linalg.matmul ins(%arg2
#lhs_t = affine_map<(d0, d1, d2) -> (d2, d0)>
#rhs = affine_map<(d0, d1, d2) -> (d2, d1)>
#out = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @left_alone(%narrow: tensor<8x64xf32>, %t: tensor<64x128xf32>, %d: tensor<128x64xf64>)
    -> (tensor<8x32xf32>, tensor<128x32xf32>, tensor<128x32xf64>) {
  %w = arith.constant dense<1.0> : tensor<64x32xf32>
  %wd = arith.constant dense<1.0> : tensor<64x32xf64>
  %zero = arith.constant 0.0 : f32
  %zd = arith.constant 0.0 : f64
  %e8 = tensor.empty() : tensor<8x32xf32>
  %a8 = linalg.fill ins(%zero : f32) outs(%e8 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %y8 = linalg.matmul ins(%narrow, %w : tensor<8x64xf32>, tensor<64x32xf32>) outs(%a8 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %e = tensor.empty() : tensor<128x32xf32>
  %a = linalg.fill ins(%zero : f32) outs(%e : tensor<128x32xf32>) -> tensor<128x32xf32>
  %yt = linalg.matmul indexing_maps = [#lhs_t, #rhs, #out] ins(%t, %w : tensor<64x128xf32>, tensor<64x32xf32>) outs(%a : tensor<128x32xf32>) -> tensor<128x32xf32>
  %ed = tensor.empty() : tensor<128x32xf64>
  %ad = linalg.fill ins(%zd : f64) outs(%ed : tensor<128x32xf64>) -> tensor<128x32xf64>
  %yd = linalg.matmul ins(%d, %wd : tensor<128x64xf64>, tensor<64x32xf64>) outs(%ad : tensor<128x32xf64>) -> tensor<128x32xf64>
  return %y8, %yt, %yd : tensor<8x32xf32>, tensor<128x32xf32>, tensor<128x32xf64>
}

// -----

// A 1x1 convolution of one 14x14 image: the matmul filters x pixels. The filter is the
// left operand (64 filters in 6-row tiles, 66 rows), the image's channels x pixels the right
// one (196 pixels in 16-column tiles, 208 columns), packed straight from NCHW; the result
// unpacked straight into NCHW.
// CHECK-LABEL: func.func @pointwise_conv
//   CHECK-NOT:   linalg.conv_2d_nchw_fchw
//       CHECK:   %[[X:.+]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2, 3]] : tensor<1x32x14x14xf32> into tensor<32x196xf32>
//       CHECK:   %[[W:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : tensor<64x32x1x1xf32> into tensor<64x32xf32>
//       CHECK:   %[[A:.+]] = linalg.pack %[[W]] {{.+}} inner_dims_pos = [0, 1] inner_tiles = [6, 1] {{.+}} : tensor<64x32xf32> -> tensor<11x32x6x1xf32>
//       CHECK:   %[[B:.+]] = linalg.pack %[[X]] {{.+}} outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [16, 1] {{.+}} : tensor<32x196xf32> -> tensor<13x32x16x1xf32>
//       CHECK:   %[[R:.+]] = linalg.mmt4d ins(%[[A]], %[[B]] : tensor<11x32x6x1xf32>, tensor<13x32x16x1xf32>) {{.+}} -> tensor<11x13x6x16xf32>
//       CHECK:   %[[U:.+]] = linalg.unpack %[[R]] inner_dims_pos = [0, 1] inner_tiles = [6, 16] {{.+}} -> tensor<64x196xf32>
//       CHECK:   %[[Y:.+]] = tensor.expand_shape %[[U]] {{\[}}[0, 1], [2, 3]] output_shape [1, 64, 14, 14] : tensor<64x196xf32> into tensor<1x64x14x14xf32>
//       CHECK:   return %[[Y]]
// T16-LABEL: func.func @pointwise_conv
//       T16:   linalg.mmt4d {{.+}} -> tensor<4x13x16x16xf32>
func.func @pointwise_conv(%x: tensor<1x32x14x14xf32>) -> tensor<1x64x14x14xf32> {
  %w = arith.constant dense<1.0> : tensor<64x32x1x1xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<1x64x14x14xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x32x14x14xf32>, tensor<64x32x1x1xf32>) outs(%acc : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  return %y : tensor<1x64x14x14xf32>
}

// -----

// Stride 2 (a ResNet downsample): every second row and column picked, then as above.
// CHECK-LABEL: func.func @strided_pointwise_conv
//       CHECK:   tensor.extract_slice %arg0[0, 0, 0, 0] [1, 32, 14, 14] [1, 1, 2, 2] : tensor<1x32x28x28xf32> to tensor<1x32x14x14xf32>
//       CHECK:   linalg.mmt4d {{.+}} -> tensor<11x13x6x16xf32>
//   CHECK-NOT:   linalg.conv_2d_nchw_fchw
func.func @strided_pointwise_conv(%x: tensor<1x32x28x28xf32>) -> tensor<1x64x14x14xf32> {
  %w = arith.constant dense<1.0> : tensor<64x32x1x1xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<1x64x14x14xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<1x32x28x28xf32>, tensor<64x32x1x1xf32>) outs(%acc : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  return %y : tensor<1x64x14x14xf32>
}

// -----

// Left to IREE: 56x56 pixels (3136 > 1024: the packs and unpack cost more than the 6x16
// tiles save), 7x7 (49 pixels padded to 64 columns), two images, a 3x3 filter, and a
// convolution starting from its bias.
// CHECK-LABEL: func.func @convs_left_alone
//   CHECK-NOT:   linalg.mmt4d
// CHECK-COUNT-5:   linalg.conv_2d_nchw_fchw
//   CHECK-NOT:   linalg.mmt4d
func.func @convs_left_alone(%x56: tensor<1x32x56x56xf32>, %x7: tensor<1x32x7x7xf32>, %x2: tensor<2x32x14x14xf32>,
                            %x3: tensor<1x32x16x16xf32>, %x14: tensor<1x32x14x14xf32>, %bias: tensor<1x64x14x14xf32>)
    -> (tensor<1x64x56x56xf32>, tensor<1x64x7x7xf32>, tensor<2x64x14x14xf32>, tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>) {
  %w = arith.constant dense<1.0> : tensor<64x32x1x1xf32>
  %w3 = arith.constant dense<1.0> : tensor<64x32x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %e56 = tensor.empty() : tensor<1x64x56x56xf32>
  %a56 = linalg.fill ins(%zero : f32) outs(%e56 : tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32>
  %y56 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x56, %w : tensor<1x32x56x56xf32>, tensor<64x32x1x1xf32>) outs(%a56 : tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32>
  %e7 = tensor.empty() : tensor<1x64x7x7xf32>
  %a7 = linalg.fill ins(%zero : f32) outs(%e7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %y7 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x7, %w : tensor<1x32x7x7xf32>, tensor<64x32x1x1xf32>) outs(%a7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %e2 = tensor.empty() : tensor<2x64x14x14xf32>
  %a2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<2x64x14x14xf32>) -> tensor<2x64x14x14xf32>
  %y2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x2, %w : tensor<2x32x14x14xf32>, tensor<64x32x1x1xf32>) outs(%a2 : tensor<2x64x14x14xf32>) -> tensor<2x64x14x14xf32>
  %e14 = tensor.empty() : tensor<1x64x14x14xf32>
  %a14 = linalg.fill ins(%zero : f32) outs(%e14 : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %y3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x3, %w3 : tensor<1x32x16x16xf32>, tensor<64x32x3x3xf32>) outs(%a14 : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %yb = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x14, %w : tensor<1x32x14x14xf32>, tensor<64x32x1x1xf32>) outs(%bias : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  return %y56, %y7, %y2, %y3, %yb : tensor<1x64x56x56xf32>, tensor<1x64x7x7xf32>, tensor<2x64x14x14xf32>, tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>
}

// -----

// Rows that vary per call (a dynamic batch x sequence): the tiles are [ceil(M/6), ...] with
// M read from the left operand; the feed-forward's epilogue still runs on the tiles and the
// second matmul's operand is still a transpose of them.
// CHECK-LABEL: func.func @dynamic_rows
//       CHECK:   %[[M1:.+]] = affine.apply #{{.+}}()[%{{.+}}]
//       CHECK:   tensor.empty(%[[M1]]) : tensor<?x64x6x1xf32>
//       CHECK:   %[[H:.+]] = linalg.mmt4d {{.+}} -> tensor<?x4x6x16xf32>
//       CHECK:   %[[ADD:.+]] = linalg.generic {{.+}} ins(%[[H]], %{{.+}} : tensor<?x4x6x16xf32>, tensor<4x16xf32>)
//       CHECK:   %[[T:.+]] = linalg.transpose ins(%[[ADD]] : tensor<?x4x6x16xf32>)
//       CHECK:   %[[Y:.+]] = linalg.mmt4d {{.+}} -> tensor<?x2x6x16xf32>
//       CHECK:   %[[E:.+]] = tensor.empty(%{{.+}}) : tensor<?x32xf32>
//       CHECK:   %[[U:.+]] = linalg.unpack %[[Y]] {{.+}} into %[[E]] : tensor<?x2x6x16xf32> -> tensor<?x32xf32>
//       CHECK:   return %[[U]]
#rows = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
func.func @dynamic_rows(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %x, %c0 : tensor<?x64xf32>
  %w1 = arith.constant dense<1.0> : tensor<64x64xf32>
  %b1 = arith.constant dense<0.5> : tensor<64xf32>
  %w2 = arith.constant dense<2.0> : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty(%m) : tensor<?x64xf32>
  %acc1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<?x64xf32>, tensor<64x64xf32>) outs(%acc1 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %hb = linalg.generic {indexing_maps = [#rows, #cols, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%h, %b1 : tensor<?x64xf32>, tensor<64xf32>) outs(%e1 : tensor<?x64xf32>) {
  ^bb0(%in: f32, %b: f32, %out: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<?x64xf32>
  %e2 = tensor.empty(%m) : tensor<?x32xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = linalg.matmul ins(%hb, %w2 : tensor<?x64xf32>, tensor<64x32xf32>) outs(%acc2 : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
