// RUN: kiln-opt %s --kiln-lower-fused | filecheck %s
// RUN: kiln-opt %s --kiln-lower | filecheck %s --check-prefix=LINALG

// Broadcast inputs read through right-aligned maps: [8] by the inner dim, [4,1] at column 0.
//   CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
//   CHECK-DAG: #[[ROW:.+]] = affine_map<(d0, d1) -> (d1)>
//   CHECK-DAG: #[[COL:.+]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-LABEL: func.func @broadcast_chain
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4,8],f32>, %[[B:.+]]: !torch.vtensor<[8],f32>, %[[S:.+]]: !torch.vtensor<[4,1],f32>)
//   CHECK-DAG:   %[[BX:.+]] = torch_c.to_builtin_tensor %[[X]] : !torch.vtensor<[4,8],f32> -> tensor<4x8xf32>
//   CHECK-DAG:   %[[BB:.+]] = torch_c.to_builtin_tensor %[[B]] : !torch.vtensor<[8],f32> -> tensor<8xf32>
//   CHECK-DAG:   %[[BS:.+]] = torch_c.to_builtin_tensor %[[S]] : !torch.vtensor<[4,1],f32> -> tensor<4x1xf32>
//   CHECK-DAG:   %[[INIT:.+]] = tensor.empty() : tensor<4x8xf32>
//       CHECK:   %[[R:.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[COL]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[BX]], %[[BB]], %[[BS]] : tensor<4x8xf32>, tensor<8xf32>, tensor<4x1xf32>) outs(%[[INIT]] : tensor<4x8xf32>)
//  CHECK-NEXT:   ^bb0(%[[EX:.+]]: f32, %[[EB:.+]]: f32, %[[ES:.+]]: f32, %{{.+}}: f32):
//  CHECK-NEXT:     %[[SUM:.+]] = arith.addf %[[EX]], %[[EB]] : f32
//  CHECK-NEXT:     %[[T:.+]] = math.tanh %[[SUM]] : f32
//  CHECK-NEXT:     %[[P:.+]] = arith.mulf %[[T]], %[[ES]] : f32
//  CHECK-NEXT:     linalg.yield %[[P]] : f32
//       CHECK:   %[[OUT:.+]] = torch_c.from_builtin_tensor %[[R]] : tensor<4x8xf32> -> !torch.vtensor<[4,8],f32>
//       CHECK:   return %[[OUT]]
//   CHECK-NOT: kiln.fused
// After the whole kiln-lower pipeline the casts are gone and one linalg.generic is left.
// LINALG-LABEL: func.func @broadcast_chain
//   LINALG-NOT:   torch_c
//        LINALG:   linalg.generic
//        LINALG:     math.tanh
//   LINALG-NOT:   linalg.generic
//        LINALG:   return
func.func @broadcast_chain(%x: !torch.vtensor<[4,8],f32>, %b: !torch.vtensor<[8],f32>, %s: !torch.vtensor<[4,1],f32>) -> !torch.vtensor<[4,8],f32> {
  %0 = "kiln.fused"(%x, %b, %s) ({
  ^bb0(%a: !torch.vtensor<[4,8],f32>, %c: !torch.vtensor<[8],f32>, %d: !torch.vtensor<[4,1],f32>):
    %int1 = torch.constant.int 1
    %1 = torch.aten.add.Tensor %a, %c, %int1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[4,8],f32>
    %2 = torch.aten.tanh %1 : !torch.vtensor<[4,8],f32> -> !torch.vtensor<[4,8],f32>
    %3 = torch.aten.mul.Tensor %2, %d : !torch.vtensor<[4,8],f32>, !torch.vtensor<[4,1],f32> -> !torch.vtensor<[4,8],f32>
    "kiln.yield"(%3) : (!torch.vtensor<[4,8],f32>) -> ()
  }) : (!torch.vtensor<[4,8],f32>, !torch.vtensor<[8],f32>, !torch.vtensor<[4,1],f32>) -> !torch.vtensor<[4,8],f32>
  return %0 : !torch.vtensor<[4,8],f32>
}

// Scalar operands become arith constants: alpha scales the subtrahend, an int exponent
// becomes math.fpowi (exact for negative bases), a comparison gives the select condition.
// CHECK-LABEL: func.func @scalars_and_select
//       CHECK:   linalg.generic
//       CHECK:   ^bb0(%[[A:.+]]: f32, %[[B:.+]]: f32, %{{.+}}: f32):
//   CHECK-DAG:     %[[TWO:.+]] = arith.constant 2.000000e+00 : f32
//       CHECK:     %[[SCALED:.+]] = arith.mulf %[[B]], %[[TWO]] : f32
//  CHECK-NEXT:     %[[D:.+]] = arith.subf %[[A]], %[[SCALED]] : f32
//       CHECK:     %[[N:.+]] = arith.constant 3 : i32
//  CHECK-NEXT:     %[[CUBE:.+]] = math.fpowi %[[D]], %[[N]] : f32, i32
//       CHECK:     %[[POS:.+]] = arith.cmpf ogt, %[[CUBE]], %{{.+}} : f32
//       CHECK:     %[[W:.+]] = arith.select %[[POS]], %[[CUBE]], %{{.+}} : f32
//  CHECK-NEXT:     linalg.yield %[[W]] : f32
func.func @scalars_and_select(%x: !torch.vtensor<[8],f32>, %y: !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32> {
  %0 = "kiln.fused"(%x, %y) ({
  ^bb0(%a: !torch.vtensor<[8],f32>, %b: !torch.vtensor<[8],f32>):
    %int2 = torch.constant.int 2
    %int3 = torch.constant.int 3
    %float0 = torch.constant.float 0.000000e+00
    %1 = torch.aten.sub.Tensor %a, %b, %int2 : !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[8],f32>
    %2 = torch.aten.pow.Tensor_Scalar %1, %int3 : !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[8],f32>
    %3 = torch.aten.gt.Scalar %2, %float0 : !torch.vtensor<[8],f32>, !torch.float -> !torch.vtensor<[8],i1>
    %4 = torch.aten.sigmoid %2 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
    %5 = torch.aten.where.self %3, %2, %4 : !torch.vtensor<[8],i1>, !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
    "kiln.yield"(%5) : (!torch.vtensor<[8],f32>) -> ()
  }) : (!torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32>
  return %0 : !torch.vtensor<[8],f32>
}

// GELU's tanh approximation: the cube, the 0.044715 term, tanh, then 0.5 * x * (1 + t).
// CHECK-LABEL: func.func @gelu_tanh
//       CHECK:   linalg.generic
//       CHECK:     arith.constant 4.471500e-02 : f32
//       CHECK:     math.tanh
//       CHECK:     arith.constant 5.000000e-01 : f32
//       CHECK:     linalg.yield
func.func @gelu_tanh(%x: !torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,3],f32> {
  %0 = "kiln.fused"(%x) ({
  ^bb0(%a: !torch.vtensor<[2,3],f32>):
    %str = torch.constant.str "tanh"
    %float1 = torch.constant.float 1.000000e+00
    %int1 = torch.constant.int 1
    %1 = torch.aten.gelu %a, %str : !torch.vtensor<[2,3],f32>, !torch.str -> !torch.vtensor<[2,3],f32>
    %2 = torch.aten.add.Scalar %1, %float1, %int1 : !torch.vtensor<[2,3],f32>, !torch.float, !torch.int -> !torch.vtensor<[2,3],f32>
    "kiln.yield"(%2) : (!torch.vtensor<[2,3],f32>) -> ()
  }) : (!torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,3],f32>
  return %0 : !torch.vtensor<[2,3],f32>
}
