"""kiln-split-conv-batch: batched convolutions run one image at a time (IREE's batched
convolution misses its data-tiled matmul path) and match eager."""

from __future__ import annotations

import torch
from torch import nn

import kiln

TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


class Block(nn.Module):
    """A bottleneck-like block at batch 3: a strided 1x1 convolution and a stride-2 3x3 one
    (im2col), a 24x24 3x3 one (IREE's Winograd, split with its mark kept), a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Conv2d(32, 32, 3, padding=1)
        self.down = nn.Conv2d(32, 64, 1, stride=2)
        self.strided = nn.Conv2d(32, 64, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.wide(x))
        return torch.relu(self.strided(y) + self.down(x))


def test_batched_convolutions_split_per_image_match_eager():
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(3, 32, 24, 24)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats))
    assert stats["kiln-split-conv-batch"] == {"batched convolutions split per image": 3}
    assert stats["kiln-mark-winograd-convs"] == {"convolutions marked for Winograd": 1}
    with torch.no_grad():
        for inputs in (x, torch.randn_like(x)):
            torch.testing.assert_close(compiled(inputs), model(inputs), **TOLERANCE)


def test_one_image_is_left_whole():
    torch.manual_seed(1)
    model, x = nn.Conv2d(8, 8, 1).eval(), torch.randn(1, 8, 6, 6)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats))
    assert "kiln-split-conv-batch" not in stats
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


def test_a_padded_pooling_feeding_a_convolution_is_left_whole():
    """Per-image slices of a padded pooling's result made IREE 3.13 fail on
    test_graph_passes.py's ConvTransposeBn with graph passes off (its pooling dispatch failed
    workgroup distribution): convolutions reading a padded pooling stay batched."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(6, 4, 3, padding=1)).eval()
    x = torch.randn(2, 6, 10, 10)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats))
    assert "kiln-split-conv-batch" not in stats
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)
