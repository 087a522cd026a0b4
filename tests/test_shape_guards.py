"""Shape guards: the sizes a dynamic-shape program is valid for, checked on every call, kept
in artifacts, and never evaluated as arbitrary code when read from one."""

from __future__ import annotations

import pytest
import torch
from models import MLP

import kiln
from kiln.frontend import dims
from kiln.runtime.manifest import ManifestError, _signature
from kiln.shape_guards import DimBound, ShapeGuards


def _x(*shape: int) -> torch.Tensor:
    return torch.empty(shape)


def test_bounds_and_conditions_are_checked_with_their_dims_named():
    guards = ShapeGuards((DimBound(0, 1, 1, 512),), ("(1 + ((-1) + in0_2) // 32) == 1",))
    guards.check((_x(2, 512, 32),))
    with pytest.raises(kiln.InputError, match=r"input 0 dimension 1 is 513, outside the sizes "
                                              r"this program was compiled for \(1\.\.512"):
        guards.check((_x(2, 513, 32),))
    with pytest.raises(kiln.InputError, match=r"input 0 \(2, 8, 33\): outside the shapes .* "
                                              r"need \(1 \+ \(\(-1\) \+ input0\.shape\[2\]\)"):
        guards.check((_x(2, 8, 33),))


def test_a_condition_dividing_by_zero_does_not_hold():
    guards = ShapeGuards(conditions=("in0_0 // (in0_1 - 3) >= 0",))
    assert not guards.holds((_x(2, 3),))
    assert guards.holds((_x(2, 4),))


@pytest.mark.parametrize("condition", [
    "__import__('os').system('true')",       # a call
    "in0_0.__class__",                       # an attribute
    "open",                                  # a name that is no dim
    "(lambda: 1)()",
    "in0_0 ** 99999999",                     # a power
    "10 ** 100 > in0_0",
    "'text' == in0_0",                       # a string constant
    str(1 << 70) + " > in0_0",               # a constant too large
    "[in0_0][0] == 1",
    "in0_0 if in0_1 else 2",
    "1 +" * 3000 + "1",                      # too long
])
def test_conditions_that_are_not_integer_arithmetic_are_refused(condition):
    with pytest.raises(ValueError, match="shape guard"):
        ShapeGuards(conditions=(condition,))


def test_a_manifest_with_a_hostile_guard_is_refused():
    signature = kiln.compile(MLP().eval(), (torch.randn(4, 8),),
                             dynamic_dims={0: {0: (1, 64)}}).signature.to_json()
    _signature(signature)
    signature["shape_guards"]["conditions"] = ["__import__('os').system('true') == 0"]
    with pytest.raises(ManifestError, match="shape_guards.*Call"):
        _signature(signature)
    signature["shape_guards"] = {"bounds": [[0, 5, 1, 2]], "conditions": []}
    with pytest.raises(ManifestError, match="dimension 5 of input 0"):
        _signature(signature)
    signature["shape_guards"] = {"bounds": [[0, 0, 9, 2]], "conditions": []}
    with pytest.raises(ManifestError, match="bounds"):
        _signature(signature)


def test_user_bounds_are_checked_on_calls_and_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = MLP().eval()
    compiled = kiln.compile(model, (torch.randn(4, 8),), dynamic_dims={0: {0: (2, 16)}})
    for batch in (2, 9, 16):
        x = torch.randn(batch, 8)
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    path = tmp_path / "mlp.kiln"
    compiled.save(path)
    loaded = kiln.load(path)
    for module in (compiled, loaded):
        with pytest.raises(kiln.InputError, match=r"dimension 0 is 17, outside .*\(2\.\.16"):
            module(torch.randn(17, 8))
        with pytest.raises(kiln.InputError, match=r"dimension 0 is 1, outside .*\(2\.\.16"):
            module(torch.randn(1, 8))


def test_a_batch_of_one_example_compiles_a_dynamic_batch():
    # torch.export fixes sizes 0 and 1: Kiln traces with a batch of two instead.
    torch.manual_seed(0)
    model = MLP().eval()
    compiled = kiln.compile(model, (torch.randn(1, 8),), dynamic_dims={0: [0]})
    assert compiled.signature.inputs[0].shape == (None, 8)
    for batch in (1, 5):
        x = torch.randn(batch, 8)
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)


def test_torch_export_dims_give_bounds():
    compiled = kiln.compile(MLP().eval(), (torch.randn(4, 8),),
                            dynamic_dims={0: {0: torch.export.Dim("batch", min=3, max=6)}})
    assert compiled.signature.shape_guards.bounds == (DimBound(0, 0, 3, 6),)


@pytest.mark.parametrize("given, message", [
    ({0: "0"}, "must map input indices"),
    ({"0": [0]}, "must map input indices"),
    ({0: {0: (5, 2)}}, "low <= high"),
    ({0: {0: (1, 2, 3)}}, r"give \(low, high\)"),
    ({0: {0: (-1, 2)}}, "must be sizes"),
    ([0], "must map input indices"),
])
def test_malformed_dynamic_dims_are_named(given, message):
    with pytest.raises(kiln.FrontendError, match=message):
        dims.parse(given)


def test_an_example_outside_the_bounds_is_a_frontend_error():
    with pytest.raises(kiln.FrontendError, match=r"example input 0 has size 4 in dimension 0, "
                                                 r"outside the bounds \(8, 16\)"):
        kiln.compile(MLP().eval(), (torch.randn(4, 8),), dynamic_dims={0: {0: (8, 16)}})
