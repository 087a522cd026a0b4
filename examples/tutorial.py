"""The models of PyTorch's "Intro to TorchScript" tutorial: decision gate, cell, RNN loop; and
the word-language-model example's LSTM language model, as TorchScript users script it.

Shared by tests/test_torchscript.py, tests/test_control_flow_opt.py, tests/zoo.py and
benchmarks/models.py.
TorchScript needs the source of scripted code in a file, so they live here at module level.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class DecisionGate(nn.Module):
    """`x if x.sum() > 0 else -x`: data-dependent control flow."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        else:
            return -x


class Cell(nn.Module):
    """`new_h = tanh(gate(linear(x)) + h)`, returning `(new_h, new_h)`."""

    def __init__(self, gate: nn.Module | None = None) -> None:
        super().__init__()
        self.gate = gate if gate is not None else DecisionGate()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        new_h = torch.tanh(self.gate(self.linear(x)) + h)
        return new_h, new_h


class RNNLoop(nn.Module):
    """`for i in range(xs.size(0)): y, h = self.cell(xs[i], h)` over a traced cell whose
    scripted gate keeps its branch (as in the tutorial). Weights come from torch's RNG."""

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cell = Cell(torch.jit.script(DecisionGate()))
            self.cell = torch.jit.trace(cell, (torch.rand(3, 4), torch.rand(3, 4)))

    def forward(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, y = torch.zeros(3, 4), torch.zeros(3, 4)
        for i in range(xs.size(0)):
            y, h = self.cell(xs[i], h)
        return y, h


class LSTMLanguageModel(nn.Module):
    """PyTorch's word-language-model example: embedding, multi-layer LSTM, linear decoder."""

    def __init__(self, vocab: int, dim: int, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, layers)
        self.decoder = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(ids))
        return self.decoder(out)
