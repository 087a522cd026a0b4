// RUN: kiln-opt %s --kiln-lower | filecheck %s

// The lower pipeline ends in linalg on builtin tensors: no torch types or ops survive.
// CHECK-LABEL: func.func @relu_of_sum
//  CHECK-SAME:   (%[[X:.+]]: tensor<4xf32>, %[[Y:.+]]: tensor<4xf32>) -> tensor<4xf32>
//   CHECK-NOT:   torch.
//       CHECK:   linalg.generic
//       CHECK:     arith.addf
//       CHECK:   linalg.generic
//       CHECK:     arith.cmpf ugt
//       CHECK:     arith.select
//       CHECK:   return
func.func @relu_of_sum(%x: !torch.vtensor<[4],f32>, %y: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %int1 = torch.constant.int 1
  %s = torch.aten.add.Tensor %x, %y, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
  %r = torch.aten.relu %s : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  return %r : !torch.vtensor<[4],f32>
}
