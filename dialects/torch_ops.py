"""Facts about torch-dialect ops that the frontends and the passes both need."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from torch_mlir import ir

# aten ops PyTorch also accepts on unbatched input ([C, *spatial]); the number of spatial
# dims is in the name (conv2d, max_pool1d_with_indices, conv_transpose3d.input).
_UNBATCHABLE = re.compile(
    r"torch\.aten\.(conv|conv_transpose|max_pool|avg_pool|adaptive_avg_pool|adaptive_max_pool"
    r"|lp_pool)(?P<dims>[123])d(_with_indices)?(\.\w+)?$")


def spatial_dims(name: str) -> int | None:
    """The spatial dims of a convolution or pooling with an unbatched form (`torch.aten.conv2d`:
    2), or None for any other op. Its input is unbatched when its rank is this plus one."""
    match = _UNBATCHABLE.match(name)
    return int(match.group("dims")) if match else None


@dataclass(frozen=True)
class ConvolutionOperands:
    """Where a convolution op keeps its arguments; input, weight, bias are operands 0-2."""

    stride: int
    padding: int
    dilation: int
    groups: int
    output_padding: int | None   # None: the op has none (a direct convolution)
    transposed: int | bool       # operand index of the flag, or the value it always has

    def transposed_value(self, op: ir.Operation,
                         value_of: Callable[[ir.Value], object]) -> object:
        """The transposed flag of `op`: a bool, or what `value_of` makes of its operand."""
        if isinstance(self.transposed, bool):
            return self.transposed
        return value_of(op.operands[self.transposed])


_EITHER = ConvolutionOperands(stride=3, padding=4, dilation=5, groups=8, output_padding=7,
                              transposed=6)
_DIRECT = ConvolutionOperands(stride=3, padding=4, dilation=5, groups=6, output_padding=None,
                              transposed=False)
_TRANSPOSED = ConvolutionOperands(stride=3, padding=4, dilation=7, groups=6, output_padding=5,
                                  transposed=True)
# Every convolution op the frontends emit: export's, torch.jit.trace's, TorchScript's.
CONVOLUTIONS: dict[str, ConvolutionOperands] = {
    "torch.aten.convolution": _EITHER,
    "torch.aten._convolution": _EITHER,
    "torch.aten.conv1d": _DIRECT,
    "torch.aten.conv2d": _DIRECT,
    "torch.aten.conv3d": _DIRECT,
    "torch.aten.conv_transpose1d": _TRANSPOSED,
    "torch.aten.conv_transpose2d.input": _TRANSPOSED,
    "torch.aten.conv_transpose3d.input": _TRANSPOSED,
}


def with_batch_of_one(name: str, operands: list[ir.Value], batched_types: list[ir.Type],
                      result_types: list[ir.Type],
                      attributes: dict[str, ir.Attribute] | None = None) -> list[ir.Value]:
    """`squeeze(name(unsqueeze(x, 0), *rest), 0)` per result, at the current insertion point.

    How an op with an unbatched form (`spatial_dims`) is handed to torch-mlir, which lowers
    only the batched one. `batched_types` are the unsqueezed input's type, then the batched
    op's result types; `result_types` those of the squeezed results.
    """
    zero = torch_int(0)
    batched_x = ir.Operation.create("torch.aten.unsqueeze", results=[batched_types[0]],
                                    operands=[operands[0], zero]).result
    op = ir.Operation.create(name, results=batched_types[1:], operands=[batched_x, *operands[1:]],
                             attributes=attributes or {})
    return [ir.Operation.create("torch.aten.squeeze.dim", results=[t], operands=[r, zero]).result
            for t, r in zip(result_types, op.results, strict=True)]


def torch_int(value: int) -> ir.Value:
    """A `torch.constant.int` holding `value`, at the current insertion point."""
    return ir.Operation.create("torch.constant.int", results=[ir.Type.parse("!torch.int")],
                               attributes={"value": ir.IntegerAttr.get(
                                   ir.IntegerType.get_signless(64), value)}).result


def torch_bool(value: bool) -> ir.Value:
    """A `torch.constant.bool` holding `value`, at the current insertion point."""
    return ir.Operation.create("torch.constant.bool", results=[ir.Type.parse("!torch.bool")],
                               attributes={"value": ir.BoolAttr.get(value)}).result


def torch_int_list(values: list[int]) -> ir.Value:
    """A `torch.prim.ListConstruct` of `torch.constant.int`s, at the current insertion point."""
    return ir.Operation.create("torch.prim.ListConstruct",
                               results=[ir.Type.parse("!torch.list<int>")],
                               operands=[torch_int(v) for v in values]).result
