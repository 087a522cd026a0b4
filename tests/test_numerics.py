"""Compiled models match eager PyTorch, through kiln.compile and through torch.compile."""

from __future__ import annotations

import pytest
import torch

CASES = ["mlp", "cnn", "encoder", "elementwise"]


@pytest.mark.parametrize("name", CASES)
def test_kiln_compile_matches_eager(name, cases, compiled):
    model, inputs = cases[name]
    with torch.no_grad():
        expected = model(*inputs)
    torch.testing.assert_close(compiled[name](*inputs), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_fresh_inputs_match_eager(name, cases, compiled):
    """Not a replay of the example: new values of the same shapes."""
    model, inputs = cases[name]
    fresh = tuple(torch.randn_like(x) for x in inputs)
    with torch.no_grad():
        expected = model(*fresh)
    torch.testing.assert_close(compiled[name](*fresh), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_torch_compile_backend_matches_eager(name, cases):
    model, inputs = cases[name]
    torch._dynamo.reset()
    optimized = torch.compile(model, backend="kiln")
    with torch.no_grad():
        got, expected = optimized(*inputs), model(*inputs)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_output_structure_is_eagers(cases, compiled):
    model, inputs = cases["elementwise"]
    out = compiled["elementwise"](*inputs)
    assert isinstance(out, dict) and sorted(out) == ["gated", "norm"]


def test_tuple_and_list_outputs_keep_their_kind():
    import kiln

    def pair(x):
        return (x + 1, [x * 2, x.sum()])

    x = torch.randn(3)
    out = kiln.compile(pair, (x,))(x)
    assert isinstance(out, tuple) and isinstance(out[1], list)
    torch.testing.assert_close(out, pair(x))


def test_compiled_module_reports_target_and_device(compiled):
    assert compiled["mlp"].targets == ["llvm-cpu"]
    assert compiled["mlp"].device in ("local-task", "local-sync")


def test_device_override_picks_the_driver(cases, compiled, tmp_path):
    import kiln

    model, inputs = cases["mlp"]
    compiled["mlp"].save(tmp_path / "m.kiln")
    for driver in ("local-task", "local-sync"):
        loaded = kiln.load(tmp_path / "m.kiln", device=driver)
        assert loaded.device == driver
        torch.testing.assert_close(loaded(*inputs), model(*inputs))


def test_tune_keeps_the_faster_driver(cases):
    """The tuned choice is one of the CPU drivers and is recorded per target key."""
    import kiln

    model, inputs = cases["mlp"]
    module = kiln.compile(model, inputs, options=kiln.CompileOptions(tune_driver=False))
    assert module.drivers == {} and module.device == "local-task"
    chosen = module.tune(inputs)
    assert module.drivers == {"cpu": chosen} and module.device == chosen
