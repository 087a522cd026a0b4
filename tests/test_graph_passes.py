"""kiln-graph's passes keep numerics: graph passes on vs off vs eager, through kiln.compile."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import kiln

TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def _randomize_batch_norms(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


class ConvBnNoBias(nn.Module):
    """conv(bias=False) + BN + ReLU, twice, and a BN whose input is not a conv."""

    def __init__(self) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, groups=2, bias=False), nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(self.bn0(x))))
        return self.bn2(self.conv2(x))


class ConvTransposeBn(nn.Module):
    """Transposed convolutions with batch norms: stride 2 and stride 1 (BN folds along the
    weight's axis 1, its output channels), grouped (BN stays); the stride-1 one follows a
    pooling and is made a direct convolution afterwards (which IREE compiles there)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.grouped = nn.ConvTranspose2d(6, 6, 3, stride=2, padding=1, groups=2, bias=False)
        self.unit = nn.ConvTranspose2d(6, 4, 3, padding=2, dilation=2)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(6), nn.BatchNorm2d(6), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.up(x)))
        y = self.bn2(self.grouped(y))
        return self.bn3(self.unit(nn.functional.max_pool2d(y, 2)))


class LinearBn(nn.Module):
    """linear + batch_norm1d, then a linear whose output is also used elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(8, 16), nn.BatchNorm1d(16)
        self.fc2, self.bn2 = nn.Linear(16, 4), nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.fc1(x)))
        y = self.fc2(h)
        return self.bn2(y) + y  # y has two users: bn2 must not fold into fc2


class HandAttention(nn.Module):
    """Self-attention written out: projections, q @ kᵀ / sqrt(d) + mask, softmax, @ v."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1).transpose(1, 2)
                   for p in (self.q, self.k, self.v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        y = torch.softmax(scores + mask, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, d))


def _cases() -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    torch.manual_seed(0)
    return {
        "conv_bn": (_randomize_batch_norms(ConvBnNoBias()), (torch.randn(2, 3, 8, 8),)),
        "linear_bn": (_randomize_batch_norms(LinearBn()), (torch.randn(4, 8),)),
        "conv_transpose_bn": (_randomize_batch_norms(ConvTransposeBn()),
                              (torch.randn(2, 4, 5, 5),)),
        "attention": (HandAttention().eval(), (torch.randn(2, 5, 16), torch.randn(5, 5))),
    }


@pytest.fixture(scope="module")
def graph_cases():
    """name -> (model, inputs, compiled with every graph pass, compiled without, stats)."""
    found = {}
    for name, (model, inputs) in _cases().items():
        stats: dict[str, dict[str, int]] = {}
        every = kiln.CompileOptions(graph_pipeline="kiln-graph-all", stats=stats)
        on = kiln.compile(model, inputs, options=every)
        off = kiln.compile(model, inputs, options=kiln.CompileOptions(graph_passes=False))
        found[name] = (model, inputs, on, off, stats)
    return found


@pytest.mark.parametrize("name", ["conv_bn", "linear_bn", "conv_transpose_bn", "attention"])
def test_graph_passes_on_and_off_match_eager(graph_cases, name):
    model, inputs, on, off, _ = graph_cases[name]
    fresh = tuple(torch.randn_like(x) for x in inputs)
    with torch.no_grad():
        expected = model(*fresh)
    torch.testing.assert_close(on(*fresh), expected, **TOLERANCE)
    torch.testing.assert_close(off(*fresh), expected, **TOLERANCE)


def test_batch_norm_leaves_no_arithmetic_after_convs(graph_cases):
    *_, stats = graph_cases["conv_bn"]
    assert stats["kiln-fold-batchnorm"]["scales folded into weights"] >= 4



def test_batch_norms_fold_into_transposed_convolutions(graph_cases):
    """Two of the three fold (two scale factors each: invstd and gamma); the grouped one
    keeps its BN."""
    *_, stats = graph_cases["conv_transpose_bn"]
    assert stats["kiln-conv-transpose-to-conv"] == {"transposed convolutions made direct": 1}
    assert stats["kiln-fold-batchnorm"]["scales folded into weights"] == 4


@pytest.mark.parametrize("frontend", ["script", "trace"])
def test_batch_norms_fold_into_torchscript_transposed_convolutions(frontend):
    """TorchScript keeps `aten.batch_norm` and `conv_transpose2d` (trace: `_convolution`):
    each BN becomes one multiply and one add, folded into the two ungrouped convolutions."""
    torch.manual_seed(0)
    model, x = _randomize_batch_norms(ConvTransposeBn()), torch.randn(2, 4, 5, 5)
    captured = torch.jit.script(model) if frontend == "script" else torch.jit.trace(model, (x,))
    stats: dict = {}
    compiled = kiln.compile(captured, (x,), options=kiln.CompileOptions(stats=stats))
    assert stats["kiln-fold-batchnorm"] == {"batch norms made affine": 3,
                                            "scales folded into weights": 2,
                                            "shifts folded into biases": 2}
    fresh = torch.randn_like(x)
    with torch.no_grad():
        torch.testing.assert_close(compiled(fresh), model(fresh), **TOLERANCE)


def test_hand_written_attention_is_raised(graph_cases):
    *_, stats = graph_cases["attention"]
    assert stats["kiln-raise-attention"]["attentions raised"] == 1
    assert stats["kiln-lower-attention"]["attentions lowered"] == 1


def test_query_key_value_projections_become_one_matmul(graph_cases):
    *_, stats = graph_cases["attention"]
    assert stats["kiln-fuse-linears"]["matmuls fused"] == 3


class PythonLoop(nn.Module):
    """A Python loop torch.export unrolls: each step's linear of xs[i] reads its own
    kiln.param and transpose, which kiln-batch-slices must still see as one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.x_proj, self.h_proj = nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(2, 16)
        for i in range(xs.size(0)):
            h = torch.tanh(torch.relu(self.x_proj(xs[i])) + self.h_proj(h))
        return h


def test_exported_loop_runs_its_slice_work_batched():
    torch.manual_seed(0)
    model, xs = PythonLoop().eval(), torch.randn(12, 2, 16)
    stats: dict = {}
    compiled = kiln.compile(model, (xs,), options=kiln.CompileOptions(stats=stats))
    # x_proj (mm + bias add) and relu of every step run once on xs; h_proj(h) stays per step.
    assert stats["kiln-batch-slices"]["ops batched"] >= 3 * 12
    graph = compiled.ir("graph")
    assert graph.count("torch.aten.matmul %arg0") == 1 and graph.count("torch.aten.mm ") == 12
    xs = torch.randn(12, 2, 16)
    torch.testing.assert_close(compiled(xs), model(xs), **TOLERANCE)
