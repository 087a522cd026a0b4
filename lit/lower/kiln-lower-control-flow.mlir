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

// A for-like kiln.loop (constant true condition in and out) becomes torch.prim.Loop as is.
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

// A loop entered with a constant true but left by a computed condition (a `break`) gets an
// initial condition no folder turns back into `true`, so torch-mlir makes scf.while of it.
// CHECK-LABEL: func.func @loop_with_break
//       CHECK:   %[[NAN:.+]] = torch.aten.isnan
//       CHECK:   %[[OR:.+]] = torch.aten.logical_or
//       CHECK:   %[[C:.+]] = torch.aten.Bool.Tensor %[[OR]]
//       CHECK:   torch.prim.Loop %{{.+}}, %[[C]], init
func.func @loop_with_break(%n: !torch.int, %x: !torch.vtensor<[4],f32>, %stop: !torch.bool) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%stop, %h) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
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
