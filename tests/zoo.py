"""Real architectures at test size: `transformers` models built from configs with random
weights, and classic torch.nn models, each with example inputs.

`ZOO[name]()` returns `(model, inputs)`, the model in eval mode and seeded, small enough to
trace and compile in seconds. The `transformers` models return their ModelOutput dicts, so
they are traced with `strict=False`, as their users trace them. `SCRIPTABLE` names the ones `torch.jit.script` accepts.
The families: encoders, decoder LMs, encoder-decoders, vision transformers, CNNs, speech
encoders, recurrent networks and torch.nn's transformer layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Case = tuple[nn.Module, tuple[torch.Tensor, ...]]
VOCAB, SEQ, HIDDEN = 99, 8, 32
TEXT = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}


def _ids(batch: int = 2, seq: int = SEQ) -> torch.Tensor:
    return torch.randint(1, VOCAB, (batch, seq))


def _hf(config_class: str, model_class: str, inputs: Callable[[], tuple], **config) -> Case:
    import transformers

    config_obj = getattr(transformers, config_class)(**config)
    config_obj._attn_implementation = "eager"
    model = getattr(transformers, model_class)(config_obj).eval()
    return model, inputs()


def _images(size: int = 32, channels: int = 3) -> tuple[torch.Tensor]:
    return (torch.randn(1, channels, size, size),)


def _audio() -> tuple[torch.Tensor]:
    return (torch.randn(1, 800),)


def _decoder_lm(config_class: str, model_class: str, **extra) -> Case:
    config = dict(TEXT, use_cache=False)
    config.update(extra)
    return _hf(config_class, model_class, lambda: (_ids(),), **config)


# ---------------------------------------------------------------------------------------------
# torch.nn architectures


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv + batch norm, a projection shortcut when striding."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.down is None else self.down(x)
        return torch.relu(out + shortcut)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 written out (torchvision cannot be installed beside CPU torch)."""

    def __init__(self, width: int = 64, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], width
        for stage, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if stage == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():  # non-trivial batch-norm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class RecurrentTagger(nn.Module):
    """A bidirectional, batch-first GRU with an initial state, and its final state returned."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.rnn = nn.GRU(dim, dim, num_layers=2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rnn(x, h0)


class ElmanRNN(nn.Module):
    """nn.RNN with ReLU, single layer, returning both outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(12, 20, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rnn(x)


class Cells(nn.Module):
    """LSTMCell and GRUCell stepped by hand over a sequence (a Python loop)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.lstm = nn.LSTMCell(dim, dim)
        self.gru = nn.GRUCell(dim, dim)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(xs.size(1), xs.size(2))
        c = torch.zeros(xs.size(1), xs.size(2))
        g = torch.zeros(xs.size(1), xs.size(2))
        for x in xs.unbind(0):
            h, c = self.lstm(x, (h, c))
            g = self.gru(h, g)
        return g


class Attention(nn.Module):
    """nn.MultiheadAttention with a key padding mask, returning averaged weights too."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(HIDDEN, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, weights = self.attn(x, x, x)
        return out, weights


def _lstm_lm() -> nn.Module:
    from tutorial import LSTMLanguageModel  # examples/ (on sys.path), shared with benchmarks/

    return LSTMLanguageModel(VOCAB, HIDDEN)


def _encoder_block() -> Case:
    from models import EncoderBlock  # the project's own example (examples/ on sys.path)

    return EncoderBlock(), (torch.randn(2, SEQ, 32),)


def _transformer_encoder() -> Case:
    layer = nn.TransformerEncoderLayer(HIDDEN, 4, 64, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), (torch.randn(2, SEQ, HIDDEN),)


class Seq2Seq(nn.Module):
    """nn.Transformer's decoder over an encoder memory."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerDecoderLayer(HIDDEN, 4, 64, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.decoder(tgt, memory)


# ---------------------------------------------------------------------------------------------
# The set


def _seeded(make: Callable[[], Case]) -> Callable[[], Case]:
    def build() -> Case:
        torch.manual_seed(0)
        model, inputs = make()
        return model.eval(), inputs

    return build


ZOO: dict[str, Callable[[], Case]] = {name: _seeded(make) for name, make in {
    # encoders
    "bert": lambda: _hf("BertConfig", "BertModel", lambda: (_ids(),), **TEXT),
    "distilbert": lambda: _hf("DistilBertConfig", "DistilBertModel", lambda: (_ids(),),
                              vocab_size=VOCAB, dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64),
    "roberta": lambda: _hf("RobertaConfig", "RobertaModel", lambda: (_ids(),), **TEXT),
    "albert": lambda: _hf("AlbertConfig", "AlbertModel", lambda: (_ids(),), embedding_size=16,
                          **TEXT),
    "electra": lambda: _hf("ElectraConfig", "ElectraModel", lambda: (_ids(),), embedding_size=16,
                           **TEXT),
    # decoder LMs
    "gpt2": lambda: _hf("GPT2Config", "GPT2LMHeadModel", lambda: (_ids(),), use_cache=False,
                        vocab_size=VOCAB,
                        n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=64),
    "llama": lambda: _decoder_lm("LlamaConfig", "LlamaForCausalLM", num_key_value_heads=1),
    "qwen2": lambda: _decoder_lm("Qwen2Config", "Qwen2ForCausalLM", num_key_value_heads=1),
    "opt": lambda: _hf("OPTConfig", "OPTForCausalLM", lambda: (_ids(),), use_cache=False,
                       vocab_size=VOCAB,
                       hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                       ffn_dim=64, max_position_embeddings=64, word_embed_proj_dim=HIDDEN),
    # encoder-decoders
    "t5": lambda: _hf("T5Config", "T5Model", lambda: (_ids(), torch.ones_like(_ids()), _ids(seq=4)),
                      use_cache=False, vocab_size=VOCAB,
                      d_model=HIDDEN, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
    "bart": lambda: _hf("BartConfig", "BartModel", lambda: (_ids(),), use_cache=False,
                        vocab_size=VOCAB,
                        d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64),
    # vision
    "vit": lambda: _hf("ViTConfig", "ViTModel", _images, image_size=32, patch_size=8,
                       **{**TEXT, "vocab_size": None}),
    "deit": lambda: _hf("DeiTConfig", "DeiTModel", _images, image_size=32, patch_size=8,
                        **{**TEXT, "vocab_size": None}),
    "swin": lambda: _hf("SwinConfig", "SwinModel", _images, image_size=32, patch_size=4,
                        embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4),
    "segformer": lambda: _hf("SegformerConfig", "SegformerModel", _images, num_encoder_blocks=2,
                             depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32],
                             num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                             patch_sizes=[7, 3], strides=[4, 2]),
    "convnext": lambda: _hf("ConvNextConfig", "ConvNextModel", _images, hidden_sizes=[16, 32],
                            depths=[1, 1], num_stages=2),
    "resnet18": lambda: (ResNet18(width=16, classes=10), _images(64)),
    # speech
    "wav2vec2": lambda: _hf("Wav2Vec2Config", "Wav2Vec2Model", _audio, hidden_size=HIDDEN,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
    "whisper_encoder": lambda: _whisper_encoder(),
    # recurrent
    "lstm_lm": lambda: (_lstm_lm(), (torch.randint(0, VOCAB, (SEQ, 2)),)),
    "gru_bidirectional": lambda: (RecurrentTagger(), (torch.randn(2, 5, 16),
                                                      torch.randn(4, 2, 16))),
    "rnn_relu": lambda: (ElmanRNN(), (torch.randn(5, 3, 12),)),
    "cells": lambda: (Cells(), (torch.randn(4, 2, 16),)),
    # torch.nn transformer layers
    "multihead_attention": lambda: (Attention(), (torch.randn(2, SEQ, HIDDEN),)),
    "encoder_block": _encoder_block,
    "transformer_encoder": _transformer_encoder,
    "transformer_decoder": lambda: (Seq2Seq(), (torch.randn(2, 4, HIDDEN),
                                                torch.randn(2, SEQ, HIDDEN))),
}.items()}


def _whisper_encoder() -> Case:
    import transformers

    config = transformers.WhisperConfig(d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=2, decoder_attention_heads=2,
                                        encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
                                        max_source_positions=16, vocab_size=VOCAB,
                                        pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                        decoder_start_token_id=1)
    config._attn_implementation = "eager"
    encoder = transformers.WhisperModel(config).get_encoder()
    return encoder, (torch.randn(1, 8, 32),)


# Models whose forward torch.jit.script compiles (the rest are traced only).
SCRIPTABLE = ("resnet18", "lstm_lm", "gru_bidirectional", "rnn_relu", "cells",
              "multihead_attention", "encoder_block", "transformer_encoder",
              "transformer_decoder")
