"""TorchScript beyond the tutorial: ModuleList iteration, conv/batch-norm blocks, size
arithmetic, recurrent layers; and the compiled call runs no PyTorch op."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import kiln

warnings.filterwarnings("ignore", category=DeprecationWarning)


class Stack(nn.Module):
    """Iterates a ModuleList, which TorchScript unrolls."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x)) + x
        return x


class ConvBlock(nn.Module):
    """Conv, batch norm with non-trivial running statistics, pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)


class SizeArithmetic(nn.Module):
    """Reshapes computed from sizes: `view(b, -1)`, `size(1) // 2`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.size(0), x.size(1)
        half = c // 2
        left, right = x[:, :half], x[:, half:]
        return (left * right).view(b, -1).sum(1) / float(c)


def _scripted_case(model: nn.Module, *inputs: torch.Tensor):
    torch.manual_seed(0)
    scripted = torch.jit.script(model.eval())
    return scripted, kiln.compile(scripted, inputs)


@pytest.mark.parametrize("make, shape", [(Stack, (4, 8)), (ConvBlock, (2, 3, 8, 8)),
                                         (SizeArithmetic, (3, 6, 2))],
                         ids=["module-list", "conv-bn", "size-arithmetic"])
def test_scripted_model_matches_torchscript(make, shape):
    torch.manual_seed(0)
    scripted, compiled = _scripted_case(make(), torch.randn(shape))
    fresh = torch.randn(shape)
    torch.testing.assert_close(compiled(fresh), scripted(fresh), rtol=1e-5, atol=1e-5)


RESULT_COPY = {"aten::clone", "aten::copy_", "aten::empty_strided", "aten::empty_like"}


