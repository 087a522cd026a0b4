// RUN: kiln-opt %s --kiln-split-conv-batch --split-input-file | filecheck %s

// A batch of two: one convolution per image on slices of the input and the accumulator,
// inserted into one result; strides and the Winograd mark are kept on each.
// CHECK-LABEL: func.func @two_images
//       CHECK:   %[[OUT:.*]] = tensor.empty() : tensor<2x8x4x4xf32>
//       CHECK:   %[[X0:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 4, 9, 9] [1, 1, 1, 1]
//       CHECK:   %[[A0:.*]] = tensor.extract_slice %arg1[0, 0, 0, 0] [1, 8, 4, 4] [1, 1, 1, 1]
//       CHECK:   %[[Y0:.*]] = linalg.conv_2d_nchw_fchw {__winograd_conv, dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%[[X0]], %{{.*}} : tensor<1x4x9x9xf32>, tensor<8x4x3x3xf32>) outs(%[[A0]] : tensor<1x8x4x4xf32>)
//       CHECK:   %[[R1:.*]] = tensor.insert_slice %[[Y0]] into %[[OUT]][0, 0, 0, 0] [1, 8, 4, 4]
//       CHECK:   tensor.extract_slice %arg0[1, 0, 0, 0] [1, 4, 9, 9]
//       CHECK:   %[[Y1:.*]] = linalg.conv_2d_nchw_fchw
//       CHECK:   %[[R2:.*]] = tensor.insert_slice %[[Y1]] into %[[R1]][1, 0, 0, 0] [1, 8, 4, 4]
//       CHECK:   return %[[R2]]
func.func @two_images(%x: tensor<2x4x9x9xf32>, %acc: tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<8x4x3x3xf32>
  %y = linalg.conv_2d_nchw_fchw {__winograd_conv, dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<2x4x9x9xf32>, tensor<8x4x3x3xf32>) outs(%acc : tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32>
  return %y : tensor<2x8x4x4xf32>
}

// -----

// Left whole: one image, a dynamic batch, and a batch above MAX_BATCH (16).
// CHECK-LABEL: func.func @kept
//   CHECK-NOT:   tensor.insert_slice
// CHECK-COUNT-3:   linalg.conv_2d_nchw_fchw
//   CHECK-NOT:   tensor.insert_slice
func.func @kept(%x1: tensor<1x4x6x6xf32>, %a1: tensor<1x8x4x4xf32>, %xd: tensor<?x4x6x6xf32>,
                %ad: tensor<?x8x4x4xf32>, %x17: tensor<17x4x6x6xf32>, %a17: tensor<17x8x4x4xf32>)
    -> (tensor<1x8x4x4xf32>, tensor<?x8x4x4xf32>, tensor<17x8x4x4xf32>) {
  %w = arith.constant dense<1.0> : tensor<8x4x3x3xf32>
  %y1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x1, %w : tensor<1x4x6x6xf32>, tensor<8x4x3x3xf32>) outs(%a1 : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %yd = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%xd, %w : tensor<?x4x6x6xf32>, tensor<8x4x3x3xf32>) outs(%ad : tensor<?x8x4x4xf32>) -> tensor<?x8x4x4xf32>
  %y17 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x17, %w : tensor<17x4x6x6xf32>, tensor<8x4x3x3xf32>) outs(%a17 : tensor<17x8x4x4xf32>) -> tensor<17x8x4x4xf32>
  return %y1, %yd, %y17 : tensor<1x8x4x4xf32>, tensor<?x8x4x4xf32>, tensor<17x8x4x4xf32>
}
