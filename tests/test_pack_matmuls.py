"""kiln-pack-matmuls: f32 matmuls run as Kiln's 6x16 packed form and still match eager, with
padding rows and columns (37 rows, 40 output columns), the epilogue between two matmuls
computed on the packed tiles, and IREE's mmt4d microkernel (no 6x16 tile) left off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kiln
from kiln.passes.pack_matmuls import PASS
from kiln.runtime.targets import TARGETS


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear plus the residual: BERT's feed-forward block, small."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down, self.out = nn.Linear(64, 96), nn.Linear(96, 64), nn.Linear(64, 40)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.down(nn.functional.gelu(self.up(x))))


@pytest.fixture(scope="module")
def feed_forward():
    torch.manual_seed(0)
    model, x = FeedForward().eval(), torch.randn(1, 37, 64)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats))
    return model, x, compiled, stats


def test_packed_matmuls_match_eager(feed_forward):
    model, x, compiled, _ = feed_forward
    with torch.no_grad():
        for inputs in (x, torch.randn_like(x)):
            torch.testing.assert_close(compiled(inputs), model(inputs), rtol=1e-4, atol=1e-4)


def test_every_matmul_is_packed_and_the_gelu_runs_on_tiles(feed_forward):
    *_, stats = feed_forward
    assert stats[PASS] == {
        "matmuls packed 6x16": 3,
        # bias add and GELU between up and down; down's bias stays after its unpack
        "elementwise ops computed in the packed layout": 2,
        "unpack + pack pairs turned into a transpose": 1,
    }


def test_cpu_flags_leave_the_mmt4d_microkernel_off():
    """IREE's mmt4d microkernel has no 6x16 tile: it would run Kiln's packed matmuls through
    its generic C fallback (40x slower, benchmarks/flags.md)."""
    (ukernels,) = [f for f in TARGETS["cpu"].flags if f.startswith("--iree-llvmcpu-enable-ukernels=")]
    enabled = ukernels.partition("=")[2].split(",")
    assert "mmt4d" not in enabled and "all" not in enabled and "default" not in enabled