def test_scripted_loop_call_runs_no_pytorch_op():
    from tutorial import RNNLoop

    torch.manual_seed(0)
    scripted = torch.jit.script(RNNLoop())
    xs = torch.randn(10, 3, 4)
    compiled = kiln.compile(scripted, (xs,))
    compiled(xs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        compiled(xs)
    ops = sorted({e.name for e in prof.events() if e.name.startswith("aten::")})
    # The cell returns `new_h, new_h`: IREE returns one buffer for both results, and the
    # runtime gives the second its own copy (a `clone`); nothing else may run in PyTorch.
    assert set(ops) <= RESULT_COPY, f"PyTorch ran {ops} during the compiled call"


class Recurrent(nn.Module):
    """nn.GRU / nn.LSTM called from a forward: TorchScript resolves the overload to
    aten::gru / aten::lstm, which the torch dialect lacks and Kiln decomposes."""

    def __init__(self, layer: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = layer(4, 5, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


@pytest.mark.parametrize("layer", [nn.GRU, nn.LSTM], ids=["gru", "lstm"])
def test_scripted_recurrent_layer_matches_torchscript(layer):
    """The input checks of torch's rnn.py (`prim::RaiseException` on paths the shapes prove
    dead) fold away; the recurrence compiles."""
    torch.manual_seed(0)
    scripted = torch.jit.script(Recurrent(layer).eval())
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(kiln.compile(scripted, (x,))(x), scripted(x), rtol=1e-5,
                               atol=1e-5)


def test_live_raise_becomes_a_check_in_the_program():
    """A raise on a path the shapes do not decide is checked by the compiled program: the call
    fails with the model's message where TorchScript raises, and passes where it does not."""

    def checked(x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 1e6):
            raise ValueError("too large")
        return x * 2

    scripted = torch.jit.script(checked)
    compiled = kiln.compile(scripted, (torch.randn(3),))
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), scripted(x))
    big = torch.full((3,), 1e7)
    with pytest.raises(torch.jit.Error, match="too large"):
        scripted(big)
    with pytest.raises(kiln.RuntimeCheckError, match="too large"):
        compiled(big)


def test_bare_scripted_lstm_asks_for_a_wrapper():
    scripted = torch.jit.script(nn.LSTM(4, 5).eval())
    with pytest.raises(kiln.FrontendError, match=r"LSTM has no `forward` method .* wrap it"):
        kiln.compile(scripted, (torch.randn(3, 1, 4),))


class Unbatched(nn.Module):
    """Convolutions and poolings on unbatched input ([C, H, W], [C, L]), which PyTorch
    accepts and torch-mlir lowers only batched; ConvTranspose2d's forward has a defaulted
    `output_size` argument."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.ConvTranspose2d(4, 2, 3)
        self.conv1d = nn.Conv1d(3, 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.max_pool2d(self.up(torch.relu(self.conv(x))), 2)
        y = nn.functional.adaptive_avg_pool2d(y, 1)
        return y, self.conv1d(x.flatten(1))


@pytest.mark.parametrize("frontend", ["script", "export"])
def test_unbatched_convolutions_and_poolings(frontend):
    torch.manual_seed(0)
    model = Unbatched().eval()
    x = torch.randn(3, 10, 10)
    compiled = kiln.compile(torch.jit.script(model) if frontend == "script" else model, (x,))
    fresh = torch.randn(3, 10, 10)
    torch.testing.assert_close(compiled(fresh), model(fresh), rtol=1e-5, atol=1e-5)


class PoolThenUnitStrideConvTranspose(nn.Module):
    """A pooling feeding a stride-1 ConvTranspose2d, which IREE 3.13 failed to compile as
    torch-mlir lowers it (kiln-conv-transpose-to-conv makes it a direct convolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(nn.functional.avg_pool2d(x, 2))


@pytest.mark.parametrize("frontend", ["script", "trace", "export"])
def test_pooling_into_a_unit_stride_conv_transpose(frontend):
    torch.manual_seed(0)
    model, x = PoolThenUnitStrideConvTranspose().eval(), torch.randn(1, 3, 8, 8)
    captured = {"script": lambda: torch.jit.script(model),
                "trace": lambda: torch.jit.trace(model, (x,)), "export": lambda: model}[frontend]()
    stats: dict = {}
    compiled = kiln.compile(captured, (x,), options=kiln.CompileOptions(stats=stats))
    assert stats["kiln-conv-transpose-to-conv"] == {"transposed convolutions made direct": 1}
    fresh = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(compiled(fresh), model(fresh), rtol=1e-5, atol=1e-5)


def test_scripted_forward_with_too_few_inputs_names_them():
    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor, scale: float = 2.0):
            return x * y * scale

    scripted = torch.jit.script(TwoInputs())
    with pytest.raises(kiln.FrontendError, match=r"takes 2 to 3 inputs \(x, y, scale\), but 1"):
        kiln.compile(scripted, (torch.randn(2),))
    compiled = kiln.compile(scripted, (torch.randn(2), torch.randn(2)))
    x, y = torch.randn(2), torch.randn(2)
    torch.testing.assert_close(compiled(x, y), x * y * 2.0)


class UnevenAdaptivePools(nn.Module):
    """Adaptive average pooling whose windows differ in size (5 -> 3, 7 -> 4): torch-mlir
    mis-lowers TorchScript's op; Kiln turns it into matmuls with averaging matrices."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (nn.functional.adaptive_avg_pool2d(x, (3, 4)),
                nn.functional.adaptive_avg_pool1d(y, 3))


def test_uneven_adaptive_average_pools():
    scripted = torch.jit.script(UnevenAdaptivePools())
    x, y = torch.randn(1, 2, 5, 7), torch.randn(2, 4, 5)
    compiled = kiln.compile(scripted, (x, y))
    torch.testing.assert_close(compiled(x, y), scripted(x, y), rtol=1e-5, atol=1e-5)


class UnevenAdaptiveMaxPools(nn.Module):
    """Adaptive max pooling over uneven windows, which torch-mlir fails to lower in both
    frontends; Kiln takes each window's maximum itself."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (nn.functional.adaptive_max_pool2d(x, (3, 4)),
                nn.functional.adaptive_max_pool1d(y, 3))


