"""Bad input gets a KilnError that names what is wrong and what was expected."""

from __future__ import annotations

import pytest
import torch

import kiln


def test_wrong_number_of_inputs_names_the_count(compiled):
    with pytest.raises(kiln.InputError, match=r"expected 2 inputs \(4x16:f32, 16:f32\), got 1"):
        compiled["elementwise"](torch.randn(4, 16))


def test_wrong_shape_names_the_input_and_dimension(compiled):
    with pytest.raises(kiln.InputError, match=r"input 0 must have shape 4x8:f32, got \(5, 8\) "
                                              r"\(dimension 0 is 5, not 4\)"):
        compiled["mlp"](torch.randn(5, 8))


def test_wrong_rank_names_the_input(compiled):
    with pytest.raises(kiln.InputError, match=r"input 0 must have rank 2 .* got rank 3"):
        compiled["mlp"](torch.randn(1, 4, 8))


def test_wrong_dtype_names_the_input(compiled):
    with pytest.raises(kiln.InputError, match=r"input 1 must have dtype torch.float32, got "
                                              r"torch.float64"):
        compiled["elementwise"](torch.randn(4, 16), torch.randn(16, dtype=torch.float64))


def test_non_tensor_input_is_named(compiled):
    with pytest.raises(kiln.InputError, match=r"input 0 must be a tensor of 4x8:f32, got list"):
        compiled["mlp"]([1.0] * 8)


@torch.library.custom_op("kilntest::wiggle", mutates_args=())
def wiggle(x: torch.Tensor) -> torch.Tensor:
    return x.sin() * 2


@wiggle.register_fake
def _(x):
    return torch.empty_like(x)


class UsesCustomOp(torch.nn.Module):
    def forward(self, x):
        y = torch.relu(x)
        return wiggle(y) + 1  # the line the error must name


def test_unlowerable_op_is_named_with_its_source_line():
    line = UsesCustomOp.forward.__code__.co_firstlineno + 2
    with pytest.raises(kiln.UnsupportedOpError,
                       match=rf"'kilntest.wiggle' \(at .*test_errors.py:{line}:0\)"):
        kiln.compile(UsesCustomOp(), (torch.randn(4),))


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(kiln.TargetError, match=r"unknown target 'tpu'; known targets: cpu, cuda"):
        kiln.compile(torch.nn.ReLU(), (torch.randn(2),), target="tpu")


def test_unknown_frontend_is_named():
    with pytest.raises(kiln.KilnError, match=r"unknown frontend 'onnx'"):
        kiln.compile(torch.nn.ReLU(), (torch.randn(2),), frontend="onnx")


def test_export_failure_is_a_kiln_error():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(kiln.FrontendError, match=r"torch.export could not capture the model"):
        kiln.compile(DataDependent(), (torch.randn(3),), frontend="export")


def test_unknown_stage_is_named(compiled):
    with pytest.raises(KeyError, match=r"unknown stage 'llvm'"):
        compiled["mlp"].ir("llvm")
