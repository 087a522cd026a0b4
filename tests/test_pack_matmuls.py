"""kiln-pack-matmuls: f32 matmuls and 1x1 convolutions run as Kiln's packed form (its tile from
the CPU's features, passes/cpu/tiles.py: 6x16 for AVX2, 16x16 for AVX-512, 4x8 for SSE) and
still match eager, with padding rows and columns (37 rows, 40 output columns; 196 pixels),
the epilogue between two matmuls computed on the packed tiles, each packed product and its
epilogue in one dispatch region (kiln-form-mmt4d-dispatches), and IREE's mmt4d microkernel
(no 6x16 tile) left off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kiln
from kiln.compiler import generate_code, lower_to_linalg
from kiln.frontend.export import export_program, import_exported
from kiln.passes.cpu.mmt4d_dispatches import PASS as DISPATCHES
from kiln.passes.cpu.pack_matmuls import PASS
from kiln.passes.cpu.tiles import tile_for
from kiln.runtime.targets import TARGETS, resolve, resolve_all

TILE = tile_for(resolve("cpu").cpu.features)   # this machine's (16x16 with AVX-512, else 6x16)


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear plus the residual: BERT's feed-forward block, small."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down, self.out = nn.Linear(64, 96), nn.Linear(96, 64), nn.Linear(64, 40)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.down(nn.functional.gelu(self.up(x))))


def _compiled(model: nn.Module, x: torch.Tensor):
    """(model, x, `model` compiled for `x`, what each pass counted)."""
    stats: dict = {}
    return model, x, kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats)), stats


def _assert_matches_eager(model: nn.Module, x: torch.Tensor, compiled) -> None:
    with torch.no_grad():
        for inputs in (x, torch.randn_like(x)):
            torch.testing.assert_close(compiled(inputs), model(inputs), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def feed_forward():
    torch.manual_seed(0)
    return _compiled(FeedForward().eval(), torch.randn(1, 37, 64))


def test_packed_matmuls_match_eager(feed_forward):
    _assert_matches_eager(*feed_forward[:3])


@pytest.mark.parametrize("tile", ["6x16", "16x16", "4x8"])
def test_every_tile_tile_for_picks_matches_eager(tile):
    """Each tile `tile_for` may choose, whatever this machine's: 37 rows and 40 columns pad
    differently for each (and the epilogue's transpose repack is per tile)."""
    torch.manual_seed(0)
    model, x = FeedForward().eval(), torch.randn(1, 37, 64)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats, cpu_tile=tile))
    assert stats[PASS][f"matmuls packed {tile}"] == 3
    _assert_matches_eager(model, x, compiled)


def test_every_matmul_is_packed_and_the_gelu_runs_on_tiles(feed_forward):
    *_, stats = feed_forward
    assert stats[PASS] == {
        f"matmuls packed {TILE}": 3,
        # bias add and GELU between up and down; down's bias stays after its unpack
        "elementwise ops computed in the packed layout": 2,
        "unpack + pack pairs turned into a transpose": 1,
    }


class Bottleneck(nn.Module):
    """A ResNet bottleneck block at 14x14 that halves the image: its 1x1 convolutions (the
    strided downsample, the strided reduce, the expand) are packed; the 3x3 stays IREE's."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(32, 64, 1, stride=2)
        self.reduce = nn.Conv2d(32, 16, 1, stride=2)
        self.middle = nn.Conv2d(16, 16, 3, padding=1)
        self.expand = nn.Conv2d(16, 64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.middle(torch.relu(self.reduce(x))))
        return torch.relu(self.expand(y) + self.down(x))


@pytest.fixture(scope="module")
def bottleneck():
    torch.manual_seed(1)
    return _compiled(Bottleneck().eval(), torch.randn(1, 32, 28, 28))


def test_packed_pointwise_convs_match_eager(bottleneck):
    _assert_matches_eager(*bottleneck[:3])


def test_pointwise_convs_packed_each_in_one_dispatch_with_its_epilogue(bottleneck):
    *_, stats = bottleneck
    assert stats[PASS] == {f"1x1 convolutions packed {TILE}": 3}
    assert stats[DISPATCHES] == {"mmt4d dispatches formed with their epilogue": 3}


def test_dispatch_regions_reach_iree_only_for_the_cpu():
    """The regions are IREE's op, in generic form in the text handed to IREE; a GPU target
    compiled beside the CPU gets its own linalg, with IREE's own dispatches (and the
    convolutions unpacked), while the CPU's keeps its packed matmuls."""
    torch.manual_seed(2)
    model, x = Bottleneck().eval(), torch.randn(1, 32, 28, 28)
    program = import_exported(export_program(model, (x,), None), None)
    options = kiln.CompileOptions()
    lower_to_linalg(program, options)
    codegen = {k: code.linalg for k, code in
               generate_code(program, resolve_all(["cpu", "cuda"]), options).items()}
    for key, formed in (("cpu", True), ("cuda:sm_80", False)):
        assert codegen[key].count('"flow.dispatch.region"()') == (3 if formed else 0)
        assert ("linalg.mmt4d" in codegen[key]) == formed


def test_cpu_flags_leave_the_mmt4d_microkernel_off():
    """IREE's mmt4d microkernel has no 6x16 tile: it would run Kiln's packed matmuls through
    its generic C fallback (40x slower, benchmarks/flags.md)."""
    (ukernels,) = [f for f in TARGETS["cpu"].flags
                   if f.startswith("--iree-llvmcpu-enable-ukernels=")]
    enabled = ukernels.partition("=")[2].split(",")
    assert "mmt4d" not in enabled and "all" not in enabled and "default" not in enabled
