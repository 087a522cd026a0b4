// RUN: kiln-opt %s --kiln-convert-if-to-select | filecheck %s
// RUN: kiln-opt %s --kiln-convert-if-to-select --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-convert-if-to-select: 5 ifs converted

// The tutorial's decision gate: the condition's 0-d bool tensor feeds where.self directly,
// and the host read (aten.Bool.Tensor) goes away.
// CHECK-LABEL: func.func @decision_gate
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[3,4],f32>)
//       CHECK:   %[[GT:.+]] = torch.aten.gt.Scalar
//   CHECK-NOT:   torch.aten.Bool.Tensor
//       CHECK:   %[[N:.+]] = torch.aten.neg %[[X]]
//       CHECK:   %[[R:.+]] = torch.aten.where.self %[[GT]], %[[X]], %[[N]] : !torch.vtensor<[],i1>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
//   CHECK-NOT:   kiln.if
//       CHECK:   return %[[R]]
func.func @decision_gate(%x: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<[3,4],f32> {
  %none = torch.constant.none
  %int0 = torch.constant.int 0
  %s = torch.aten.sum %x, %none : !torch.vtensor<[3,4],f32>, !torch.none -> !torch.vtensor<[],f32>
  %gt = torch.aten.gt.Scalar %s, %int0 : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
  %c = torch.aten.Bool.Tensor %gt : !torch.vtensor<[],i1> -> !torch.bool
  %0 = "kiln.if"(%c) ({
    "kiln.yield"(%x) : (!torch.vtensor<[3,4],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[3,4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[3,4],f32>
  return %0 : !torch.vtensor<[3,4],f32>
}

// A 0-d float condition tensor is compared with 0 first; each result gets its own where.
// CHECK-LABEL: func.func @float_condition_two_results
//  CHECK-SAME:   (%[[T:.+]]: !torch.vtensor<[],f32>, %[[X:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[NE:.+]] = torch.aten.ne.Scalar %[[T]], %{{.+}} : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
//       CHECK:   %[[A:.+]] = torch.aten.relu %[[X]]
//       CHECK:   %[[B:.+]] = torch.aten.tanh %[[X]]
//       CHECK:   %[[R0:.+]] = torch.aten.where.self %[[NE]], %[[A]], %[[X]]
//       CHECK:   %[[R1:.+]] = torch.aten.where.self %[[NE]], %[[X]], %[[B]]
//       CHECK:   return %[[R0]], %[[R1]]
func.func @float_condition_two_results(%t: !torch.vtensor<[],f32>, %x: !torch.vtensor<[4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %c = torch.aten.Bool.Tensor %t : !torch.vtensor<[],f32> -> !torch.bool
  %0:2 = "kiln.if"(%c) ({
    %a = torch.aten.relu %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%a, %x) : (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) -> ()
  }, {
    %b = torch.aten.tanh %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%x, %b) : (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>)
  return %0#0, %0#1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}

// A !torch.bool from scalar code becomes a tensor through Int.bool and NumToTensor.
// CHECK-LABEL: func.func @scalar_condition
//  CHECK-SAME:   (%[[C:.+]]: !torch.bool, %[[X:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[I:.+]] = torch.aten.Int.bool %[[C]]
//       CHECK:   %[[T:.+]] = torch.prim.NumToTensor.Scalar %[[I]] : !torch.int -> !torch.vtensor<[],si64>
//       CHECK:   %[[NE:.+]] = torch.aten.ne.Scalar %[[T]], %{{.+}} : !torch.vtensor<[],si64>, !torch.int -> !torch.vtensor<[],i1>
//       CHECK:   %[[N:.+]] = torch.aten.neg %[[X]]
//       CHECK:   torch.aten.where.self %[[NE]], %[[X]], %[[N]]
func.func @scalar_condition(%c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %0 = "kiln.if"(%c) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Inner ifs convert first, which makes the outer one convertible too.
// CHECK-LABEL: func.func @nested
//   CHECK-NOT:   kiln.if
//       CHECK:   torch.aten.where.self
//       CHECK:   torch.aten.where.self
func.func @nested(%c: !torch.bool, %d: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %0 = "kiln.if"(%c) ({
    %1 = "kiln.if"(%d) ({
      "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
    }, {
      %n = torch.aten.neg %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
      "kiln.yield"(%n) : (!torch.vtensor<[4],f32>) -> ()
    }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%1) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// Not converted: a non-tensor result; an op that reads at a data-dependent index (it could
// be out of bounds on the path not taken); integer arithmetic (division could trap); a loop
// inside a branch.
// CHECK-LABEL: func.func @not_converted
//  CHECK-COUNT-4: "kiln.if"
//    CHECK-NOT:   torch.aten.where.self
func.func @not_converted(%c: !torch.bool, %x: !torch.vtensor<[4],f32>, %k: !torch.vtensor<[4],si64>, %i: !torch.int) -> (!torch.int, !torch.vtensor<[],f32>, !torch.vtensor<[4],si64>, !torch.vtensor<[4],f32>) {
  %true = torch.constant.bool true
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %a = "kiln.if"(%c) ({
    "kiln.yield"(%int0) : (!torch.int) -> ()
  }, {
    "kiln.yield"(%int1) : (!torch.int) -> ()
  }) : (!torch.bool) -> !torch.int
  %b = "kiln.if"(%c) ({
    %s = torch.aten.select.int %x, %int0, %i : !torch.vtensor<[4],f32>, !torch.int, !torch.int -> !torch.vtensor<[],f32>
    "kiln.yield"(%s) : (!torch.vtensor<[],f32>) -> ()
  }, {
    %s = torch.aten.select.int %x, %int0, %int0 : !torch.vtensor<[4],f32>, !torch.int, !torch.int -> !torch.vtensor<[],f32>
    "kiln.yield"(%s) : (!torch.vtensor<[],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[],f32>
  %d = "kiln.if"(%c) ({
    %q = torch.aten.floor_divide %k, %k : !torch.vtensor<[4],si64>, !torch.vtensor<[4],si64> -> !torch.vtensor<[4],si64>
    "kiln.yield"(%q) : (!torch.vtensor<[4],si64>) -> ()
  }, {
    "kiln.yield"(%k) : (!torch.vtensor<[4],si64>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],si64>
  %e = "kiln.if"(%c) ({
    %l = "kiln.loop"(%i, %true, %x) ({
    ^bb0(%j: !torch.int, %h: !torch.vtensor<[4],f32>):
      %t = torch.aten.tanh %h : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
      "kiln.yield"(%true, %t) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
    }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
    "kiln.yield"(%l) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %a, %b, %d, %e : !torch.int, !torch.vtensor<[],f32>, !torch.vtensor<[4],si64>, !torch.vtensor<[4],f32>
}
