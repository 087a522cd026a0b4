"""The TorchScript frontend end to end: kiln.compile numerics against TorchScript's own outputs.

The models follow PyTorch's "Intro to TorchScript" (decision gate, cell, RNN loop, traced
wrapper), then control flow and outputs that tutorial does not cover. TorchScript needs the
source of scripted code in a file, so every model is defined at module level.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import kiln
import tutorial
from kiln.errors import UnsupportedOpError
from kiln.frontend.torchscript import TracingWarning

warnings.filterwarnings("ignore", category=DeprecationWarning)


class RNNLoop(tutorial.RNNLoop):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__()

DecisionGate, Cell = tutorial.DecisionGate, tutorial.Cell


class WrapRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.loop = torch.jit.script(RNNLoop())

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        y, h = self.loop(xs)
        return torch.relu(y)


class DoubleUntilLarge(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.sum() < 100.0:
            x = x * 2.0
        return x


class StackRows(nn.Module):
    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        rows = []
        for i in range(xs.size(0)):
            rows.append(torch.relu(xs[i]) * 2.0)
        return torch.stack(rows)


class DoubleWithBreak(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(10):
            if x.sum() > 50.0:
                break
            x = x * 2.0
        return x


class WhileWithBreak(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.sum() < 50.0:
            x = x * 2.0
            if x.max() > 20.0:
                break
            x = x + 1.0
        return x


class AccumulateUntil(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total, steps = torch.zeros_like(x), 0
        for _ in range(6):
            total = total + x
            steps += 1
            if total.sum() > 10.0:  # reads the carried `total`
                break
        return total * steps


class DictOut(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"double": x * 2.0, "neg": -x}


class Noisy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print(x)
        return x + 1.0


def _close(compiled, reference, *inputs) -> None:
    torch.testing.assert_close(compiled(*inputs), reference(*inputs), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="session")
def gate_case():
    scripted = torch.jit.script(DecisionGate())
    return scripted, kiln.compile(scripted, (torch.rand(3, 4),))


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_decision_gate_takes_both_branches(gate_case, sign):
    scripted, compiled = gate_case
    _close(compiled, scripted, sign * (torch.rand(3, 4) + 0.1))


def test_cell_returns_a_tuple():
    torch.manual_seed(0)
    scripted = torch.jit.script(Cell())
    inputs = (torch.rand(3, 4), torch.rand(3, 4))
    compiled = kiln.compile(scripted, inputs)
    result = compiled(*inputs)
    assert isinstance(result, tuple) and len(result) == 2
    _close(compiled, scripted, *inputs)


@pytest.fixture(scope="session")
def rnn_loop():
    return torch.jit.script(RNNLoop())


def test_scripted_rnn_loop_over_a_traced_cell(rnn_loop):
    xs = torch.rand(5, 3, 4)
    compiled = kiln.compile(rnn_loop, (xs,))
    _close(compiled, rnn_loop, xs)
    _close(compiled, rnn_loop, torch.rand(5, 3, 4) - 0.5)


def test_traced_wrapper_around_a_scripted_loop():
    model, xs = WrapRNN(), torch.rand(5, 3, 4)
    compiled = kiln.compile(model, (xs,), frontend="trace")
    _close(compiled, model, torch.rand(5, 3, 4))


def test_data_dependent_while_loop():
    scripted = torch.jit.script(DoubleUntilLarge())
    compiled = kiln.compile(scripted, (torch.rand(2, 3) + 0.5,))
    _close(compiled, scripted, torch.rand(2, 3) + 0.5)
    _close(compiled, scripted, torch.full((2, 3), 0.01))  # more trips than the example took


def test_list_built_in_a_loop_and_stacked():
    scripted = torch.jit.script(StackRows())
    xs = torch.randn(4, 3)
    _close(kiln.compile(scripted, (xs,)), scripted, xs)


def test_early_break():
    scripted = torch.jit.script(DoubleWithBreak())
    compiled = kiln.compile(scripted, (torch.rand(2, 2) + 0.5,))
    for start in (1e-4, 0.01, 1.0, 100.0):  # runs all 10 trips, breaks late, early, at once
        _close(compiled, scripted, torch.full((2, 2), start))


def test_while_loop_with_a_break_in_an_if():
    scripted = torch.jit.script(WhileWithBreak())
    compiled = kiln.compile(scripted, (torch.rand(2, 2),))
    ends_by_condition, breaks_on_trip_2, never_enters = 1.0, [[0.0, 0.0], [0.0, 6.0]], 300.0
    for x in (torch.full((2, 2), ends_by_condition), torch.tensor(breaks_on_trip_2),
              torch.full((2, 2), never_enters)):
        _close(compiled, scripted, x)


@pytest.fixture(scope="session")
def accumulate_case():
    scripted = torch.jit.script(AccumulateUntil())
    return scripted, kiln.compile(scripted, (torch.rand(3),))


@pytest.mark.parametrize("scale", [0.1, 1.5, 10.0],
                         ids=["runs-all-trips", "breaks-on-trip-3", "breaks-on-trip-1"])
def test_break_on_a_carried_tensor(accumulate_case, scale):
    scripted, compiled = accumulate_case
    _close(compiled, scripted, torch.linspace(0.5, 1.5, 3) * scale)


def test_dict_output():
    scripted = torch.jit.script(DictOut())
    x = torch.rand(3)
    result = kiln.compile(scripted, (x,))(x)
    assert sorted(result) == ["double", "neg"]
    torch.testing.assert_close(result, scripted(x))


def test_archive_compiled_by_path(tmp_path):
    torch.manual_seed(0)
    scripted = torch.jit.script(Cell())
    path = tmp_path / "cell.pt"
    torch.jit.save(scripted, str(path))
    inputs = (torch.rand(3, 4), torch.rand(3, 4))
    _close(kiln.compile(str(path), inputs), scripted, *inputs)


def test_tracing_data_dependent_control_flow_warns():
    with pytest.warns(TracingWarning, match="only the path the example inputs took"):
        kiln.compile(DecisionGate(), (torch.rand(3, 4),), frontend="trace")


def test_unsupported_op_names_the_op_and_line():
    scripted = torch.jit.script(Noisy())
    with pytest.raises(UnsupportedOpError, match=r"'prim::Print' \(at .*test_torchscript\.py:\d+\)"):
        kiln.compile(scripted, (torch.rand(3),))


@torch.jit.script
def _doubling_count(x: torch.Tensor):
    n = 0
    while bool(x.sum() < 100.0):
        x = x * 2
        n += 1
    return x, n, bool(n > 3), float(n) / 2


def test_scalar_outputs_come_back_as_python_scalars(tmp_path):
    """A scripted function returning a loop counter (and a bool and a float computed from it)
    returns them as Python scalars, as TorchScript does, also from a saved artifact."""
    small, large = torch.rand(4) + 0.1, torch.rand(4) * 10 + 1
    compiled = kiln.compile(_doubling_count, (small,))
    compiled.save(tmp_path / "count.kiln")
    for module in (compiled, kiln.load(tmp_path / "count.kiln")):
        for x in (small, large):
            got, want = module(x), _doubling_count(x)
            assert [type(v) for v in got[1:]] == [int, bool, float]
            assert got[1:] == want[1:]
            torch.testing.assert_close(got[0], want[0])
