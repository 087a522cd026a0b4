"""`kiln-conv-transpose-to-conv`: a stride-1 transposed convolution is a plain convolution."""

from __future__ import annotations

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import CONVOLUTIONS, torch_bool, torch_int, torch_int_list
from kiln.passes.graph_values import (
    KnownValues,
    erase_dead,
    function_ops,
    new_param,
    prune_params,
    source_param,
    tensor_type,
)
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-conv-transpose-to-conv"


@kiln_pass(PASS)
def conv_transpose_to_conv(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite a stride-1 transposed convolution with a known weight as a convolution.

    With stride 1, `conv_transpose(x, W, padding=p, dilation=d)` equals
    `conv(x, W', padding=d*(k-1)-p, dilation=d)`, where `W'` swaps W's input and output
    channel axes (within each group) and flips its kernel; `W'` is computed here, in
    PyTorch, and becomes a `kiln.param`. torch-mlir lowers a transposed convolution by
    writing its input into a zero tensor (`tensor.insert_slice`) before a convolution;
    IREE 3.13 fails to compile that when a pooling produces the input ("slice along
    dimension 3 runs out-of-bounds"), while the padding of a plain convolution compiles.
    A correctness rewrite, so it runs in `kiln-lower` (with graph passes off too), before
    `kiln-externalize-params` (it makes a param). Qualifies: batched input, stride 1, no
    output padding, padding at most d*(k-1) on every side, weight known at compile time.
    Effect: correctness (the pooling + ConvTranspose models of `tests/test_graph_passes.py`).
    """
    known = KnownValues(ctx.params)  # type: ignore[arg-type]  # kiln.compile's dict
    for op in function_ops(module):
        if op.name in CONVOLUTIONS and _rewrite(op, known):
            ctx.count(PASS, "transposed convolutions made direct")
    erase_dead(function_ops(module))
    prune_params(module, known.params)


def _rewrite(op: ir.Operation, known: KnownValues) -> bool:
    at = CONVOLUTIONS[op.name]
    if at.transposed_value(op, known.get) is not True:
        return False
    weight = known.tensor(op.operands[1])
    x_shape = vtensor_shape(op.operands[0].type)
    if weight is None or x_shape is None or len(x_shape) != weight.dim():
        return False
    spatial = weight.dim() - 2
    stride, padding, output_padding, dilation = (
        _ints(known.get(op.operands[i]), spatial)
        for i in (at.stride, at.padding, at.output_padding, at.dilation))
    groups = known.get(op.operands[at.groups])
    if None in (stride, padding, output_padding, dilation) or not isinstance(groups, int):
        return False
    kernel = list(weight.shape[2:])
    if any(s != 1 for s in stride) or any(output_padding):
        return False
    new_padding = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    if any(p < 0 for p in new_padding):
        return False
    direct = _direct_weight(weight, groups)
    with ir.InsertionPoint(op), op.location:
        w = new_param(known.params, source_param(op.operands[1]), direct, tensor_type(direct),
                      op.location)
        operands = [op.operands[0], w, op.operands[2], torch_int_list([1] * spatial),
                    torch_int_list(new_padding), torch_int_list(dilation), torch_bool(False),
                    torch_int_list([0] * spatial), torch_int(groups)]
        conv = ir.Operation.create("torch.aten.convolution", results=[op.results[0].type],
                                   operands=operands)
    op.results[0].replace_all_uses_with(conv.results[0])
    return True


def _direct_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """[Cin, Cout/g, *k] (transposed conv) -> [Cout, Cin/g, *k] flipped (direct conv)."""
    c_in, c_out_group, *kernel = weight.shape
    grouped = weight.reshape(groups, c_in // groups, c_out_group, *kernel).transpose(1, 2)
    direct = grouped.reshape(groups * c_out_group, c_in // groups, *kernel)
    return direct.flip(list(range(2, direct.dim()))).contiguous()


def _ints(value: object, count: int) -> list[int] | None:
    """A list of `count` ints from a known int list (one element stands for all)."""
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        return None
    if len(value) == 1:
        return value * count
    return value if len(value) == count else None
