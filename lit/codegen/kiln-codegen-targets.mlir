// Each target compiles its own copy of kiln-lower's linalg through its own pipeline: the
// CPU's packs matmuls on a register tile (an option, chosen from the CPU's features by
// kiln.compile), the GPU targets' leave IREE its own code generation.
// RUN: kiln-opt %s --kiln-codegen-cpu | filecheck %s --check-prefix=CPU
// RUN: kiln-opt %s --pass-pipeline='kiln-codegen-cpu{tile=8x32}' | filecheck %s --check-prefix=WIDE
// RUN: kiln-opt %s --kiln-codegen-cuda | filecheck %s --check-prefix=GPU
// RUN: kiln-opt %s --kiln-codegen-vulkan | filecheck %s --check-prefix=GPU
// RUN: kiln-opt %s --kiln-codegen-rocm | filecheck %s --check-prefix=GPU
// RUN: not kiln-opt %s --pass-pipeline='kiln-codegen-cuda{tile=6x16}' 2>&1 | filecheck %s --check-prefix=NOOPT
// RUN: not kiln-opt %s --pass-pipeline='kiln-codegen-cpu{tiles=6x16}' 2>&1 | filecheck %s --check-prefix=UNKNOWN

// CPU-LABEL: func.func @matmul
//       CPU:   "flow.dispatch.region"
//       CPU:   linalg.mmt4d {{.+}} -> tensor<22x2x6x16xf32>
//   CPU-NOT:   linalg.matmul
// WIDE-LABEL: func.func @matmul
//       WIDE:   linalg.mmt4d {{.+}} -> tensor<16x1x8x32xf32>
// GPU-LABEL: func.func @matmul
//       GPU:   linalg.matmul
//   GPU-NOT:   linalg.mmt4d
// NOOPT: pipeline 'kiln-codegen-cuda' takes no option tile; its options: none
// UNKNOWN: pipeline 'kiln-codegen-cpu' takes no option tiles; its options: tile
func.func @matmul(%a: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w = arith.constant dense<1.0> : tensor<64x32xf32>
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<128x32xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%empty : tensor<128x32xf32>) -> tensor<128x32xf32>
  %r = linalg.matmul ins(%a, %w : tensor<128x64xf32>, tensor<64x32xf32>) outs(%fill : tensor<128x32xf32>) -> tensor<128x32xf32>
  return %r : tensor<128x32xf32>
}
