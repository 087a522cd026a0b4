// RUN: kiln-opt %s --kiln-unroll-loops | filecheck %s
// RUN: kiln-opt %s --kiln-unroll-loops --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-unroll-loops: 4 loops unrolled

// for i in range(3): h = tanh(h + xs[i]). Each copy gets its index as a constant and the
// previous copy's h; the last copy's h replaces the loop.
// CHECK-LABEL: func.func @for_loop
//  CHECK-SAME:   (%[[XS:.+]]: !torch.vtensor<[3,4],f32>, %[[H0:.+]]: !torch.vtensor<[4],f32>)
//   CHECK-NOT:   kiln.loop
//       CHECK:   %[[I0:.+]] = torch.constant.int 0
//       CHECK:   %[[X0:.+]] = torch.aten.select.int %[[XS]], %{{.+}}, %[[I0]]
//       CHECK:   %[[A0:.+]] = torch.aten.add.Tensor %[[H0]], %[[X0]]
//       CHECK:   %[[H1:.+]] = torch.aten.tanh %[[A0]]
//       CHECK:   %[[I1:.+]] = torch.constant.int 1
//       CHECK:   %[[X1:.+]] = torch.aten.select.int %[[XS]], %{{.+}}, %[[I1]]
//       CHECK:   %[[A1:.+]] = torch.aten.add.Tensor %[[H1]], %[[X1]]
//       CHECK:   %[[H2:.+]] = torch.aten.tanh %[[A1]]
//       CHECK:   %[[I2:.+]] = torch.constant.int 2
//       CHECK:   %[[X2:.+]] = torch.aten.select.int %[[XS]], %{{.+}}, %[[I2]]
//       CHECK:   %[[A2:.+]] = torch.aten.add.Tensor %[[H2]], %[[X2]]
//       CHECK:   %[[H3:.+]] = torch.aten.tanh %[[A2]]
//   CHECK-NOT:   torch.aten.tanh
//       CHECK:   return %[[H3]]
func.func @for_loop(%xs: !torch.vtensor<[3,4],f32>, %h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int3 = torch.constant.int 3
  %0 = "kiln.loop"(%int3, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %x = torch.aten.select.int %xs, %int0, %i : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
    %a = torch.aten.add.Tensor %h, %x, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
    %t = torch.aten.tanh %a : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// An if in the body is cloned whole; its regions read the copy's own values.
// CHECK-LABEL: func.func @if_in_body
//  CHECK-SAME:   (%[[H0:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[C0:.+]] = torch.aten.Bool.Tensor
//       CHECK:   %[[R0:.+]] = "kiln.if"(%[[C0]])
//       CHECK:     torch.aten.neg %[[H0]]
//       CHECK:   %[[C1:.+]] = torch.aten.Bool.Tensor
//       CHECK:   %[[R1:.+]] = "kiln.if"(%[[C1]])
//       CHECK:     "kiln.yield"(%[[R0]])
//       CHECK:     torch.aten.neg %[[R0]]
//       CHECK:   return %[[R1]]
func.func @if_in_body(%h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %none = torch.constant.none
  %int0 = torch.constant.int 0
  %int2 = torch.constant.int 2
  %0 = "kiln.loop"(%int2, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %s = torch.aten.sum %h, %none : !torch.vtensor<[4],f32>, !torch.none -> !torch.vtensor<[],f32>
    %gt = torch.aten.gt.Scalar %s, %int0 : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
    %c = torch.aten.Bool.Tensor %gt : !torch.vtensor<[],i1> -> !torch.bool
    %r = "kiln.if"(%c) ({
      "kiln.yield"(%h) : (!torch.vtensor<[4],f32>) -> ()
    }, {
      %n = torch.aten.neg %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
      "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
    }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %r) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Nested for loops: the inner one unrolls first, then the outer one.
// CHECK-LABEL: func.func @nested
//   CHECK-NOT:   kiln.loop
// CHECK-COUNT-4: torch.aten.tanh
//   CHECK-NOT:   torch.aten.tanh
func.func @nested(%h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %int2 = torch.constant.int 2
  %0 = "kiln.loop"(%int2, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %1 = "kiln.loop"(%int2, %true, %h) ({
    ^bb0(%j: !torch.int, %g: !torch.vtensor<[4],f32>):
      %t = torch.aten.tanh %g : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
      "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
    }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %1) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Not unrolled: an unknown trip count; a while loop (the body yields a computed condition,
// e.g. a break); more trips than MAX_UNROLL (128).
// CHECK-LABEL: func.func @not_unrolled
// CHECK-COUNT-3: "kiln.loop"
func.func @not_unrolled(%n: !torch.int, %stop: !torch.bool, %x: !torch.vtensor<[4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %true = torch.constant.bool true
  %int3 = torch.constant.int 3
  %int1000 = torch.constant.int 1000
  %0 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %1 = "kiln.loop"(%int3, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%stop, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %2 = "kiln.loop"(%int1000, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0, %1, %2 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}
