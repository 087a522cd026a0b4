"""The benchmark models, built from code and configs with random weights (no downloads)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from tutorial import LSTMLanguageModel, RNNLoop  # noqa: E402


@dataclass
class BenchCase:
    """A model, its inputs, and per-variant overrides (e.g. the scripted form for TorchScript)."""

    model: Callable
    inputs: tuple
    overrides: dict[str, Callable] = field(default_factory=dict)


def rnn_loop() -> BenchCase:
    """100 steps of the tutorial's 3x4 cell; TorchScript and Kiln get the scripted loop."""
    from kiln.tools.bench import prepare_kiln, prepare_torchscript

    eager = RNNLoop().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(eager)
    return BenchCase(eager, (torch.randn(100, 3, 4),), {
        "torchscript": lambda m, i: prepare_torchscript(scripted, i),
        "kiln": lambda m, i: prepare_kiln(scripted, i),
    })


def mlp() -> BenchCase:
    """MLP 8x64 -> 128 -> 10."""
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    return BenchCase(model, (torch.randn(8, 64),))


class _LastHidden(nn.Module):
    """A transformers model called with input ids, returning the last hidden state only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).last_hidden_state \
            if "GPT2" in type(self.model).__name__ else \
            self.model(input_ids=input_ids).last_hidden_state


def bert_base() -> BenchCase:
    """BERT-base (12 layers, 768 wide), batch 1, sequence 128."""
    from transformers import BertConfig, BertModel

    model = _LastHidden(BertModel(BertConfig(), add_pooling_layer=False).eval()).eval()
    return BenchCase(model, (torch.randint(0, 30522, (1, 128)),))


def gpt2_small() -> BenchCase:
    """GPT-2 small (12 layers, 768 wide), batch 1, sequence 128, no KV cache."""
    from transformers import GPT2Config, GPT2Model

    model = _LastHidden(GPT2Model(GPT2Config()).eval()).eval()
    return BenchCase(model, (torch.randint(0, 50257, (1, 128)),))


class _Logits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).logits


def resnet50() -> BenchCase:
    """ResNet-50 (transformers' default ResNetConfig), 1x3x224x224."""
    from transformers import ResNetConfig, ResNetForImageClassification

    model = _Logits(ResNetForImageClassification(ResNetConfig()).eval()).eval()
    return BenchCase(model, (torch.randn(1, 3, 224, 224),))


def lstm_lm() -> BenchCase:
    """The scripted 2-layer LSTM language model (35 steps, batch 1, 256 wide, 10k words):
    TorchScript and Kiln both get the scripted module, as a TorchScript user has it."""
    from kiln.tools.bench import prepare_kiln, prepare_torchscript

    eager = LSTMLanguageModel(vocab=10000, dim=256).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(eager)
    return BenchCase(eager, (torch.randint(0, 10000, (35, 1)),), {
        "torchscript": lambda m, i: prepare_torchscript(scripted, i),
        "kiln": lambda m, i: prepare_kiln(scripted, i),
    })


MODELS: dict[str, Callable[[], BenchCase]] = {
    "rnn_loop": rnn_loop, "mlp": mlp, "bert_base": bert_base, "resnet50": resnet50,
    "gpt2_small": gpt2_small, "lstm_lm": lstm_lm,
}
