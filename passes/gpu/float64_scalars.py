"""`kiln-narrow-float64-scalars`: the float64 scalars of a float32 program made float32
where that changes no result, for targets without float64 (IREE's portable Vulkan profile).

torch-mlir keeps a Python float of an f32 model as an f64 constant that each use truncates
(LayerNorm's eps, an attention scale), and compares an f32 value with an f64 constant by
extending the value (`masked_fill(-inf)`'s test). Two rewrites, both exact:
- `truncf(constant c : f64) to f32` -> `constant f32(c)`: truncf rounds to nearest, as the
  f32 constant is rounded (MLIR's own folder folds only exactly representable values);
- `cmpf(extf(a : f32), constant c : f64)` -> `cmpf(a, constant f32(c))` when c is an f32
  value: extending `a` is exact, so the comparison is the same.
Anything else computed in f64 stays, for `kiln-check-element-types` to refuse.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from kiln.dialects.kiln import walk
from kiln.passes.graph_values import owner_op
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-narrow-float64-scalars"


@kiln_pass(PASS)
def narrow_float64_scalars(module: ir.Operation, ctx: PassContext) -> None:
    """Fold f64 constants truncated to f32 into f32 constants, and compare f32 values
    extended to f64 with f64 constants in f32, where either is exact."""
    for op in list(walk(module)):
        if op.name == "arith.truncf" and _f32(op.results[0].type):
            if (value := _f64_constant(op.operands[0])) is not None:
                _replace(op, _constant(float(np.float32(value)), op))
                ctx.count(PASS, "f64 constants truncated to f32 folded")
        elif op.name == "arith.cmpf" and _narrow_comparison(op):
            ctx.count(PASS, "f64 comparisons made f32")
    for op in reversed(list(walk(module))):   # the extensions and constants now unread
        if (op.name in ("arith.constant", "arith.extf") and str(op.results[0].type) == "f64"
                and not list(op.results[0].uses)):
            op.erase()


def _narrow_comparison(op: ir.Operation) -> bool:
    lhs, rhs = op.operands
    for extended, constant in ((lhs, rhs), (rhs, lhs)):
        extend = owner_op(extended)
        value = _f64_constant(constant)
        if (extend is not None and extend.name == "arith.extf" and value is not None
                and _f32(extend.operands[0].type) and float(np.float32(value)) == value):
            narrow = _constant(value, op)
            operands = ((extend.operands[0], narrow) if extended is lhs
                        else (narrow, extend.operands[0]))
            with ir.InsertionPoint(op), op.location:
                new = arith.CmpFOp(op.attributes["predicate"], *operands)
            _replace(op, new.operation)
            return True
    return False


def _f32(type_: ir.Type) -> bool:
    return str(type_) == "f32"


def _f64_constant(value: ir.Value) -> float | None:
    op = owner_op(value)
    if op is None or op.name != "arith.constant" or str(value.type) != "f64":
        return None
    return ir.FloatAttr(op.attributes["value"]).value


def _constant(value: float, before: ir.Operation) -> ir.Operation:
    with ir.InsertionPoint(before), before.location:
        return arith.ConstantOp(ir.F32Type.get(), ir.FloatAttr.get(ir.F32Type.get(), value)
                                ).operation


def _replace(op: ir.Operation, new: ir.Operation) -> None:
    op.results[0].replace_all_uses_with(new.results[0])
    op.erase()
