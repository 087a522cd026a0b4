// RUN: kiln-opt %s --kiln-lower-attention | filecheck %s
// RUN: kiln-opt %s --kiln-lower | filecheck %s --check-prefix=LINALG

// kiln.attention becomes torch's SDPA; the 2-D mask gets a leading unit dim.
// CHECK-LABEL: func.func @with_mask
//  CHECK-SAME:   (%[[Q:.+]]: !torch.vtensor<[2,8,16],f32>, %[[K:.+]]: !torch.vtensor<[2,6,16],f32>, %[[V:.+]]: !torch.vtensor<[2,6,4],f32>, %[[M:.+]]: !torch.vtensor<[8,6],f32>)
//       CHECK:   %[[M3:.+]] = torch.aten.unsqueeze %[[M]], %{{.+}} : !torch.vtensor<[8,6],f32>, !torch.int -> !torch.vtensor<[1,8,6],f32>
//       CHECK:   %[[S:.+]] = torch.constant.float 2.500000e-01
//       CHECK:   %[[A:.+]] = torch.aten.scaled_dot_product_attention %[[Q]], %[[K]], %[[V]], %[[M3]], %{{.+}}, %{{.+}}, %[[S]], %{{.+}}
//       CHECK:   return %[[A]]
// torch-mlir hands IREE one attention op (IREE imports it as iree_linalg_ext.attention).
// LINALG-LABEL: func.func @with_mask
//       LINALG:   tm_tensor.attention
func.func @with_mask(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,6,16],f32>, %v: !torch.vtensor<[2,6,4],f32>, %m: !torch.vtensor<[8,6],f32>) -> !torch.vtensor<[2,8,4],f32> {
  %o = "kiln.attention"(%q, %k, %v, %m) {scale = 2.500000e-01 : f64} : (!torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,6,16],f32>, !torch.vtensor<[2,6,4],f32>, !torch.vtensor<[8,6],f32>) -> !torch.vtensor<[2,8,4],f32>
  return %o : !torch.vtensor<[2,8,4],f32>
}

// Without a mask the mask operand is none.
// CHECK-LABEL: func.func @no_mask
//       CHECK:   %[[NONE:.+]] = torch.constant.none
//       CHECK:   torch.aten.scaled_dot_product_attention %{{.+}}, %{{.+}}, %{{.+}}, %[[NONE]]
func.func @no_mask(%q: !torch.vtensor<[2,8,16],f32>) -> !torch.vtensor<[2,8,16],f32> {
  %o = "kiln.attention"(%q, %q, %q) {scale = 1.000000e+00 : f64} : (!torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,8,16],f32>) -> !torch.vtensor<[2,8,16],f32>
  return %o : !torch.vtensor<[2,8,16],f32>
}