@pytest.mark.parametrize("frontend", ["script", "export"])
def test_uneven_adaptive_max_pools(frontend):
    model = UnevenAdaptiveMaxPools()
    x, y = torch.randn(2, 3, 5, 7), torch.randn(2, 4, 5)
    stats: dict = {}
    captured = torch.jit.script(model) if frontend == "script" else model
    compiled = kiln.compile(captured, (x, y), options=kiln.CompileOptions(stats=stats))
    assert stats["kiln-lower-adaptive-pools"] == {"adaptive max poolings as window maxima": 2}
    x, y = torch.randn(2, 3, 5, 7), torch.randn(2, 4, 5)
    torch.testing.assert_close(compiled(x, y), model(x, y))


def test_list_inputs_are_specialized_and_mixed_lists_refused():
    @torch.jit.script
    def reshape(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
        return x.view(shape) * 2

    x = torch.randn(6)
    compiled = kiln.compile(reshape, (x, [2, 3]))
    torch.testing.assert_close(compiled(x, [2, 3]), x.view(2, 3) * 2)
    with pytest.raises(kiln.InputError, match=r"compiled for the value \[2, 3\], got \[3, 2\]"):
        compiled(x, [3, 2])
    with pytest.raises(kiln.FrontendError, match=r"example input 1 is a list; .* non-empty lists"):
        kiln.compile(reshape, (x, [2, 3.0]))


class ShiftRight(nn.Module):
    """BART's decoder-input shift: writes into a slice and a column of a new tensor, then an
    in-place masked_fill, all of which TorchScript's remove_mutation leaves in place."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        shifted = ids.new_zeros(ids.shape)
        shifted[:, 1:] = ids[:, :-1].clone()
        shifted[:, 0] = 7
        shifted.masked_fill_(shifted == 3, 0)
        return shifted * 2


@pytest.mark.parametrize("frontend", ["script", "trace"])
def test_writes_into_slices_are_functionalized(frontend):
    ids = torch.randint(0, 10, (2, 6))
    compiled = kiln.compile(ShiftRight(), (ids,), frontend=frontend)
    for x in (ids, torch.randint(0, 10, (2, 6))):
        assert torch.equal(compiled(x), ShiftRight()(x))


class WritesItsInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x[0] = 1.0
        return x * 2


class StaleAlias(nn.Module):
    """`view` aliases `base`; after the write through `row`, eager reads the new value
    through `view`, which a functional import would not see."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x * 1.0
        view = base[1:]
        row = base[0]
        row.fill_(5.0)
        return view + base


@pytest.mark.parametrize("model, why", [
    (WritesItsInput(), "the tensor is an input of the model"),
    (StaleAlias(), "another alias of it .* is read afterwards"),
], ids=["input", "stale-alias"])
def test_unsafe_in_place_updates_are_refused(model, why):
    """Where a functional import would differ from eager, the error says why, never a wrong
    answer."""
    with pytest.raises(kiln.UnsupportedOpError, match=why):
        kiln.compile(torch.jit.script(model), (torch.randn(3, 4),))


def test_identity_of_a_new_tensor_is_decided_at_import():
    """`a is b` where `a` is a tensor the model just made cannot hold for another value (it
    is what decides nn.MultiheadAttention's self- against cross-attention), so the branch
    folds; two model inputs may be one tensor, so that test stays."""
    from kiln.frontend.torchscript import import_script

    @torch.jit.script
    def identity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = x + 1
        if z is y:
            z = z * 2
        if x is y:
            z = z * 3
        return z

    text = str(import_script(identity, (torch.randn(3), torch.randn(3))).module)
    assert text.count('"kiln.if"') == 1, text
    assert "torch.aten.mul" in text and "__is__" in text
