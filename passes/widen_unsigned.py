"""`kiln-widen-unsigned`: uint8 arithmetic computed on int32, then truncated back to uint8.

torch-mlir maps `ui8` to MLIR's signless `i8` and then lowers several ops as if it were
signed: `x.sum()` of uint8 [200, 3, 255] returned -54 (eager: 458), and `x.max()` crashed
the process. Its conversions (`aten.to.dtype` from ui8) do extend without sign. So every op
that computes on a uint8 tensor gets its uint8 operands converted to int32 first and, where
its result is uint8, that result computed as int32 and converted back: uint8 arithmetic
is arithmetic modulo 256, which truncating an int32 result reproduces (for +, -, *, neg,
pow and the bitwise ops; comparisons, min/max, sorting and division of non-negative values
agree outright). Ops that only move data (views, slices, concatenation, indexing) and the
conversions themselves are left alone.
"""

from __future__ import annotations

import torch
from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.dialects.torch_ops import torch_bool, torch_int
from kiln.passes.graph_values import vtensor_dtype
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-widen-unsigned"
_INT32_CODE, _UINT8_CODE = 3, 0  # torch's ScalarType numbers, as `aten.to.dtype` takes them
# Ops whose result is made of the operand's elements unchanged, or a conversion: exact on
# uint8 as torch-mlir lowers them.
_DATA_MOVEMENT = frozenset(f"torch.aten.{name}" for name in (
    "to.dtype", "to.dtype_layout", "_to_copy", "to.device", "to.other", "type_as", "clone",
    "contiguous", "view", "reshape", "_reshape_alias", "_unsafe_view", "permute", "transpose.int",
    "t", "squeeze", "squeeze.dim", "squeeze.dims", "unsqueeze", "flatten.using_ints",
    "unflatten.int", "expand", "expand_as", "broadcast_to", "slice.Tensor", "select.int",
    "narrow", "cat", "stack", "index_select", "index.Tensor", "index.Tensor_hacked_twin",
    "gather", "embedding", "flip", "roll", "repeat", "tile", "detach", "alias", "lift_fresh_copy",
    "split.Tensor", "split_with_sizes", "unbind.int", "chunk", "eq.Tensor", "ne.Tensor",
    "numel", "size.int", "dim", "empty_like", "zeros_like",
    "ones_like", "new_zeros", "new_ones", "copy", "where.self",
))


@kiln_pass(PASS)
def widen_unsigned(module: ir.Operation, ctx: PassContext) -> None:
    """Compute each op on uint8 tensors in int32, converting its uint8 result back.

    Effect: uint8 programs give eager's values where torch-mlir's lowering reads uint8 as
    signed; programs without uint8 tensors are unchanged.
    """
    for op in list(walk(module)):
        if (not op.name.startswith("torch.aten.") or op.name in _DATA_MOVEMENT
                or not any(_is_uint8(v.type) for v in op.operands)):
            continue
        _widen(op)
        ctx.count(PASS, "ops widened")


def _is_uint8(value_type: ir.Type) -> bool:
    return vtensor_dtype(value_type) == torch.uint8


def _retyped(value_type: ir.Type, dtype: str) -> ir.Type:
    """`!torch.vtensor<[sizes],old>` with `dtype` for `old`."""
    text = str(value_type)
    return ir.Type.parse(text[: text.rindex(",")] + f",{dtype}>")


def _widen(op: ir.Operation) -> None:
    with ir.InsertionPoint(op), op.location:
        operands = [_convert(v, _INT32_CODE, "si32") if _is_uint8(v.type) else v
                    for v in op.operands]
        results = [_retyped(r.type, "si32") if _is_uint8(r.type) else r.type
                   for r in op.results]
        wide = ir.Operation.create(op.name, results=results, operands=operands,
                                   attributes={a.name: a.attr for a in op.attributes})
    with ir.InsertionPoint.after(wide), op.location:
        for old, new in zip(op.results, wide.results, strict=True):
            old.replace_all_uses_with(
                _convert(new, _UINT8_CODE, "ui8") if _is_uint8(old.type) else new)
    op.erase()


def _convert(value: ir.Value, code: int, dtype: str) -> ir.Value:
    target = _retyped(value.type, dtype)
    none = ir.Operation.create("torch.constant.none",
                               results=[ir.Type.parse("!torch.none")]).result
    return ir.Operation.create(
        "torch.aten.to.dtype", results=[target],
        operands=[value, torch_int(code), torch_bool(False), torch_bool(False), none]).result
