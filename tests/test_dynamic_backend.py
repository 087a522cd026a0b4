"""torch.compile(backend="kiln", dynamic=True): transformers compile whole, once, for every size.

Under `dynamic=True` Dynamo passes every Python float the model reads (LayerNorm eps,
Dropout p, an attention scaling, a float argument) as a 0-d float64 tensor that the graph
reads back with `.item()`. torch.export cannot guard on such a value, so the backend fixes
each at its value under a Dynamo guard: a new value compiles again, with eager's results.
"""

from __future__ import annotations

import logging

import pytest
import torch

import kiln.backend

SHAPES = ((2, 16), (3, 7), (4, 40))   # batch x sequence; not 1: Dynamo specializes 0 and 1


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def kiln_compiles(monkeypatch):
    """(example tensors, dynamic_dims) of each kiln.compile the backend makes."""
    calls = []
    real = kiln.backend.kiln_compile

    def spy(model, tensors, **kw):
        calls.append((tensors, kw.get("dynamic_dims")))
        return real(model, tensors, **kw)

    monkeypatch.setattr(kiln.backend, "kiln_compile", spy)
    return calls


def _fallbacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "kiln" and r.levelno >= logging.WARNING and "fallback" in r.getMessage()]


class FloatAttributes(torch.nn.Module):
    """Floats read from the module (LayerNorm eps, Dropout p, `scale`) and from an argument."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.norm = torch.nn.Linear(8, 8), torch.nn.LayerNorm(8, eps=1e-3)
        self.dropout, self.scale = torch.nn.Dropout(0.25), 0.5

    def forward(self, x, shift: float):
        return self.norm(self.dropout(self.linear(x)) * self.scale + shift)


def test_float_inputs_compile_in_as_guarded_constants(caplog, kiln_compiles, iree_calls):
    torch.manual_seed(0)
    model = FloatAttributes().eval()
    compiled = torch.compile(model, backend="kiln", dynamic=True)
    with caplog.at_level(logging.WARNING, logger="kiln"), torch.no_grad():
        compiled(torch.randn(2, 3, 8), 0.5)   # compiles (Kiln calls the executable to tune it)
        for batch, sequence in SHAPES:
            x = torch.randn(batch, sequence, 8)
            before = len(iree_calls)
            torch.testing.assert_close(compiled(x, 0.5), model(x, 0.5), rtol=1e-5, atol=1e-5)
            assert len(iree_calls) - before == 1   # the whole call is one Kiln executable
        assert len(kiln_compiles) == 1
        tensors, dynamic_dims = kiln_compiles[0]
        assert not any(t.dtype == torch.float64 for t in tensors)   # no float reaches IREE
        assert list(dynamic_dims.values()) == [[0, 1]]   # x: batch and sequence, only
        # Each fixed float is guarded: a new value compiles again, with eager's results.
        model.scale = 2.0
        x = torch.randn(3, 5, 8)
        torch.testing.assert_close(compiled(x, 0.5), model(x, 0.5), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(compiled(x, -1.5), model(x, -1.5), rtol=1e-5, atol=1e-5)
    assert len(kiln_compiles) == 3
    assert _fallbacks(caplog) == []


def _bert(transformers):
    return transformers.BertModel(transformers.BertConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128,
        vocab_size=500))


def _gpt2(transformers):
    return transformers.GPT2Model(transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=2, vocab_size=500, bos_token_id=0, eos_token_id=0,
        use_cache=False))


def _llama(transformers):
    return transformers.LlamaModel(transformers.LlamaConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, vocab_size=500, use_cache=False))


@pytest.mark.parametrize("factory", [_bert, _gpt2, _llama], ids=["bert", "gpt2", "llama"])
def test_transformer_compiles_whole_once_for_every_size(factory, caplog, kiln_compiles,
                                                          iree_calls):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = factory(transformers).eval()
    compiled = torch.compile(model, backend="kiln", dynamic=True)
    with caplog.at_level(logging.WARNING, logger="kiln"), torch.no_grad():
        compiled(torch.randint(0, 500, SHAPES[0]))   # compiles (and tunes: calls it)
        for shape in SHAPES:
            ids = torch.randint(0, 500, shape)
            before = len(iree_calls)
            got = compiled(ids).last_hidden_state
            assert len(iree_calls) - before == 1, f"{shape} did not run in one Kiln executable"
            torch.testing.assert_close(got, model(ids).last_hidden_state, rtol=1e-4, atol=1e-4)
    assert _fallbacks(caplog) == []
    assert len(kiln_compiles) == 1
    tensors, dynamic_dims = kiln_compiles[0]
    assert list(dynamic_dims.values()) == [[0, 1]]   # the ids: batch and sequence, only
    assert not any(t.dtype == torch.float64 for t in tensors)



def test_a_float_argument_that_changes_is_not_passed_to_the_executable(caplog, kiln_compiles,
                                                                        iree_calls):
    """In the default mode a float argument becomes an input once its value changes; with
    static shapes it is the graph's only input after the tensor (no size inputs)."""
    def scaled(x, factor: float):
        return torch.sin(x) * factor

    compiled = torch.compile(scaled, backend="kiln")
    x = torch.randn(3, 5)
    with caplog.at_level(logging.WARNING, logger="kiln"):
        for factor in (1.5, 2.5):
            torch.testing.assert_close(compiled(x, factor), scaled(x, factor))
            before = len(iree_calls)
            torch.testing.assert_close(compiled(x, factor), scaled(x, factor))
            assert len(iree_calls) - before == 1
    assert len(kiln_compiles) == 2
    assert not any(t.dtype == torch.float64 for tensors, _ in kiln_compiles for t in tensors)
    assert _fallbacks(caplog) == []
