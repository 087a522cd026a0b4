"""Small example models built from code with random weights; the demo and tests use them."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Two linear layers with a ReLU between: the smallest real model."""

    def __init__(self, features: int = 8, hidden: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(features, hidden), nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class SmallCNN(nn.Module):
    """Conv, batch norm (eval, with non-trivial running statistics), pooling, a classifier."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * channels)
        self.head = nn.Linear(2 * channels, classes)
        for bn in (self.bn1, self.bn2):
            with torch.no_grad():
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class EncoderBlock(nn.Module):
    """A pre-norm transformer encoder block: layer norm, multi-head attention, GELU MLP."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def swish_gate(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Elementwise-heavy: activations, broadcasting, a reduction; returns a dict."""
    gate = torch.sigmoid(y) * torch.tanh(x) + 0.5 * x * torch.exp(-x.abs())
    return {"gated": gate, "norm": (gate * gate).sum(dim=-1).sqrt()}


def example_cases(seed: int = 0) -> dict[str, tuple[object, tuple[torch.Tensor, ...]]]:
    """name -> (model, example inputs), small enough to compile in a few seconds each."""
    torch.manual_seed(seed)
    return {
        "mlp": (MLP().eval(), (torch.randn(4, 8),)),
        "cnn": (SmallCNN().eval(), (torch.randn(2, 3, 16, 16),)),
        "encoder": (EncoderBlock().eval(), (torch.randn(2, 8, 32),)),
        "elementwise": (swish_gate, (torch.randn(4, 16), torch.randn(16))),
    }
