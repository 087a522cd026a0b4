"""Control-flow simplification (passes/control_flow_opt.py) end to end: the scripted loops and
branches it rewrites still compute what TorchScript computes, on inputs taking every branch.

TorchScript needs the source of scripted code in a file, so every model is defined at module
level. Limits (MAX_UNROLL, ...) are checked on the graph IR only: the program cache does not
know about them, so a kiln.compile after changing one could return the earlier program.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

import kiln
import tutorial
from kiln.frontend.torchscript import import_script
from kiln.passes import control_flow_opt
from kiln.passes.pipelines import run_pipeline
from kiln.passes.registry import PassContext

warnings.filterwarnings("ignore", category=DeprecationWarning)


DecisionGate, Cell = tutorial.DecisionGate, tutorial.Cell


class RNNLoop(tutorial.RNNLoop):
    """The "Intro to TorchScript" loop, as in benchmarks/models.py `rnn_loop`."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__()


class FirstStepDiffers(nn.Module):
    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(4)
        for i in range(xs.size(0)):
            if i == 0:
                h = xs[i] * 2.0
            else:
                h = torch.tanh(h + xs[i])
        return h


class ScalarCondition(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 1.0:
            return torch.relu(x)
        return x * 2.0


class FloatTensorCondition(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum():
            return torch.sigmoid(x)
        return x + 1.0


class RecurrentLinear(nn.Module):
    """Each step's linear reads the carried h: nothing of it may be batched across steps."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.wx, self.wh = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(2, 4)
        for i in range(xs.size(0)):
            h = torch.tanh(self.wx(torch.relu(xs[i])) * 0.5 + self.wh(h))
        return h


class InvariantInWhile(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        while x.sum() < 100.0:
            x = x * (torch.sigmoid(y) + 1.0)
        return x


def _close(compiled, reference, *inputs) -> None:
    torch.testing.assert_close(compiled(*inputs), reference(*inputs), rtol=1e-5, atol=1e-5)


def _compile(model: nn.Module, *inputs: torch.Tensor):
    """(TorchScript module, Kiln module, pass stats) for `model` scripted."""
    scripted = torch.jit.script(model.eval())
    stats: dict[str, dict[str, int]] = {}
    compiled = kiln.compile(scripted, inputs, options=kiln.CompileOptions(stats=stats))
    return scripted, compiled, stats


def _graph_ir(model: nn.Module, *inputs: torch.Tensor) -> str:
    """The IR after kiln-graph, without IREE (cheap; no program cache involved)."""
    program = import_script(torch.jit.script(model.eval()), inputs)
    run_pipeline(program.module, ["kiln-import-cleanup", "kiln-graph"], "test",
                 PassContext(params=program.params))
    return str(program.module)


@pytest.fixture(scope="module")
def rnn():
    xs = torch.randn(100, 3, 4)
    return (xs, *_compile(RNNLoop(), xs))


def test_rnn_loop_becomes_straight_line_code(rnn):
    xs, _, compiled, stats = rnn
    assert "kiln.loop" not in compiled.ir("graph") and "kiln.if" not in compiled.ir("graph")
    assert not re.search(r"scf\.(if|for|while)", compiled.ir("linalg"))
    assert stats["kiln-unroll-loops"] == {"loops unrolled": 1}
    assert stats["kiln-convert-if-to-select"] == {"ifs converted": 100}
    # linear, sum, gt, neg, where of every step run once on all of xs; add/tanh stay per step.
    assert stats["kiln-batch-slices"] == {"ops batched": 500}
    assert "torch.aten.linear %arg0" in compiled.ir("graph")


def _steps(shift: float) -> torch.Tensor:
    return torch.randn(100, 3, 4, generator=torch.Generator().manual_seed(1)) + shift


# The gate's branch per step on each input (checked below): both, else only, then only.
SHIFTS = {"mixed": (0.0, {True, False}), "else-only": (5.0, {False}), "then-only": (-5.0, {True})}


@pytest.mark.parametrize("case", SHIFTS)
def test_rnn_loop_matches_torchscript(rnn, case):
    _, scripted, compiled, _ = rnn
    _close(compiled, scripted, _steps(SHIFTS[case][0]))


@pytest.mark.parametrize("case", SHIFTS)
def test_rnn_inputs_take_the_branches_they_are_named_after(rnn, case):
    shift, taken = SHIFTS[case]
    linear = rnn[1].cell.linear
    gate_sums = torch.nn.functional.linear(_steps(shift), linear.weight, linear.bias).sum((1, 2))
    assert {bool(s > 0) for s in gate_sums} == taken


def test_recurrence_stays_per_step_and_slice_work_is_batched():
    xs = torch.randn(6, 2, 4)
    scripted, compiled, stats = _compile(RecurrentLinear(), xs)
    # relu, wx and the scaling read only xs[i]: batched. wh(h) and what follows: per step.
    assert stats["kiln-batch-slices"] == {"ops batched": 18}
    # One batched wx; wh per step but the first, where h is zeros and kiln-fold-params folds it.
    assert compiled.ir("graph").count("torch.aten.linear") == 1 + 5
    _close(compiled, scripted, torch.randn(6, 2, 4))


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["then", "else"])
def test_decision_gate_is_a_select(sign):
    scripted, compiled, stats = _compile(DecisionGate(), torch.rand(3, 4))
    assert "torch.aten.where.self" in compiled.ir("graph")
    assert "kiln.if" not in compiled.ir("graph") and "Bool.Tensor" not in compiled.ir("graph")
    _close(compiled, scripted, sign * (torch.rand(3, 4) + 0.1))


def test_branch_on_the_iteration_index_folds_after_unrolling():
    xs = torch.randn(6, 4)
    scripted, compiled, stats = _compile(FirstStepDiffers(), xs)
    assert stats["kiln-fold-constant-branches"] == {"ifs folded": 6}
    assert "where.self" not in compiled.ir("graph")
    _close(compiled, scripted, torch.randn(6, 4))


@pytest.mark.parametrize("model, inputs", [
    (ScalarCondition(), [torch.ones(4), -torch.ones(4)]),
    (FloatTensorCondition(), [torch.ones(4), torch.zeros(4)]),
], ids=["scalar-bool", "float-tensor"])
def test_conditions_not_from_a_bool_tensor(model, inputs):
    scripted, compiled, stats = _compile(model, inputs[0])
    assert stats["kiln-convert-if-to-select"] == {"ifs converted": 1}
    for x in inputs:  # the first takes the then branch, the second the else branch
        _close(compiled, scripted, x)


def test_invariant_leaves_a_while_loop():
    x, y = torch.rand(2, 3) + 0.5, torch.randn(2, 3)
    scripted, compiled, stats = _compile(InvariantInWhile(), x, y)
    assert stats["kiln-hoist-loop-invariants"]["ops hoisted"] >= 2  # sigmoid, add
    _close(compiled, scripted, x, y)
    _close(compiled, scripted, torch.full((2, 3), 0.01), y)  # many more trips


def test_loops_over_the_unroll_limits_stay(monkeypatch):
    xs = torch.randn(5, 3, 4)
    monkeypatch.setattr(control_flow_opt, "MAX_UNROLL", 4)
    assert "kiln.loop" in _graph_ir(RNNLoop(), xs)
    monkeypatch.setattr(control_flow_opt, "MAX_UNROLL", 128)
    monkeypatch.setattr(control_flow_opt, "MAX_UNROLLED_OPS", 5 * 10)  # the body has 11 ops
    assert "kiln.loop" in _graph_ir(RNNLoop(), xs)
    monkeypatch.setattr(control_flow_opt, "MAX_UNROLLED_OPS", 5 * 11)
    assert "kiln.loop" not in _graph_ir(RNNLoop(), xs)


def test_branches_over_the_op_limit_stay(monkeypatch):
    monkeypatch.setattr(control_flow_opt, "MAX_SELECT_OPS", 0)
    assert "kiln.if" in _graph_ir(DecisionGate(), torch.rand(3, 4))
