// RUN: kiln-opt %s --kiln-lower-control-flow | filecheck %s

// kiln.if becomes torch.prim.If with the same condition, regions and results.
// CHECK-LABEL: func.func @branch
//  CHECK-SAME:   (%[[C:.+]]: !torch.bool, %[[X:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[R:.+]] = torch.prim.If %[[C]] -> (!torch.vtensor<[4],f32>)
//       CHECK:     torch.prim.If.yield %[[X]]
//       CHECK:     %[[N:.+]] = torch.aten.neg %[[X]]
//       CHECK:     torch.prim.If.yield %[[N]]
//   CHECK-NOT:   kiln.
//       CHECK:   return %[[R]]
func.func @branch(%c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %0 = "kiln.if"(%c) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// A for-like kiln.loop (constant true condition in and out) becomes torch.prim.Loop as is:
// torch-mlir makes scf.for of it.
// CHECK-LABEL: func.func @for_loop
//  CHECK-SAME:   (%[[N:.+]]: !torch.int, %[[H0:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[T:.+]] = torch.constant.bool true
//       CHECK:   %[[R:.+]] = torch.prim.Loop %[[N]], %[[T]], init(%[[H0]])
//       CHECK:   ^bb0(%{{.+}}: !torch.int, %[[H:.+]]: !torch.vtensor<[4],f32>):
//       CHECK:     %[[NEXT:.+]] = torch.aten.tanh %[[H]]
//       CHECK:     torch.prim.Loop.condition %[[T]], iter(%[[NEXT]] : !torch.vtensor<[4],f32>)
//       CHECK:   return %[[R]]
func.func @for_loop(%n: !torch.int, %h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.loop"(%n, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// A loop entered with a constant true but left by a computed condition (a `break`) becomes a
// guarded do-while on builtin types: torch-mlir would make scf.for of it and drop the break.
// Operands, `after` arguments and results have the same types (index, values), as IREE needs;
// the body runs in `before`, its condition crossing as an i1 scalar.
// CHECK-LABEL: func.func @loop_with_break
//  CHECK-SAME:   (%[[N:.+]]: !torch.int, %[[X:.+]]: !torch.vtensor<[4],f32>, %[[STOP:.+]]: !torch.bool)
//       CHECK:   %[[LIMIT:.+]] = torch_c.to_i64 %[[N]]
//       CHECK:   %[[ZERO:.+]] = arith.constant 0 : i64
//       CHECK:   %[[C0:.+]] = torch_c.to_i1 %{{.+}}
//       CHECK:   %[[ANY:.+]] = arith.cmpi slt, %[[ZERO]], %[[LIMIT]] : i64
//       CHECK:   %[[GO0:.+]] = arith.andi %[[C0]], %[[ANY]] : i1
//       CHECK:   %[[X0:.+]] = torch_c.to_builtin_tensor %[[X]] : !torch.vtensor<[4],f32> -> tensor<4xf32>
//       CHECK:   %[[R:.+]] = scf.if %[[GO0]] -> (tensor<4xf32>) {
//       CHECK:     %[[W:.+]]:2 = scf.while (%[[I:.+]] = %[[ZERO]], %[[V:.+]] = %[[X0]]) : (i64, tensor<4xf32>) -> (i64, tensor<4xf32>) {
//       CHECK:       %[[H:.+]] = torch_c.from_builtin_tensor %[[V]] : tensor<4xf32> -> !torch.vtensor<[4],f32>
//       CHECK:       %[[NEXT:.+]] = arith.addi %[[I]], %{{.+}} : i64
//       CHECK:       %[[C:.+]] = torch_c.to_i1 %[[STOP]]
//       CHECK:       %[[MORE:.+]] = arith.cmpi slt, %[[NEXT]], %[[LIMIT]] : i64
//       CHECK:       %[[GO:.+]] = arith.andi %[[C]], %[[MORE]] : i1
//       CHECK:       %[[OUT:.+]] = torch_c.to_builtin_tensor %[[H]]
//       CHECK:       scf.condition(%[[GO]]) %[[NEXT]], %[[OUT]] : i64, tensor<4xf32>
//       CHECK:     } do {
//       CHECK:     ^bb0(%[[AI:.+]]: i64, %[[AV:.+]]: tensor<4xf32>):
//       CHECK:       scf.yield %[[AI]], %[[AV]] : i64, tensor<4xf32>
//       CHECK:     scf.yield %[[W]]#1 : tensor<4xf32>
//       CHECK:   } else {
//       CHECK:     scf.yield %[[X0]] : tensor<4xf32>
//       CHECK:   %[[RT:.+]] = torch_c.from_builtin_tensor %[[R]] : tensor<4xf32> -> !torch.vtensor<[4],f32>
//   CHECK-NOT:   torch.prim.Loop
//       CHECK:   return %[[RT]]
func.func @loop_with_break(%n: !torch.int, %x: !torch.vtensor<[4],f32>, %stop: !torch.bool) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%stop, %h) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// A while loop (computed condition on entry too) takes the same form. Integer tensors cross as
// signless builtin tensors, an int as i64, and the index reaches the body as a !torch.int.
// CHECK-LABEL: func.func @while_loop
//       CHECK:   %[[C0:.+]] = torch.aten.Bool.Tensor
//       CHECK:   torch_c.to_i1 %[[C0]]
//       CHECK:   torch_c.to_builtin_tensor %{{.+}} : !torch.vtensor<[2,3],si64> -> tensor<2x3xi64>
//       CHECK:   torch_c.to_i64 %{{.+}}
//       CHECK:   scf.if %{{.+}} -> (tensor<2x3xi64>, i64) {
//       CHECK:     scf.while (%[[I:.+]] = %{{.+}}, %{{.+}} = %{{.+}}, %[[K:.+]] = %{{.+}}) : (i64, tensor<2x3xi64>, i64) -> (i64, tensor<2x3xi64>, i64) {
//       CHECK:       %[[TI:.+]] = torch_c.from_i64 %[[I]]
//       CHECK:       %[[TK:.+]] = torch_c.from_i64 %[[K]]
//       CHECK:       %[[SUM:.+]] = torch.aten.add.int %[[TK]], %[[TI]]
//       CHECK:       %[[C:.+]] = torch.aten.Bool.Tensor
//       CHECK:       torch_c.to_i1 %[[C]]
//       CHECK:       torch_c.to_i64 %[[SUM]]
//       CHECK:       scf.condition
//       CHECK:   torch_c.from_builtin_tensor %{{.+}} : tensor<2x3xi64> -> !torch.vtensor<[2,3],si64>
//       CHECK:   torch_c.from_i64
func.func @while_loop(%x: !torch.vtensor<[2,3],si64>, %k: !torch.int) -> (!torch.vtensor<[2,3],si64>, !torch.int) {
  %max = torch.constant.int 9223372036854775807
  %int1 = torch.constant.int 1
  %none = torch.constant.none
  %s0 = torch.aten.sum %x, %none : !torch.vtensor<[2,3],si64>, !torch.none -> !torch.vtensor<[],si64>
  %c0 = torch.aten.Bool.Tensor %s0 : !torch.vtensor<[],si64> -> !torch.bool
  %0:2 = "kiln.loop"(%max, %c0, %x, %k) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[2,3],si64>, %j: !torch.int):
    %d = torch.aten.add.Tensor %h, %h, %int1 : !torch.vtensor<[2,3],si64>, !torch.vtensor<[2,3],si64>, !torch.int -> !torch.vtensor<[2,3],si64>
    %j1 = torch.aten.add.int %j, %i : !torch.int, !torch.int -> !torch.int
    %s = torch.aten.sum %d, %none : !torch.vtensor<[2,3],si64>, !torch.none -> !torch.vtensor<[],si64>
    %c = torch.aten.Bool.Tensor %s : !torch.vtensor<[],si64> -> !torch.bool
    "kiln.yield"(%c, %d, %j1) : (!torch.bool, !torch.vtensor<[2,3],si64>, !torch.int) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[2,3],si64>, !torch.int) -> (!torch.vtensor<[2,3],si64>, !torch.int)
  return %0#0, %0#1 : !torch.vtensor<[2,3],si64>, !torch.int
}

