// RUN: kiln-opt %s --kiln-hoist-loop-invariants | filecheck %s
// RUN: kiln-opt %s --kiln-hoist-loop-invariants --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-hoist-loop-invariants: 3 ops hoisted

// w * 2 and its relu depend only on values from above: both move out, in order; the op
// reading the carried value and a select at the iteration index stay.
// CHECK-LABEL: func.func @invariant_chain
//  CHECK-SAME:   (%[[N:.+]]: !torch.int, %[[W:.+]]: !torch.vtensor<[4],f32>, %[[XS:.+]]: !torch.vtensor<[8,4],f32>, %[[H0:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[S:.+]] = torch.aten.mul.Scalar %[[W]]
//       CHECK:   %[[R:.+]] = torch.aten.relu %[[S]]
//       CHECK:   "kiln.loop"
//  CHECK-NEXT:   ^bb0(%[[I:.+]]: !torch.int, %[[H:.+]]: !torch.vtensor<[4],f32>):
//  CHECK-NEXT:     %[[X:.+]] = torch.aten.select.int %[[XS]], %{{.+}}, %[[I]]
//  CHECK-NEXT:     %[[M:.+]] = torch.aten.mul.Tensor %[[H]], %[[R]]
//  CHECK-NEXT:     torch.aten.add.Tensor %[[M]], %[[X]]
func.func @invariant_chain(%n: !torch.int, %w: !torch.vtensor<[4],f32>, %xs: !torch.vtensor<[8,4],f32>, %h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %0 = "kiln.loop"(%n, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %int2 = torch.constant.int 2
    %s = torch.aten.mul.Scalar %w, %int2 : !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
    %r = torch.aten.relu %s : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    %x = torch.aten.select.int %xs, %int0, %i : !torch.vtensor<[8,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
    %m = torch.aten.mul.Tensor %h, %r : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    %a = torch.aten.add.Tensor %m, %x, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %a) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Not hoisted: an invariant select (it could read out of bounds when the loop runs zero
// times), invariant integer arithmetic (it could trap), and an if.
// CHECK-LABEL: func.func @not_hoisted
//       CHECK:   "kiln.loop"
//       CHECK:     torch.aten.select.int
//       CHECK:     torch.aten.floor_divide
//       CHECK:     "kiln.if"
func.func @not_hoisted(%n: !torch.int, %c: !torch.bool, %xs: !torch.vtensor<[8,4],f32>, %k: !torch.vtensor<[4],si64>, %h0: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %true = torch.constant.bool true
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %0 = "kiln.loop"(%n, %true, %h0) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    %x = torch.aten.select.int %xs, %int0, %n : !torch.vtensor<[8,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
    %q = torch.aten.floor_divide %k, %k : !torch.vtensor<[4],si64>, !torch.vtensor<[4],si64> -> !torch.vtensor<[4],si64>
    %f = "kiln.if"(%c) ({
      "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
    }, {
      "kiln.yield"(%h0) : (!torch.vtensor<[4],f32>) -> ()
    }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    %a = torch.aten.add.Tensor %h, %f, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
    "kiln.yield"(%true, %a) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}
