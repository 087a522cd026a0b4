// RUN: kiln-opt %s --kiln-fold-constant-branches | filecheck %s
// RUN: kiln-opt %s --kiln-fold-constant-branches --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-fold-constant-branches: 4 ifs folded
// STATS: // kiln-fold-constant-branches: 2 loops dropped

// A constant true condition: the then region's ops replace the if.
// CHECK-LABEL: func.func @if_true
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4],f32>)
//   CHECK-NOT:   kiln.if
//       CHECK:   %[[R:.+]] = torch.aten.relu %[[X]]
//   CHECK-NOT:   torch.aten.neg
//       CHECK:   return %[[R]]
func.func @if_true(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.if"(%true) ({
    %r = torch.aten.relu %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%r) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// A constant false condition takes the else region, here yielding a value from above.
// CHECK-LABEL: func.func @if_false
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4],f32>)
//   CHECK-NOT:   kiln.if
//   CHECK-NOT:   torch.aten.relu
//       CHECK:   return %[[X]]
func.func @if_false(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %false = torch.constant.bool false
  %0 = "kiln.if"(%false) ({
    %r = torch.aten.relu %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%r) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// A condition computed at run time stays.
// CHECK-LABEL: func.func @if_on_data
//       CHECK:   "kiln.if"
func.func @if_on_data(%c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %0 = "kiln.if"(%c) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Zero trips, or a false initial condition: the loop yields its initial values.
// CHECK-LABEL: func.func @loops_that_never_run
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4],f32>, %[[Y:.+]]: !torch.vtensor<[4],f32>)
//   CHECK-NOT:   kiln.loop
//       CHECK:   return %[[X]], %[[Y]]
func.func @loops_that_never_run(%x: !torch.vtensor<[4],f32>, %y: !torch.vtensor<[4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %true = torch.constant.bool true
  %false = torch.constant.bool false
  %int0 = torch.constant.int 0
  %int5 = torch.constant.int 5
  %0 = "kiln.loop"(%int0, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %1 = "kiln.loop"(%int5, %false, %y) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0, %1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}

// A loop that may run (constant trips > 0, or unknown trips) stays.
// CHECK-LABEL: func.func @loops_that_run
//       CHECK:   "kiln.loop"
//       CHECK:   "kiln.loop"
func.func @loops_that_run(%n: !torch.int, %x: !torch.vtensor<[4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %true = torch.constant.bool true
  %int3 = torch.constant.int 3
  %0 = "kiln.loop"(%int3, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %1 = "kiln.loop"(%n, %true, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0, %1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}

// An if on a constant nested in the untaken branch of another goes with it.
// CHECK-LABEL: func.func @nested_ifs
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4],f32>)
//   CHECK-NOT:   kiln.if
//       CHECK:   %[[R:.+]] = torch.aten.relu %[[X]]
//       CHECK:   return %[[R]]
func.func @nested_ifs(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %0 = "kiln.if"(%true) ({
    %r = torch.aten.relu %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%r) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    %1 = "kiln.if"(%true) ({
      "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
    }, {
      "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
    }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%1) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}