// A break inside a for-like loop: the inner loop becomes scf.while inside torch.prim.Loop.
// CHECK-LABEL: func.func @break_in_a_for_loop
//       CHECK:   torch.prim.Loop
//       CHECK:     scf.if
//       CHECK:       scf.while
//       CHECK:     torch.prim.Loop.condition
//   CHECK-NOT:   "kiln.
func.func @break_in_a_for_loop(%n: !torch.int, %x: !torch.vtensor<[4],f32>, %stop: !torch.bool) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %1 = "kiln.loop"(%n, %true, %h) ({
    ^bb0(%j: !torch.int, %g: !torch.vtensor<[4],f32>):
      %t = torch.aten.tanh %g : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
      "kiln.yield"(%stop, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
    }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %1) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Nested control flow is lowered inside out regions too.
// CHECK-LABEL: func.func @nested
//       CHECK:   torch.prim.Loop
//       CHECK:     torch.prim.If
//   CHECK-NOT:   "kiln.
func.func @nested(%n: !torch.int, %c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %1 = "kiln.if"(%c) ({
      "kiln.yield"(%h) : (!torch.vtensor<[4],f32>) -> ()
    }, {
      "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
    }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %1) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Not control flow: a fusion group and its kiln.yield stay as they are.
// CHECK-LABEL: func.func @fused_group_is_left_alone
//       CHECK:   "kiln.fused"
//       CHECK:     "kiln.yield"
//   CHECK-NOT:   torch.prim
func.func @fused_group_is_left_alone(%x: !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32> {
  %0 = "kiln.fused"(%x) ({
  ^bb0(%a: !torch.vtensor<[8],f32>):
    %t = torch.aten.tanh %a : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
    "kiln.yield"(%t) : (!torch.vtensor<[8],f32>) -> ()
  }) : (!torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32>
  return %0 : !torch.vtensor<[8],f32>
}
