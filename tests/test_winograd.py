"""Winograd convolutions: the ones kiln-mark-winograd-convs picks run as IREE's F(6,3), the
small ones kiln-winograd-small-convs picks as Kiln's own F(4,3) / F(2,3), and all match
eager within 1e-4 (Winograd rounds about 10x more than im2col: ~1e-5 of the output's
magnitude)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kiln
from kiln.compiler import generate_code, lower_to_linalg
from kiln.frontend.export import export_program, import_exported
from kiln.runtime.targets import resolve_all

TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


class Convs(nn.Module):
    """One convolution Winograd suits (64 -> 96 channels, 3x3, 24x24) and three it does not.

    The suited one's transformed filter (64 tile positions x 64 x 96 floats) is 1.4 MiB
    larger than its weight: IREE hoists it only with the raised size limit of targets.py.
    """

    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Conv2d(64, 96, 3, padding=1)
        self.strided = nn.Conv2d(96, 16, 3, stride=2, padding=1)
        self.narrow = nn.Conv2d(96, 4, 3, padding=1)
        self.large = nn.Conv2d(4, 16, 5, padding=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.wide(x))
        return self.large(self.narrow(y)), self.strided(y)


@pytest.fixture(scope="module")
def convs():
    torch.manual_seed(0)
    model, x = Convs().eval(), torch.randn(2, 64, 24, 24)
    return model, x, *_compile_counting(model, x)


def _compile_counting(model, x: torch.Tensor) -> tuple[kiln.CompiledModule, dict]:
    """`model` compiled for `x`, and what each pass counted."""
    stats: dict = {}
    return kiln.compile(model, (x,), options=kiln.CompileOptions(stats=stats)), stats


def test_winograd_conv_matches_eager(convs):
    model, x, compiled, _ = convs
    fresh = torch.randn_like(x)
    with torch.no_grad():
        for inputs in (x, fresh):
            for got, want in zip(compiled(inputs), model(inputs)):
                torch.testing.assert_close(got, want, **TOLERANCE)


def test_only_the_suited_conv_is_marked(convs):
    *_, stats = convs
    assert stats["kiln-mark-winograd-convs"] == {"convolutions marked for Winograd": 1}


def test_iree_computes_it_by_winograd_with_the_filter_transformed_at_compile_time(convs):
    _, _, compiled, _ = convs
    vmfb = bytes(compiled.executables["cpu"])
    assert b"winograd_input_transform" in vmfb
    assert b"winograd_output_transform" in vmfb
    # The weight is a constant: its transform was hoisted and evaluated by the compiler,
    # so no dispatch of the program transforms the filter on a call.
    assert b"winograd_filter_transform" not in vmfb


@pytest.mark.parametrize("channels, size, pass_name, count", [
    (16, 24, "kiln-mark-winograd-convs", {"convolutions marked for Winograd": 1}),
    (64, 12, "kiln-winograd-small-convs", {"convolutions rewritten as Winograd F(4,3)": 1}),
])
def test_winograd_with_the_weight_as_an_iree_parameter(monkeypatch, channels, size, pass_name,
                                                       count):
    """A weight above the externalization threshold is a parameter: transformed at load."""
    monkeypatch.setenv("KILN_EXTERNAL_PARAMS_MIN_BYTES", "1024")
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(1, channels, size, size)
    compiled, stats = _compile_counting(model, x)
    assert stats["kiln-externalize-params"]["params externalized"] == 1
    assert stats[pass_name] == count
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


def test_a_bias_left_inside_the_convolution_is_kept():
    """With graph passes off the bias stays in the convolution, which then starts from the
    broadcast bias: IREE's Winograd would drop it, so such a convolution is not marked."""
    torch.manual_seed(2)
    model = nn.Conv2d(16, 16, 3, padding=1).eval()
    x = torch.randn(1, 16, 24, 24)
    stats: dict = {}
    compiled = kiln.compile(model, (x,), options=kiln.CompileOptions(graph_passes=False,
                                                                   stats=stats))
    assert "kiln-mark-winograd-convs" not in stats
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


