# RUN: %PYTHON %s | filecheck %s
# The TorchScript importer: control flow, constants, structures and source lines.
import warnings
from typing import Optional

import torch

from kiln.errors import KilnError
from kiln.frontend.torchscript import import_script

warnings.filterwarnings("ignore")


def run(case):
    print(f"TEST: {case.__name__}")
    case()
    return case


# CHECK-LABEL: TEST: branch_becomes_kiln_if
# CHECK:       func.func @main(%[[X:.+]]: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
# CHECK:         %[[R:.+]] = "kiln.if"
# CHECK:           torch.aten.relu
# CHECK:           "kiln.yield"
# CHECK:           torch.aten.neg
# CHECK:           "kiln.yield"
# CHECK:         return %[[R]]
@run
def branch_becomes_kiln_if():
    @torch.jit.script
    def pick(x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return torch.relu(x)
        return -x

    print(import_script(pick, (torch.ones(4),)).module)


# A while loop carries its tensor; its result type is refined from what flows into it.
# CHECK-LABEL: TEST: while_loop_becomes_kiln_loop
# CHECK:       %[[R:.+]] = "kiln.loop"(%{{.+}}, %{{.+}}, %{{.+}})
# CHECK-NEXT:  ^bb0(%{{.+}}: !torch.int, %[[H:.+]]: !torch.vtensor<[2,3],f32>):
# CHECK:         torch.aten.mul.Scalar %[[H]]
# CHECK:         "kiln.yield"(%{{.+}}, %{{.+}}) : (!torch.bool, !torch.vtensor<[2,3],f32>) -> ()
# CHECK:       (!torch.int, !torch.bool, !torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,3],f32>
# CHECK:       return %[[R]]
@run
def while_loop_becomes_kiln_loop():
    @torch.jit.script
    def double(x: torch.Tensor) -> torch.Tensor:
        while x.sum() < 100.0:
            x = x * 2.0
        return x

    print(import_script(double, (torch.ones(2, 3),)).module)


# A `for` loop with a `break`: TorchScript counts the trips itself and folds the break into the
# condition the body yields (`trip < 10 and not broke`); the loop is entered with `true`.
# CHECK-LABEL: TEST: break_becomes_a_computed_condition
# CHECK:       %[[TRUE:.+]] = torch.constant.bool true
# CHECK:       "kiln.loop"(%{{.+}}, %[[TRUE]], %{{.+}}, %{{.+}})
# CHECK:         %[[GO:[0-9a-z_]+]]:2 = "kiln.if"
# CHECK:         %[[MORE:.+]] = torch.aten.lt.int
# CHECK:         %[[C:.+]] = torch.aten.__and__.bool %[[MORE]], %[[GO]]#0
# CHECK:         "kiln.yield"(%[[C]], %{{[^)]+}}) : (!torch.bool,
# CHECK-SAME:      !torch.vtensor<[2],f32>, !torch.int) -> ()
@run
def break_becomes_a_computed_condition():
    @torch.jit.script
    def double(x: torch.Tensor) -> torch.Tensor:
        for _ in range(10):
            if x.sum() > 50.0:
                break
            x = x * 2.0
        return x

    print(import_script(double, (torch.ones(2),)).module)


# Frozen weights become kiln.param (named after the attribute), not literals in the IR.
# CHECK-LABEL: TEST: weights_become_params
# CHECK:       "kiln.param"() {qualname = "bias"} : () -> !torch.vtensor<[3],f32>
# CHECK:       "kiln.param"() {qualname = "weight"} : () -> !torch.vtensor<[3,2],f32>
# CHECK:       torch.aten.linear
# CHECK:       params: ['bias', 'weight']
@run
def weights_become_params():
    program = import_script(torch.jit.script(torch.nn.Linear(2, 3)), (torch.ones(1, 2),))
    print(program.module)
    print("params:", sorted(program.params))


# prim::Constant of scalars, prim::ListConstruct and aten::append in an unrolled for loop,
# prim::TupleConstruct / prim::TupleUnpack, prim::DictConstruct outputs flattened.
# CHECK-LABEL: TEST: lists_tuples_and_dicts
# CHECK:       %[[L:.+]] = torch.prim.ListConstruct %{{.+}}, %{{.+}}, %{{.+}} : (
# CHECK:       torch.aten.stack %[[L]]
# CHECK:       return
# CHECK:       out_spec: TreeSpec(dict
@run
def lists_tuples_and_dicts():
    @torch.jit.script
    def rows(xs: torch.Tensor) -> dict[str, torch.Tensor]:
        items = []
        for i in range(xs.size(0)):
            items.append(xs[i] * 2.0)
        pair = (torch.stack(items), xs)
        a, b = pair
        return {"stacked": a, "input": b}

    program = import_script(rows, (torch.ones(3, 2),))
    print(program.module)
    print("out_spec:", program.signature.out_spec)


# Scalar and None inputs are specialized to constants: the branch on them folds away.
# CHECK-LABEL: TEST: scalar_inputs_are_specialized
# CHECK:       func.func @main(%{{.+}}: !torch.vtensor<[4],f32>) ->
# CHECK-NOT:   kiln.if
# CHECK:       torch.aten.mul.Scalar
# CHECK:       return
@run
def scalar_inputs_are_specialized():
    @torch.jit.script
    def scale(x: torch.Tensor, k: float, bias: Optional[torch.Tensor]) -> torch.Tensor:
        if bias is None:
            return x * k
        return x * k + bias

    print(import_script(scale, (torch.ones(4), 2.0, None)).module)


# Each op's location is its TorchScript source line.
# CHECK-LABEL: TEST: locations_are_source_lines
# CHECK:       torch.aten.tanh {{.+}} loc(#[[L:loc[0-9]+]])
# CHECK:       #[[L]] = loc("{{.*}}torchscript_import.py":[[# @LINE + 5]]:0)
@run
def locations_are_source_lines():
    @torch.jit.script
    def squash(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    module = import_script(squash, (torch.ones(2),)).module
    print(module.operation.get_asm(enable_debug_info=True))


# CHECK-LABEL: TEST: side_effect_names_its_line
# CHECK:       Kiln cannot compile the PyTorch op 'prim::Print' (at {{.*}}torchscript_import.py:[[# @LINE + 5]])
@run
def side_effect_names_its_line():
    @torch.jit.script
    def noisy(x: torch.Tensor) -> torch.Tensor:
        print(x)
        return x

    try:
        import_script(noisy, (torch.ones(4),))
    except KilnError as e:
        print(e)


# A raise the shapes do not decide stays in its branch, with its message (kiln-lower-control-flow
# makes it a check the program runs).
# CHECK-LABEL: TEST: live_raise_is_imported
# CHECK:       %[[MSG:.+]] = torch.constant.str "negative"
# CHECK:       "kiln.if"
# CHECK-NEXT:    torch.prim.RaiseException %[[MSG]]
@run
def live_raise_is_imported():
    @torch.jit.script
    def checked(x: torch.Tensor) -> torch.Tensor:
        if x.sum() < 0:
            raise ValueError("negative")
        return x

    print(import_script(checked, (torch.ones(4),)).module)
