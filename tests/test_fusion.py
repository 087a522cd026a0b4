"""kiln-fuse-elementwise + kiln-lower-fused: numerics vs eager with fusion on and off, stats."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_mlir import ir

import kiln
from kiln.dialects.context import new_context
from kiln.dialects.kiln import walk
from kiln.passes.lower_fused import ELEMENTWISE_OPS

TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


class Broadcasting(nn.Module):
    """Elementwise-heavy: operands of shapes [3,1,8], [4,8], [8] meet in one DAG."""

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(x) * y + 1.0
        b = F.gelu(a) - 0.5 * x
        c = torch.clamp(b, -1, 1) / (y.abs() + 2)
        d = torch.where(c > 0, c, torch.sigmoid(c)) ** 2
        e = torch.sigmoid(d - z) + torch.rsqrt(x * x + 1) * torch.exp(-z.abs())
        return torch.maximum(e, z) - torch.minimum(x, 0.1 * y) ** 3 - F.gelu(e, approximate="tanh")


class GeluMlp(nn.Module):
    """Linear + GELU (tanh, then erf) + Linear + GELU + Linear: bias add and GELU fuse."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(16, 32), nn.Linear(32, 32), nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.fc1(x), approximate="tanh")
        return self.fc3(F.gelu(self.fc2(x)))


class ExportRows(nn.Module):
    """Every table row that torch.export produces, in one DAG (p > 0 for log, sqrt, ...)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(x) + torch.exp(-x.abs()) + torch.log(p) + torch.log1p(p) + torch.expm1(x)
        b = torch.sqrt(p) + torch.rsqrt(p) + torch.erf(x) + torch.sin(x) + torch.cos(y)
        c = torch.floor(x) + torch.ceil(y) + torch.reciprocal(p) + torch.relu(y)
        d = torch.sigmoid(x) + F.gelu(x) + F.gelu(y, approximate="tanh")
        e = torch.add(x, y, alpha=2) - torch.sub(y, x, alpha=0.5) * (x / p)
        f = torch.maximum(x, y) + torch.minimum(x, y) + p**y + (x + 1.5) - (y - 2) * 3 / 4
        g = x**3 + p**0.5 + torch.clamp(x, -0.5, 0.5)
        h = torch.where(x > y, x, y) + torch.where(x >= 0.1, a, b) + torch.where(x < y, c, d)
        i = torch.where(x <= 0.2, e, f) + torch.where(x == y, g, h) + torch.where(x != 0.3, g, -h)
        return i + torch.where(x == 0.0, a, b) * torch.where(x != y, c, d) + torch.where(
            x < 0.0, e, f) * torch.where(y > 0.5, g, h)


class TraceRows(nn.Module):
    """The rows only TorchScript keeps (export decomposes them): silu, square, rsub, ..."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a = F.silu(x) + torch.square(y) + (1 - x)
        a = a + torch.clamp_min(y, 0.1) + torch.clamp_max(x, 0.2)
        return torch.where(x >= y, a, -a) * torch.where(x <= y, x, y)


def _compile(model: nn.Module, inputs: tuple, fused: bool, frontend: str = "auto"):
    stats: dict[str, dict[str, int]] = {}
    options = kiln.CompileOptions(graph_passes=fused, graph_pipeline="kiln-graph-all", stats=stats)
    return kiln.compile(model, inputs, frontend=frontend, options=options), stats


def _eager(model: nn.Module, inputs: tuple) -> torch.Tensor:
    with torch.no_grad():
        return model(*inputs)


def _fused_op_names(graph_ir: str) -> set[str]:
    """The names of the ops inside `kiln.fused` bodies of the kiln-graph IR."""
    with new_context():
        module = ir.Module.parse(graph_ir)
        return {op.name for op in walk(module.operation)
                if op.parent is not None and op.parent.name == "kiln.fused"}


@pytest.fixture(scope="module")
def broadcasting_case():
    torch.manual_seed(0)
    inputs = (torch.randn(4, 8), torch.randn(8), torch.randn(3, 1, 8))
    return Broadcasting(), inputs, _compile(Broadcasting(), inputs, True)


@pytest.mark.parametrize("op_name", sorted(ELEMENTWISE_OPS))
def test_table_rows_are_torch_ops(op_name):
    assert new_context().is_registered_operation(op_name), f"{op_name} is not a torch op"


def test_broadcasting_chain_matches_eager_fused_and_not(broadcasting_case):
    model, inputs, (fused, _) = broadcasting_case
    plain, plain_stats = _compile(model, inputs, False)
    expected = _eager(model, inputs)
    torch.testing.assert_close(fused(*inputs), expected, **TOLERANCE)
    torch.testing.assert_close(plain(*inputs), expected, **TOLERANCE)
    assert "kiln-fuse-elementwise" not in plain_stats


def test_broadcasting_chain_is_one_group(broadcasting_case):
    _, _, (_, stats) = broadcasting_case
    assert stats["kiln-fuse-elementwise"]["groups formed"] == 1
    assert stats["kiln-fuse-elementwise"]["ops fused"] > 20
    assert stats["kiln-lower-fused"]["groups lowered"] == 1


def test_gelu_mlp_matches_eager_with_a_group_per_bias_gelu():
    torch.manual_seed(0)
    model, inputs = GeluMlp().eval(), (torch.randn(4, 16),)
    fused, stats = _compile(model, inputs, True)
    plain, _ = _compile(model, inputs, False)
    expected = _eager(model, inputs)
    torch.testing.assert_close(fused(*inputs), expected, **TOLERANCE)
    torch.testing.assert_close(plain(*inputs), expected, **TOLERANCE)
    # bias + gelu twice: the exact gelu is one op; the tanh one is PyTorch's formula
    # (frontend/decompositions.py), 9 elementwise ops with its bias.
    assert stats["kiln-fuse-elementwise"] == {"groups formed": 2, "ops fused": 12}
    assert stats["kiln-lower-fused"] == {"groups lowered": 2}


def test_every_table_row_matches_eager():
    torch.manual_seed(0)
    cases = [(ExportRows(), (torch.randn(3, 8), torch.randn(8), torch.rand(3, 1) + 0.5), "auto"),
             (TraceRows(), (torch.randn(3, 8), torch.randn(8)), "trace")]
    covered: set[str] = set()
    for model, inputs, frontend in cases:
        compiled, _ = _compile(model, inputs, True, frontend)
        torch.testing.assert_close(compiled(*inputs), _eager(model, inputs), **TOLERANCE)
        covered |= _fused_op_names(compiled.ir("graph"))
    missing = sorted(set(ELEMENTWISE_OPS) - covered)
    assert not missing, f"table rows no numerics test reaches: {missing}"
