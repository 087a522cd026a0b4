// RUN: kiln-opt %s --kiln-mark-winograd-convs --split-input-file | filecheck %s

// A stride-1 3x3 f32 convolution with a constant filter, 16 channels, 24x24 output: marked.
// CHECK-LABEL: func.func @marked
//       CHECK:   linalg.conv_2d_nchw_fchw {__winograd_conv, dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
func.func @marked(%x: tensor<1x16x26x26xf32>) -> tensor<1x16x24x24xf32> {
  %w = arith.constant dense<1.0> : tensor<16x16x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<1x16x24x24xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x16x26x26xf32>, tensor<16x16x3x3xf32>) outs(%acc : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  return %y : tensor<1x16x24x24xf32>
}

// -----

// Channels-last form: marked the same way.
// CHECK-LABEL: func.func @marked_nhwc
//       CHECK:   linalg.conv_2d_nhwc_hwcf {__winograd_conv
func.func @marked_nhwc(%x: tensor<1x26x26x16xf32>) -> tensor<1x24x24x32xf32> {
  %w = arith.constant dense<1.0> : tensor<3x3x16x32xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<1x24x24x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<1x24x24x32xf32>) -> tensor<1x24x24x32xf32>
  %y = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x26x26x16xf32>, tensor<3x3x16x32xf32>) outs(%acc : tensor<1x24x24x32xf32>) -> tensor<1x24x24x32xf32>
  return %y : tensor<1x24x24x32xf32>
}

// -----

// Left for im2col: a filter computed at run time (its transform would run on every call),
// stride 2, a 12x12 output (too few 6x6 tiles), 8 input channels, a 5x5 filter, f16, and a
// convolution accumulating into its bias rather than zeros (IREE's Winograd would drop it).
// CHECK-LABEL: func.func @unmarked
//   CHECK-NOT:   __winograd_conv
func.func @unmarked(%x: tensor<1x16x26x26xf32>, %wx: tensor<16x16x3x3xf32>, %x8: tensor<1x8x26x26xf32>,
                    %x5: tensor<1x16x28x28xf32>, %xh: tensor<1x16x26x26xf16>,
                    %x14: tensor<1x16x14x14xf32>, %bias: tensor<1x16x24x24xf32>)
    -> (tensor<1x16x24x24xf32>, tensor<1x16x12x12xf32>, tensor<1x16x12x12xf32>, tensor<1x16x24x24xf32>,
        tensor<1x16x24x24xf32>, tensor<1x16x24x24xf16>, tensor<1x16x24x24xf32>) {
  %w = arith.constant dense<1.0> : tensor<16x16x3x3xf32>
  %w8 = arith.constant dense<1.0> : tensor<16x8x3x3xf32>
  %w5 = arith.constant dense<1.0> : tensor<16x16x5x5xf32>
  %wh = arith.constant dense<1.0> : tensor<16x16x3x3xf16>
  %zero = arith.constant 0.0 : f32
  %zh = arith.constant 0.0 : f16
  %e24 = tensor.empty() : tensor<1x16x24x24xf32>
  %a24 = linalg.fill ins(%zero : f32) outs(%e24 : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  %e12 = tensor.empty() : tensor<1x16x12x12xf32>
  %a12 = linalg.fill ins(%zero : f32) outs(%e12 : tensor<1x16x12x12xf32>) -> tensor<1x16x12x12xf32>
  %eh = tensor.empty() : tensor<1x16x24x24xf16>
  %ah = linalg.fill ins(%zh : f16) outs(%eh : tensor<1x16x24x24xf16>) -> tensor<1x16x24x24xf16>
  %runtime = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %wx : tensor<1x16x26x26xf32>, tensor<16x16x3x3xf32>) outs(%a24 : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  %strided = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<1x16x26x26xf32>, tensor<16x16x3x3xf32>) outs(%a12 : tensor<1x16x12x12xf32>) -> tensor<1x16x12x12xf32>
  %small = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x5, %w5 : tensor<1x16x28x28xf32>, tensor<16x16x5x5xf32>) outs(%a24 : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  %tiny = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x14, %w : tensor<1x16x14x14xf32>, tensor<16x16x3x3xf32>) outs(%a12 : tensor<1x16x12x12xf32>) -> tensor<1x16x12x12xf32>
  %narrow = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x8, %w8 : tensor<1x8x26x26xf32>, tensor<16x8x3x3xf32>) outs(%a24 : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  %half = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%xh, %wh : tensor<1x16x26x26xf16>, tensor<16x16x3x3xf16>) outs(%ah : tensor<1x16x24x24xf16>) -> tensor<1x16x24x24xf16>
  %biased = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x16x26x26xf32>, tensor<16x16x3x3xf32>) outs(%bias : tensor<1x16x24x24xf32>) -> tensor<1x16x24x24xf32>
  return %runtime, %strided, %tiny, %small, %narrow, %half, %biased : tensor<1x16x24x24xf32>, tensor<1x16x12x12xf32>, tensor<1x16x12x12xf32>, tensor<1x16x24x24xf32>, tensor<1x16x24x24xf32>, tensor<1x16x24x24xf16>, tensor<1x16x24x24xf32>
}
