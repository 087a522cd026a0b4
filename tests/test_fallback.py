"""torch.compile(backend="kiln") never fails a model: unsupported parts run in PyTorch."""

from __future__ import annotations

import logging

import pytest
import torch

import kiln
from kiln.backend import KilnSupport, mlir_op_name


@torch.library.custom_op("kilnfallback::wiggle", mutates_args=())
def wiggle(x: torch.Tensor) -> torch.Tensor:
    return x.sin() * 2


@wiggle.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("kilnfallback::wobble", mutates_args=())
def wobble(x: torch.Tensor) -> torch.Tensor:
    return x.cos()


@wobble.register_fake
def _(x):
    return torch.empty_like(x)


class CustomInTheMiddle(torch.nn.Module):
    """Linear + relu | a custom op | add + linear + tanh: two partitions Kiln can take."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.first(x))
        return torch.tanh(self.second(wiggle(y) + 1))


def _fallback_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "kiln" and r.levelno == logging.WARNING and "fallback" in r.getMessage()]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_custom_op_runs_in_pytorch_and_the_rest_in_iree(caplog, iree_calls):
    torch.manual_seed(0)
    model, x = CustomInTheMiddle().eval(), torch.randn(3, 8)
    compiled = torch.compile(model, backend="kiln")
    with caplog.at_level(logging.WARNING, logger="kiln"), torch.no_grad():
        got = compiled(x)
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
    assert _fallback_lines(caplog) == [
        ("kiln fallback: kilnfallback.wiggle.default x1 runs in PyTorch: custom op of namespace "
         "'kilnfallback': Kiln has no lowering for it")]
    before = len(iree_calls)
    with torch.no_grad():
        compiled(x)
    assert len(iree_calls) - before == 2   # both partitions ran as Kiln executables


def test_strict_turns_the_fallback_into_an_error_naming_every_op():
    class TwoCustom(torch.nn.Module):
        def forward(self, x):
            return wobble(wiggle(x) * 3)

    compiled = torch.compile(TwoCustom(), backend="kiln", options={"strict": True})
    with pytest.raises(Exception, match=r"kilnfallback.wiggle") as info:
        compiled(torch.randn(4))
    error = getattr(info.value, "inner_exception", info.value)
    assert isinstance(error, kiln.UnsupportedOpError)
    assert "kilnfallback.wobble" in str(error)


def test_ahead_of_time_compile_names_every_unsupported_op():
    def two_custom(x):
        return wobble(wiggle(x) * 3)

    with pytest.raises(kiln.UnsupportedOpError,
                       match=r"'kilnfallback.wiggle' .*also unsupported: '(torch\.)?kilnfallback.wobble'"):
        kiln.compile(two_custom, (torch.randn(4),))


def test_unknown_backend_option_is_named():
    compiled = torch.compile(torch.nn.ReLU(), backend="kiln", options={"fast": True})
    with pytest.raises(Exception, match=r"unknown kiln backend option\(s\) fast; known: strict"):
        compiled(torch.randn(4))


def test_aten_op_without_a_torch_mlir_op_falls_back_with_its_reason(caplog):
    def bessel(x):
        return torch.special.bessel_j0(torch.tanh(x) * 4) + x

    x = torch.randn(6)
    with caplog.at_level(logging.WARNING, logger="kiln"):
        got = torch.compile(bessel, backend="kiln")(x)
    torch.testing.assert_close(got, bessel(x), rtol=1e-5, atol=1e-5)
    assert any("aten.special_bessel_j0.default x1 runs in PyTorch: torch-mlir has no "
               "'torch.aten.special_bessel_j0' op" in line for line in _fallback_lines(caplog))


def test_graph_break_on_print_gives_eager_results(capsys, iree_calls):
    class Noisy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x):
            y = torch.relu(self.fc(x))
            print("halfway")
            return torch.sigmoid(self.fc(y))

    torch.manual_seed(0)
    model, x = Noisy().eval(), torch.randn(2, 8)
    compiled = torch.compile(model, backend="kiln")
    with torch.no_grad():
        compiled(x)
        before = len(iree_calls)
        got = compiled(x)
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
    assert len(iree_calls) - before == 2   # the graphs before and after the break
    assert "halfway" in capsys.readouterr().out


def test_data_dependent_branch_gives_eager_results():
    def branchy(x):
        if x.sum().item() > 0:   # .item() breaks the graph; Python picks the branch
            return torch.tanh(x) * 2
        return torch.sigmoid(x) - 1

    compiled = torch.compile(branchy, backend="kiln")
    for x in (torch.ones(5), -torch.ones(5)):
        torch.testing.assert_close(compiled(x), branchy(x), rtol=1e-5, atol=1e-5)


def test_support_check_names_ops_as_the_importer_does():
    assert mlir_op_name(torch.ops.aten.add.Tensor) == "torch.aten.add.Tensor"
    assert mlir_op_name(torch.ops.aten.relu.default) == "torch.aten.relu"
    support = KilnSupport()
    assert support._refusal(torch.ops.aten.relu.default) is None
    assert "custom op" in support._refusal(torch.ops.kilnfallback.wiggle.default)


def test_partitions_keep_dynamic_shapes(iree_calls):
    torch.manual_seed(0)
    model = CustomInTheMiddle().eval()
    compiled = torch.compile(model, backend="kiln", dynamic=True)
    with torch.no_grad():
        compiled(torch.randn(2, 3, 8))   # compiles (Kiln calls each executable to tune it)
        for shape in ((2, 3, 8), (5, 4, 8), (3, 9, 8)):
            x = torch.randn(shape)
            before = len(iree_calls)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
            assert len(iree_calls) - before == 2
