"""Ablation of kiln-graph: latency and IREE dispatch count with all graph passes vs none.

    .venv/bin/python benchmarks/ablation.py [--calls 200]
    .venv/bin/python benchmarks/ablation.py --pass kiln-fuse-elementwise

Not a test: it prints a Markdown table. Dispatches are the `flow.dispatch`es IREE forms
from the linalg Kiln hands it (`--compile-to=flow`), executables in parentheses; latency is
the median of `--calls` calls after warm-up, on the CPU target. With `--pass NAME`, "off"
is kiln-graph without that one pass and "on" is the whole of kiln-graph.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import statistics
import time

import torch
from iree.compiler import compile_str
from torch import nn

import kiln
from kiln.compiler import generate_code, lower_to_linalg
from kiln.frontend.export import export_module
from kiln.passes.pipelines import PIPELINES
from kiln.runtime.targets import resolve


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResNetish(nn.Module):
    """A stem (conv + BN + ReLU), three residual blocks, pooling, a classifier."""

    def __init__(self, channels: int = 16, blocks: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


class HandAttentionLayer(nn.Module):
    """A post-norm transformer layer whose attention is written out by hand."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1).transpose(1, 2)
                   for p in (self.q, self.k, self.v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        y = (torch.softmax(scores + mask, dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.norm1(x + self.o(y))
        return self.norm2(x + self.mlp(x))


class ElementwiseChain(nn.Module):
    """Activation-heavy math between two matmuls: long elementwise DAGs with broadcasting."""

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.scale = nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = torch.nn.functional.gelu(h) * torch.sigmoid(h * self.scale) + torch.tanh(h) * 0.5
        h = torch.where(h > 0, h, torch.exp(h) - 1) / (h.abs() + 1) - torch.clamp(h, -1, 1) ** 2
        return self.fc2(h) * torch.rsqrt(x * x + 1)


def _randomized(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def cases() -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    torch.manual_seed(0)
    bert = nn.TransformerEncoder(nn.TransformerEncoderLayer(
        64, 4, 256, dropout=0.0, batch_first=True), num_layers=2, enable_nested_tensor=False)
    return {
        "elementwise chain 64x512": (ElementwiseChain().eval(), (torch.randn(64, 512),)),
        "ResNet-style CNN 1x3x32x32": (_randomized(ResNetish()), (torch.randn(1, 3, 32, 32),)),
        "BERT-style encoder 2 layers 1x32x64": (bert.eval(), (torch.randn(1, 32, 64),)),
        "hand-written attention 2 layers 1x32x64": (
            _Stack([HandAttentionLayer(), HandAttentionLayer()]).eval(),
            (torch.randn(1, 32, 64), torch.zeros(32, 32))),
    }


class _Stack(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x


@contextlib.contextmanager
def variant(graph: bool, without: str | None):
    """kiln-graph on or off; with `without`, "off" means kiln-graph minus that one pass."""
    saved = PIPELINES["kiln-graph"]
    if without is not None and not graph:
        PIPELINES["kiln-graph"] = tuple(e for e in saved if e != without)
    try:
        yield kiln.CompileOptions(graph_passes=graph or without is not None)
    finally:
        PIPELINES["kiln-graph"] = saved


def dispatch_count(model: nn.Module, inputs: tuple[torch.Tensor, ...],
                   graph: bool, without: str | None = None) -> tuple[int, int]:
    """(dispatches per call, distinct executables) IREE forms from Kiln's linalg."""
    program = export_module(model, inputs)
    cpu = resolve("cpu")
    with variant(graph, without) as options:
        lower_to_linalg(program, options)
        linalg = generate_code(program, [cpu], options)[cpu.key].linalg
    flow = compile_str(linalg, input_type="auto",
                       extra_args=[*cpu.iree_flags(), "--compile-to=flow"])
    return (len(re.findall(rb"flow\.dispatch @", flow)),
            len(re.findall(rb"^\s*flow\.executable ", flow, re.MULTILINE)))


def median_ms(off, on, inputs: tuple[torch.Tensor, ...], calls: int) -> tuple[float, float]:
    """Median latency of `off` and `on`, calls interleaved so that load hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(calls + 10):
        for compiled, found in ((off, times[0]), (on, times[1])):
            start = time.perf_counter()
            compiled(*inputs)
            if index >= 10:
                found.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[0]), 1000 * statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--pass", dest="without", help="ablate only this kiln-graph pass")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()
    calls, without = args.calls, args.without
    if without is not None and without not in PIPELINES["kiln-graph"]:
        parser.error(f"{without} is not in kiln-graph: {', '.join(PIPELINES['kiln-graph'])}")
    print("| model | dispatches (executables) off | on | ms off | ms on | max abs err on |")
    print("|---|---|---|---|---|---|")
    for name, (model, inputs) in cases().items():
        if args.only and args.only not in name:
            continue
        with torch.no_grad():
            expected = model(*inputs)
        off, on = (_compiled(model, inputs, graph, without) for graph in (False, True))
        (d_off, e_off), (d_on, e_on) = (dispatch_count(model, inputs, g, without)
                                        for g in (False, True))
        t_off, t_on = median_ms(off, on, inputs, calls)
        err = (on(*inputs) - expected).abs().max().item()
        print(f"| {name} | {d_off} ({e_off}) | {d_on} ({e_on}) | {t_off:.3f} | {t_on:.3f} "
              f"| {err:.1e} |")


def _compiled(model: nn.Module, inputs: tuple[torch.Tensor, ...], graph: bool,
              without: str | None):
    with variant(graph, without) as options:
        return kiln.compile(model, inputs, options=options)


if __name__ == "__main__":
    main()
