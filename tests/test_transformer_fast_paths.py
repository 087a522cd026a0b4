"""PyTorch's fused transformer fast paths, which the torch dialect lacks: Kiln's definitions
against ATen's kernels, and through torch.compile(backend="kiln")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kiln.frontend.decompositions import (
    native_multi_head_attention,
    transformer_encoder_layer_fwd,
)

B, T, D, H = 2, 5, 16, 4


def _weights():
    torch.manual_seed(0)
    return [torch.randn(3 * D, D) / 4, torch.randn(3 * D), torch.randn(D, D) / 4, torch.randn(D)]


MASKS = {
    "none": (None, None),
    "key-padding": (torch.tensor([[False] * 4 + [True], [False] * 5]), 1),
    "src-mask": (torch.triu(torch.ones(T, T, dtype=torch.bool), 1), 0),
    # a row with every key masked: ATen's CPU kernel gives NaN there, and so must Kiln
    "all-masked-row": (torch.tensor([[True] * 5, [False] * 5]), 1),
}


@pytest.mark.parametrize("mask_name", MASKS)
@pytest.mark.parametrize("need_weights, average", [(False, True), (True, True), (True, False)])
def test_multi_head_attention_matches_aten(mask_name, need_weights, average):
    mask, mask_type = MASKS[mask_name]
    x = torch.randn(B, T, D)
    args = (x, x, x, D, H, *_weights(), mask, need_weights, average, mask_type)
    expected = torch._native_multi_head_attention(*args)
    got = native_multi_head_attention(*args)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5, equal_nan=True)
    if need_weights:
        torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("use_gelu", [False, True])
def test_encoder_layer_matches_aten(norm_first, use_gelu):
    torch.manual_seed(1)
    x = torch.randn(B, T, D)
    norms = [torch.randn(D), torch.randn(D), torch.randn(D), torch.randn(D)]
    ffn = [torch.randn(32, D) / 4, torch.randn(32), torch.randn(D, 32) / 4, torch.randn(D)]
    args = (x, D, H, *_weights(), use_gelu, norm_first, 1e-5, *norms, *ffn)
    torch.testing.assert_close(transformer_encoder_layer_fwd(*args),
                               torch._transformer_encoder_layer_fwd(*args), rtol=1e-5, atol=1e-5)


def test_torch_compile_takes_the_encoder_fast_path():
    """nn.TransformerEncoderLayer in eval under no_grad reaches Dynamo as
    aten._transformer_encoder_layer_fwd; strict mode compiles it instead of failing."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 8, 32)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="kiln", options={"strict": True})
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
