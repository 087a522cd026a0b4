// RUN: kiln-opt %s --kiln-lower-control-flow | filecheck %s

// `if c: raise ValueError("too large")` left live becomes a check the program runs.
// CHECK-LABEL: func.func @raise_in_then
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[3],f32>, %[[C:.+]]: !torch.bool)
//   CHECK-NOT:   kiln.if
//   CHECK-NOT:   torch.prim.If
//       CHECK:   %[[TRUE:.+]] = torch.constant.bool true
//       CHECK:   %[[HOLDS:.+]] = torch.aten.ne.bool %[[C]], %[[TRUE]]
//       CHECK:   torch.runtime.assert %[[HOLDS]], "too large"
func.func @raise_in_then(%x: !torch.vtensor<[3],f32>, %c: !torch.bool) -> !torch.vtensor<[3],f32> {
  %none = torch.constant.none
  %str = torch.constant.str "too large"
  "kiln.if"(%c) ({
    torch.prim.RaiseException %str, %none : !torch.str, !torch.none
    "kiln.yield"() : () -> ()
  }, {
    "kiln.yield"() : () -> ()
  }) : (!torch.bool) -> ()
  return %x : !torch.vtensor<[3],f32>
}

// `if c: pass else: raise`: the check is c itself.
// CHECK-LABEL: func.func @raise_in_else
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[3],f32>, %[[C:.+]]: !torch.bool)
//   CHECK-NOT:   torch.aten.ne.bool
//       CHECK:   torch.runtime.assert %[[C]], "must hold"
func.func @raise_in_else(%x: !torch.vtensor<[3],f32>, %c: !torch.bool) -> !torch.vtensor<[3],f32> {
  %none = torch.constant.none
  %str = torch.constant.str "must hold"
  "kiln.if"(%c) ({
    "kiln.yield"() : () -> ()
  }, {
    torch.prim.RaiseException %str, %none : !torch.str, !torch.none
    "kiln.yield"() : () -> ()
  }) : (!torch.bool) -> ()
  return %x : !torch.vtensor<[3],f32>
}
