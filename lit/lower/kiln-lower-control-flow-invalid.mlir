// RUN: not kiln-opt %s --kiln-lower-control-flow 2>&1 | filecheck %s

// A loop with a computed condition becomes scf.while on builtin types; a list has none, so the
// pass names the loop and the type instead of handing torch-mlir a loop it would mislower.
func.func @list_carried_through_a_while(%n: !torch.int, %l: !torch.list<int>, %stop: !torch.bool) -> !torch.list<int> {
  %true = torch.constant.bool true
  // CHECK: {{.*}}.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: a loop with a computed condition (while, break) cannot carry '!torch.list<int>': only tensors of known dtype, ints, floats and bools
  %0 = "kiln.loop"(%n, %true, %l) ({
  ^bb0(%i: !torch.int, %m: !torch.list<int>):
    "kiln.yield"(%stop, %m) : (!torch.bool, !torch.list<int>) -> ()
  }) : (!torch.int, !torch.bool, !torch.list<int>) -> !torch.list<int>
  return %0 : !torch.list<int>
}
