// RUN: kiln-opt %s --kiln-raise-attention | filecheck %s

// matmul, transpose of the key, / sqrt(d), a float mask, softmax, matmul: one op.
// CHECK-LABEL: func.func @matmul_form
//  CHECK-SAME:   (%[[Q:.+]]: !torch.vtensor<[2,8,16],f32>, %[[K:.+]]: !torch.vtensor<[2,6,16],f32>, %[[V:.+]]: !torch.vtensor<[2,6,4],f32>, %[[M:.+]]: !torch.vtensor<[8,6],f32>)
//       CHECK:   %[[A:.+]] = "kiln.attention"(%[[Q]], %[[K]], %[[V]], %[[M]]) {scale = 2.500000e-01 : f64}
//   CHECK-NOT:   torch.aten._softmax
//       CHECK:   return %[[A]]
func.func @matmul_form(%q: !torch.vtensor<[2,8,16],f32>, %k: !torch.vtensor<[2,6,16],f32>, %v: !torch.vtensor<[2,6,4],f32>, %m: !torch.vtensor<[8,6],f32>) -> !torch.vtensor<[2,8,4],f32> {
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int-1 = torch.constant.int -1
  %false = torch.constant.bool false
  %four = torch.constant.float 4.000000e+00
  %kt = torch.aten.transpose.int %k, %int1, %int2 : !torch.vtensor<[2,6,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[2,16,6],f32>
  %s = torch.aten.matmul %q, %kt : !torch.vtensor<[2,8,16],f32>, !torch.vtensor<[2,16,6],f32> -> !torch.vtensor<[2,8,6],f32>
  %scaled = torch.aten.div.Scalar %s, %four : !torch.vtensor<[2,8,6],f32>, !torch.float -> !torch.vtensor<[2,8,6],f32>
  %masked = torch.aten.add.Tensor %scaled, %m, %int1 : !torch.vtensor<[2,8,6],f32>, !torch.vtensor<[8,6],f32>, !torch.int -> !torch.vtensor<[2,8,6],f32>
  %p = torch.aten._softmax %masked, %int-1, %false : !torch.vtensor<[2,8,6],f32>, !torch.int, !torch.bool -> !torch.vtensor<[2,8,6],f32>
  %o = torch.aten.matmul %p, %v : !torch.vtensor<[2,8,6],f32>, !torch.vtensor<[2,6,4],f32> -> !torch.vtensor<[2,8,4],f32>
  return %o : !torch.vtensor<[2,8,4],f32>
}

// export's 4-D matmul (expand, view, bmm, view), a permuted key, * 0.125, no mask.
// CHECK-LABEL: func.func @exported_form
//  CHECK-SAME:   (%[[Q:.+]]: !torch.vtensor<[1,2,4,8],f32>, %[[K:.+]]: !torch.vtensor<[1,2,4,8],f32>, %[[V:.+]]: !torch.vtensor<[1,2,4,8],f32>)
//       CHECK:   %[[A:.+]] = "kiln.attention"(%[[Q]], %[[K]], %[[V]]) {scale = 1.250000e-01 : f64}
//   CHECK-NOT:   torch.aten.bmm
//       CHECK:   return %[[A]]
func.func @exported_form(%q: !torch.vtensor<[1,2,4,8],f32>, %k: !torch.vtensor<[1,2,4,8],f32>, %v: !torch.vtensor<[1,2,4,8],f32>) -> !torch.vtensor<[1,2,4,8],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int3 = torch.constant.int 3
  %int4 = torch.constant.int 4
  %int8 = torch.constant.int 8
  %int-1 = torch.constant.int -1
  %false = torch.constant.bool false
  %eighth = torch.constant.float 1.250000e-01
  %perm = torch.prim.ListConstruct %int0, %int1, %int3, %int2 : (!torch.int, !torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %kt = torch.aten.permute %k, %perm : !torch.vtensor<[1,2,4,8],f32>, !torch.list<int> -> !torch.vtensor<[1,2,8,4],f32>
  %q3s = torch.prim.ListConstruct %int2, %int4, %int8 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %q3 = torch.aten.view %q, %q3s : !torch.vtensor<[1,2,4,8],f32>, !torch.list<int> -> !torch.vtensor<[2,4,8],f32>
  %k3s = torch.prim.ListConstruct %int2, %int8, %int4 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %k3 = torch.aten.view %kt, %k3s : !torch.vtensor<[1,2,8,4],f32>, !torch.list<int> -> !torch.vtensor<[2,8,4],f32>
  %s3 = torch.aten.bmm %q3, %k3 : !torch.vtensor<[2,4,8],f32>, !torch.vtensor<[2,8,4],f32> -> !torch.vtensor<[2,4,4],f32>
  %s4s = torch.prim.ListConstruct %int1, %int2, %int4, %int4 : (!torch.int, !torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %s = torch.aten.view %s3, %s4s : !torch.vtensor<[2,4,4],f32>, !torch.list<int> -> !torch.vtensor<[1,2,4,4],f32>
  %scaled = torch.aten.mul.Scalar %s, %eighth : !torch.vtensor<[1,2,4,4],f32>, !torch.float -> !torch.vtensor<[1,2,4,4],f32>
  %p = torch.aten._softmax %scaled, %int-1, %false : !torch.vtensor<[1,2,4,4],f32>, !torch.int, !torch.bool -> !torch.vtensor<[1,2,4,4],f32>
  %p4s = torch.prim.ListConstruct %int1, %int2, %int4, %int4 : (!torch.int, !torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %pe = torch.aten.expand %p, %p4s, %false : !torch.vtensor<[1,2,4,4],f32>, !torch.list<int>, !torch.bool -> !torch.vtensor<[1,2,4,4],f32>
  %p3s = torch.prim.ListConstruct %int2, %int4, %int4 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %p3 = torch.aten.view %pe, %p3s : !torch.vtensor<[1,2,4,4],f32>, !torch.list<int> -> !torch.vtensor<[2,4,4],f32>
  %v3 = torch.aten.view %v, %q3s : !torch.vtensor<[1,2,4,8],f32>, !torch.list<int> -> !torch.vtensor<[2,4,8],f32>
  %o3 = torch.aten.bmm %p3, %v3 : !torch.vtensor<[2,4,4],f32>, !torch.vtensor<[2,4,8],f32> -> !torch.vtensor<[2,4,8],f32>
  %o4s = torch.prim.ListConstruct %int1, %int2, %int4, %int8 : (!torch.int, !torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %o = torch.aten.view %o3, %o4s : !torch.vtensor<[2,4,8],f32>, !torch.list<int> -> !torch.vtensor<[1,2,4,8],f32>
  return %o : !torch.vtensor<[1,2,4,8],f32>
}

// The probabilities are returned too, so raising would compute the softmax twice: no match.
// CHECK-LABEL: func.func @probabilities_escape
//   CHECK-NOT:   kiln.attention
//       CHECK:   torch.aten._softmax
func.func @probabilities_escape(%q: !torch.vtensor<[8,16],f32>, %k: !torch.vtensor<[6,16],f32>, %v: !torch.vtensor<[6,4],f32>) -> (!torch.vtensor<[8,4],f32>, !torch.vtensor<[8,6],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %kt = torch.aten.transpose.int %k, %int0, %int1 : !torch.vtensor<[6,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[16,6],f32>
  %s = torch.aten.matmul %q, %kt : !torch.vtensor<[8,16],f32>, !torch.vtensor<[16,6],f32> -> !torch.vtensor<[8,6],f32>
  %p = torch.aten._softmax %s, %int1, %false : !torch.vtensor<[8,6],f32>, !torch.int, !torch.bool -> !torch.vtensor<[8,6],f32>
  %o = torch.aten.matmul %p, %v : !torch.vtensor<[8,6],f32>, !torch.vtensor<[6,4],f32> -> !torch.vtensor<[8,4],f32>
  return %o, %p : !torch.vtensor<[8,4],f32>, !torch.vtensor<[8,6],f32>
}

// A softmax over the query axis is not attention.
// CHECK-LABEL: func.func @softmax_over_queries
//   CHECK-NOT:   kiln.attention
func.func @softmax_over_queries(%q: !torch.vtensor<[8,16],f32>, %k: !torch.vtensor<[8,16],f32>, %v: !torch.vtensor<[8,4],f32>) -> !torch.vtensor<[8,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %kt = torch.aten.transpose.int %k, %int0, %int1 : !torch.vtensor<[8,16],f32>, !torch.int, !torch.int -> !torch.vtensor<[16,8],f32>
  %s = torch.aten.matmul %q, %kt : !torch.vtensor<[8,16],f32>, !torch.vtensor<[16,8],f32> -> !torch.vtensor<[8,8],f32>
  %p = torch.aten._softmax %s, %int0, %false : !torch.vtensor<[8,8],f32>, !torch.int, !torch.bool -> !torch.vtensor<[8,8],f32>
  %o = torch.aten.matmul %p, %v : !torch.vtensor<[8,8],f32>, !torch.vtensor<[8,4],f32> -> !torch.vtensor<[8,4],f32>
  return %o : !torch.vtensor<[8,4],f32>
}
