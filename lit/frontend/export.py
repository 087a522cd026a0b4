# RUN: %PYTHON %s | filecheck %s
# The export frontend: parameters become kiln.param ops by qualified name, and every op
# carries the Python line of the model code it came from.
import torch

from kiln.frontend.export import export_module


def run(case):
    print(f"TEST: {case.__name__}")
    case()
    return case


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.register_buffer("offset", torch.ones(2))

    def forward(self, x):
        y = self.fc(x)
        return torch.tanh(y) + self.offset


# CHECK-LABEL: TEST: params_are_named_kiln_params
# CHECK:       func.func @main(%{{.+}}: !torch.vtensor<[4,3],f32>
# CHECK-DAG:   "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[2,3],f32>
# CHECK-DAG:   "kiln.param"() {qualname = "fc.bias"} : () -> !torch.vtensor<[2],f32>
# CHECK-DAG:   "kiln.param"() {qualname = "offset"} : () -> !torch.vtensor<[2],f32>
# CHECK-NOT:   dense_resource
# CHECK:       return
@run
def params_are_named_kiln_params():
    program = export_module(Block().eval(), (torch.randn(4, 3),))
    print(program.module)
    assert sorted(program.params) == ["fc.bias", "fc.weight", "offset"]


# CHECK-LABEL: TEST: ops_carry_their_source_line
# CHECK:       torch.aten.tanh {{.*}} loc([[TANH:#loc[0-9]+]])
# CHECK:       [[TANH]] = loc({{.*}}export.py":23:
@run
def ops_carry_their_source_line():
    program = export_module(Block().eval(), (torch.randn(4, 3),))
    print(program.module.operation.get_asm(enable_debug_info=True))
