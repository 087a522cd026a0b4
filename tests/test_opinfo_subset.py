"""The always-run part of the OpInfo sweep (benchmarks/opinfo_sweep.py): a few representative
ops of PyTorch's OpInfo database, float32, through `torch.compile(backend="kiln",
options={"strict": True})`: each must compile in Kiln (no fallback, an executable called) and
match eager on its first two samples, including when compiled a second time from the cache.
The full sweep is a benchmark: `python benchmarks/opinfo_sweep.py` (figures in
benchmarks/results/opinfo_*.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import expecttest  # noqa: F401  # the test extra installs it: torch.testing._internal needs it
import pytest
import torch

SWEEP_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "opinfo_sweep.py"


def _load_sweep():
    """benchmarks/ is no package: the sweep module loaded from its file, under its own name
    (not on sys.path, where benchmarks/models.py would shadow examples/models.py)."""
    if "kiln_opinfo_sweep" in sys.modules:
        return sys.modules["kiln_opinfo_sweep"]
    spec = importlib.util.spec_from_file_location("kiln_opinfo_sweep", SWEEP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kiln_opinfo_sweep"] = module   # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sweep = _load_sweep()

# Elementwise, reductions, matmuls, gathers, joins, normalizations, a convolution: ops that
# compile in strict mode today (benchmarks/results/opinfo_float32_strict.md) and take about
# a second each.
OPS = [
    "add", "div.no_rounding_mode", "tanh", "sigmoid", "where", "masked_fill", "fmax",
    "sum", "var", "cumsum", "max.reduction_with_dim",
    "matmul", "bmm", "addmm", "nn.functional.linear", "nn.functional.conv2d",
    "index_select", "gather", "nn.functional.embedding", "sort", "scatter_add", "clone",
    "cat", "transpose",
    "softmax", "log_softmax", "nn.functional.relu", "nn.functional.layer_norm",
]


@pytest.mark.parametrize("key", OPS)
def test_opinfo_op_compiles_and_matches_eager(key):
    record = sweep.run_op(sweep.find_op(key), "float32", "strict", samples=2,
                          cached_check=True)
    assert record["category"] == "compiled", (
        f"{key}: {record['category']}: {record['error']} {record['notes']}")
    assert len(record["samples"]) >= 1
    for sample in record["samples"]:
        assert sample["category"] == "compiled"
        assert sample["graphs"] >= 1 and sample["iree_calls"] >= 1, sample
        assert not sample["fallbacks"]


def test_compare_catches_a_wrong_dtype_shape_and_value():
    x = torch.arange(6.0).reshape(2, 3)
    assert sweep.compare(x.clone(), x, 1e-5, 1e-5) is None
    assert "dtype" in sweep.compare(x.double(), x, 1e-5, 1e-5)
    assert "shape" in sweep.compare(x.reshape(3, 2), x, 1e-5, 1e-5)
    assert "Mismatched" in sweep.compare(x + 1e-3, x, 1e-5, 1e-5)
    assert "structure" in sweep.compare((x, x), x, 1e-5, 1e-5)
    nan = torch.tensor([float("nan"), 1.0])
    assert sweep.compare(nan.clone(), nan, 1e-5, 1e-5) is None       # NaNs compare equal
    assert "inf where eager is finite" in sweep.compare(torch.tensor([float("inf")]),
                                                          torch.tensor([1e4]), 1e-5, 1e-5)


def test_errors_are_grouped_by_the_op_named():
    from kiln.errors import UnsupportedOpError

    error = UnsupportedOpError("aten.fft_fft", "model.py:3")
    assert sweep.group_of(sweep.message_line(error)) == "unsupported op 'aten.fft_fft'"
    warned = "kiln fallback: aten.foo.default x2 runs in PyTorch: torch-mlir has no " \
             "'torch.aten.foo' op"
    assert sweep.group_of(warned) == "torch-mlir has no 'torch.aten.foo' op"
    wrapped = RuntimeError("backend='kiln' raised:")
    wrapped.inner_exception = error
    assert sweep.kiln_error_in(wrapped) is error