def test_scripted_unit_stride_conv_transpose_runs_by_winograd_with_its_bias():
    """TorchScript's conv_transpose2d: its bias is split off (kiln-split-conv-bias), then it
    becomes a direct convolution (kiln-conv-transpose-to-conv), which Winograd suits."""
    torch.manual_seed(3)
    model = nn.ConvTranspose2d(16, 16, 3, padding=1).eval()
    x = torch.randn(1, 16, 24, 24)
    compiled, stats = _compile_counting(torch.jit.script(model), x)
    assert stats["kiln-split-conv-bias"] == {"biases moved after their convolution": 1}
    assert stats["kiln-mark-winograd-convs"] == {"convolutions marked for Winograd": 1}
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


class SmallConvs(nn.Module):
    """Kiln's own Winograd: F(4,3) at 14x17 (tiles cut at the edges), F(2,3) at 7x7 after a
    stride-2 convolution (which stays im2col), and a 7x7 convolution with too few channels
    (64 < 128) for F(2,3)."""

    def __init__(self) -> None:
        super().__init__()
        self.f4 = nn.Conv2d(64, 128, 3, padding=1)
        self.down = nn.Conv2d(128, 128, 3, stride=2, padding=1)
        self.f2 = nn.Conv2d(128, 128, 3, padding=1)
        self.narrow = nn.Conv2d(128, 64, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.f4(x))
        return self.narrow(torch.relu(self.f2(self.down(y))))


@pytest.fixture(scope="module")
def small_convs():
    torch.manual_seed(4)
    model, x = SmallConvs().eval(), torch.randn(2, 64, 14, 17)
    return model, x, *_compile_counting(model, x)


def test_small_winograd_convs_match_eager(small_convs):
    model, x, compiled, _ = small_convs
    with torch.no_grad():
        for inputs in (x, torch.randn_like(x)):
            torch.testing.assert_close(compiled(inputs), model(inputs), **TOLERANCE)


def test_small_winograd_picks_f43_and_f23(small_convs):
    *_, stats = small_convs
    assert stats["kiln-winograd-small-convs"] == {
        "convolutions rewritten as Winograd F(4,3)": 1,
        "convolutions rewritten as Winograd F(2,3)": 1}
    assert "kiln-mark-winograd-convs" not in stats   # no output is 24x24 or more


def test_small_winograd_products_in_packed_tiles():
    """One 14x14 image is 16 Winograd tiles, exactly one 16-column tile of Kiln's packed
    batch matmul: the input tiles and the products are reshaped, not packed and unpacked,
    and the 64 filters (11 six-row tiles, 66 rows) are cut back to 64."""
    torch.manual_seed(7)
    model, x = nn.Conv2d(64, 64, 3, padding=1).eval(), torch.randn(1, 64, 14, 14)
    program = import_exported(export_program(model, (x,), None), None)
    lower_to_linalg(program, kiln.CompileOptions())
    linalg = generate_code(program, resolve_all("cpu"), kiln.CompileOptions())["cpu"].linalg
    assert linalg.count("linalg.batch_mmt4d") == 1
    assert "linalg.unpack" not in linalg and "linalg.batch_matmul" not in linalg
    compiled, _ = _compile_counting(model, x)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


def test_small_winograd_for_the_cpu_only():
    """GPU Winograd is unmeasured: a CUDA target compiled beside the CPU gets its own linalg
    with the convolution left for im2col, while the CPU's is rewritten."""
    torch.manual_seed(6)
    model, x = nn.Conv2d(64, 64, 3, padding=1).eval(), torch.randn(1, 64, 14, 14)
    stats: dict = {}
    options = kiln.CompileOptions(stats=stats)
    program = import_exported(export_program(model, (x,), None), None)
    lower_to_linalg(program, options)
    codegen = {k: code.linalg for k, code in
               generate_code(program, resolve_all(["cuda", "cpu"]), options).items()}
    assert stats["kiln-winograd-small-convs"] == {"convolutions rewritten as Winograd F(4,3)": 1}
    assert "linalg.conv_2d_nchw_fchw" in codegen["cuda:sm_80"]
    assert "linalg.conv_2d_nchw_fchw" not in codegen["cpu"]
