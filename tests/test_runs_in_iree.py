"""The compiled call runs in the IREE executable: PyTorch executes no op during it."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile


@pytest.mark.parametrize("name", ["mlp", "cnn", "encoder", "elementwise"])
def test_no_pytorch_op_runs_during_the_call(name, cases, compiled):
    _, inputs = cases[name]
    module = compiled[name]
    module(*inputs)  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        module(*inputs)
    torch_ops = sorted({e.name for e in prof.events() if e.name.startswith("aten::")})
    assert torch_ops == [], f"PyTorch ran {torch_ops} during the compiled call"


def test_the_profiler_would_see_pytorch_ops(cases):
    """The check above can fail: eager execution of the same model shows aten ops."""
    model, inputs = cases["mlp"]
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(*inputs)
    assert any(e.name.startswith("aten::") for e in prof.events())
