// RUN: kiln-opt %s --kiln-winograd-small-convs --split-input-file | filecheck %s

// 64 channels, 14x14 output: F(4,3). The input is padded to 18x18 (four 4-wide tiles and
// the filter's border), its columns transformed by one matmul with the band matrix, its
// rows by a sum of six stride-4 slices; 36 tile positions multiply in one batch matmul
// in Kiln's 6x16 tiles (the filters packed in 6-row tiles, 64 padded to 66; the 16 input
// tiles are one 16-column tile, a reshape; the products a reshape and a cut back to 64);
// the 16x16 result is cut to 14x14.
// The convolution and its zero accumulator are gone.
// CHECK-LABEL: func.func @f43
//   CHECK-NOT:   linalg.conv_2d_nchw_fchw
//   CHECK-NOT:   tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
//       CHECK:   tensor.pad {{.*}} high[0, 0, 2, 2]
//       CHECK:   linalg.matmul ins({{.*}} : tensor<1152x18xf32>, tensor<18x24xf32>)
//       CHECK:   tensor.extract_slice {{.*}}[1, 1, 4, 1, 1] : tensor<1x64x18x6x4xf32> to tensor<1x64x4x6x4xf32>
//       CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]
//  CHECK-SAME:     ins({{.*}} : tensor<6x3xf32>, tensor<6x3xf32>, tensor<64x64x3x3xf32>)
//       CHECK:   linalg.pack {{.*}} inner_tiles = [6, 1] {{.*}} : tensor<36x64x64xf32> -> tensor<36x11x64x6x1xf32>
//       CHECK:   tensor.expand_shape {{.*}} : tensor<36x64x16xf32> into tensor<36x1x64x16x1xf32>
//       CHECK:   linalg.batch_mmt4d ins({{.*}} : tensor<36x11x64x6x1xf32>, tensor<36x1x64x16x1xf32>)
//       CHECK:   tensor.collapse_shape {{.*}} into tensor<36x66x16xf32>
//       CHECK:   tensor.extract_slice {{.*}} [36, 64, 16] [1, 1, 1] : tensor<36x66x16xf32> to tensor<36x64x16xf32>
//       CHECK:   tensor.extract_slice {{.*}} [1, 64, 14, 14] [1, 1, 1, 1] : tensor<1x64x16x16xf32> to tensor<1x64x14x14xf32>
//       CHECK:   return
func.func @f43(%x: tensor<1x64x16x16xf32>) -> tensor<1x64x14x14xf32> {
  %w = arith.constant dense<1.0> : tensor<64x64x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<1x64x14x14xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x64x16x16xf32>, tensor<64x64x3x3xf32>) outs(%acc : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  return %y : tensor<1x64x14x14xf32>
}

// -----

// 128 channels, 8x8 output, two images: F(2,3), no padding or cut (four 2-wide tiles).
// 32 input tiles are two 16-column tiles: packed, and the products unpacked.
// CHECK-LABEL: func.func @f23
//   CHECK-NOT:   tensor.pad
//       CHECK:   linalg.pack {{.*}} : tensor<16x128x128xf32> -> tensor<16x22x128x6x1xf32>
//       CHECK:   linalg.pack {{.*}} : tensor<16x128x32xf32> -> tensor<16x2x128x16x1xf32>
//       CHECK:   linalg.batch_mmt4d ins({{.*}} : tensor<16x22x128x6x1xf32>, tensor<16x2x128x16x1xf32>)
//       CHECK:   linalg.unpack {{.*}} : tensor<16x22x2x6x16xf32> -> tensor<16x128x32xf32>
//   CHECK-NOT:   tensor.extract_slice {{.*}} : tensor<2x128x8x8xf32> to
//       CHECK:   return {{.*}} : tensor<2x128x8x8xf32>
func.func @f23(%x: tensor<2x128x10x10xf32>) -> tensor<2x128x8x8xf32> {
  %w = arith.constant dense<1.0> : tensor<128x128x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<2x128x8x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<2x128x8x8xf32>) -> tensor<2x128x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<2x128x10x10xf32>, tensor<128x128x3x3xf32>) outs(%acc : tensor<2x128x8x8xf32>) -> tensor<2x128x8x8xf32>
  return %y : tensor<2x128x8x8xf32>
}

// -----

// Left alone: a 24x24 output (IREE's F(6,3) takes those), 7x7 with 64 channels (F(2,3)
// needs 128), a 4x4 output, stride 2, a filter computed at run time, a convolution
// starting from its bias, and one whose input has a row more than the output needs.
// CHECK-LABEL: func.func @kept
//   CHECK-NOT:   linalg.batch_m
// CHECK-COUNT-7:   linalg.conv_2d_nchw_fchw
//   CHECK-NOT:   linalg.batch_m
func.func @kept(%x24: tensor<1x64x26x26xf32>, %x7: tensor<1x64x9x9xf32>, %x4: tensor<1x128x6x6xf32>,
                %wx: tensor<64x64x3x3xf32>, %bias: tensor<1x64x14x14xf32>, %x14: tensor<1x64x16x16xf32>,
                %x17: tensor<1x64x17x16xf32>)
    -> (tensor<1x64x24x24xf32>, tensor<1x64x7x7xf32>, tensor<1x128x4x4xf32>, tensor<1x64x7x7xf32>,
        tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>) {
  %w64 = arith.constant dense<1.0> : tensor<64x64x3x3xf32>
  %w128 = arith.constant dense<1.0> : tensor<128x128x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %e24 = tensor.empty() : tensor<1x64x24x24xf32>
  %a24 = linalg.fill ins(%zero : f32) outs(%e24 : tensor<1x64x24x24xf32>) -> tensor<1x64x24x24xf32>
  %y24 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x24, %w64 : tensor<1x64x26x26xf32>, tensor<64x64x3x3xf32>) outs(%a24 : tensor<1x64x24x24xf32>) -> tensor<1x64x24x24xf32>
  %e7 = tensor.empty() : tensor<1x64x7x7xf32>
  %a7 = linalg.fill ins(%zero : f32) outs(%e7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %y7 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x7, %w64 : tensor<1x64x9x9xf32>, tensor<64x64x3x3xf32>) outs(%a7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %e4 = tensor.empty() : tensor<1x128x4x4xf32>
  %a4 = linalg.fill ins(%zero : f32) outs(%e4 : tensor<1x128x4x4xf32>) -> tensor<1x128x4x4xf32>
  %y4 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x4, %w128 : tensor<1x128x6x6xf32>, tensor<128x128x3x3xf32>) outs(%a4 : tensor<1x128x4x4xf32>) -> tensor<1x128x4x4xf32>
  %ys = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x14, %w64 : tensor<1x64x16x16xf32>, tensor<64x64x3x3xf32>) outs(%a7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %e14 = tensor.empty() : tensor<1x64x14x14xf32>
  %a14 = linalg.fill ins(%zero : f32) outs(%e14 : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %yx = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x14, %wx : tensor<1x64x16x16xf32>, tensor<64x64x3x3xf32>) outs(%a14 : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %yb = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x14, %w64 : tensor<1x64x16x16xf32>, tensor<64x64x3x3xf32>) outs(%bias : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %yt = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x17, %w64 : tensor<1x64x17x16xf32>, tensor<64x64x3x3xf32>) outs(%a14 : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  return %y24, %y7, %y4, %ys, %yx, %yb, %yt : tensor<1x64x24x24xf32>, tensor<1x64x7x7xf32>, tensor<1x128x4x4xf32>,
      tensor<1x64x7x7xf32>, tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>, tensor<1x64x14x14xf32>
}
