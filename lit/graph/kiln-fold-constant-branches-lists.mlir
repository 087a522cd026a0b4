// RUN: kiln-opt %s --kiln-fold-constant-branches | filecheck %s

// torch.nn's RNN input checks compare size lists (`hx.size() != expected`); once the shapes
// are static both lists are constants, and the raise on the dead branch goes away.
// CHECK-LABEL: func.func @size_check_folds
//   CHECK-NOT:   kiln.if
//   CHECK-NOT:   torch.prim.RaiseException
//       CHECK:   return
func.func @size_check_folds(%x: !torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,3],f32> {
  %int2 = torch.constant.int 2
  %int3 = torch.constant.int 3
  %none = torch.constant.none
  %str = torch.constant.str "Expected hidden size"
  %a = torch.prim.ListConstruct %int2, %int3 : (!torch.int, !torch.int) -> !torch.list<int>
  %b = torch.prim.ListConstruct %int2, %int3 : (!torch.int, !torch.int) -> !torch.list<int>
  %ne = torch.aten.ne.int_list %a, %b : !torch.list<int>, !torch.list<int> -> !torch.bool
  "kiln.if"(%ne) ({
    torch.prim.RaiseException %str, %none : !torch.str, !torch.none
    "kiln.yield"() : () -> ()
  }, {
    "kiln.yield"() : () -> ()
  }) : (!torch.bool) -> ()
  return %x : !torch.vtensor<[2,3],f32>
}

// Lists that differ: eq is false, the else branch is taken.
// CHECK-LABEL: func.func @eq_false_takes_else
//   CHECK-NOT:   kiln.if
//       CHECK:   %[[N:.+]] = torch.aten.neg
//       CHECK:   return %[[N]]
func.func @eq_false_takes_else(%x: !torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,3],f32> {
  %int2 = torch.constant.int 2
  %int3 = torch.constant.int 3
  %a = torch.prim.ListConstruct %int2, %int3 : (!torch.int, !torch.int) -> !torch.list<int>
  %b = torch.prim.ListConstruct %int3, %int2 : (!torch.int, !torch.int) -> !torch.list<int>
  %eq = torch.aten.eq.int_list %a, %b : !torch.list<int>, !torch.list<int> -> !torch.bool
  %0 = "kiln.if"(%eq) ({
    "kiln.yield"(%x) : (!torch.vtensor<[2,3],f32>) -> ()
  }, {
    %n = torch.aten.neg %x : !torch.vtensor<[2,3],f32> -> !torch.vtensor<[2,3],f32>
    "kiln.yield"(%n) : (!torch.vtensor<[2,3],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[2,3],f32>
  return %0 : !torch.vtensor<[2,3],f32>
}

// A list that is not all constants stays undecided.
// CHECK-LABEL: func.func @dynamic_list_stays
//       CHECK:   kiln.if
func.func @dynamic_list_stays(%x: !torch.vtensor<[2,3],f32>, %n: !torch.int) -> !torch.vtensor<[2,3],f32> {
  %int2 = torch.constant.int 2
  %none = torch.constant.none
  %str = torch.constant.str "bad"
  %a = torch.prim.ListConstruct %int2, %n : (!torch.int, !torch.int) -> !torch.list<int>
  %b = torch.prim.ListConstruct %int2, %int2 : (!torch.int, !torch.int) -> !torch.list<int>
  %ne = torch.aten.ne.int_list %a, %b : !torch.list<int>, !torch.list<int> -> !torch.bool
  "kiln.if"(%ne) ({
    torch.prim.RaiseException %str, %none : !torch.str, !torch.none
    "kiln.yield"() : () -> ()
  }, {
    "kiln.yield"() : () -> ()
  }) : (!torch.bool) -> ()
  return %x : !torch.vtensor<[2,3],f32>
}
