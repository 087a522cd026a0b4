"""How long the longest loop of a program's code can be: the largest reduction it computes.

Mesa's software Vulkan driver (lavapipe) ends every shader loop after 65535 iterations
(`LP_MAX_TGSI_LOOP_ITERATIONS`), and IREE's portable Vulkan code reduces a row in one
thread's loop: a sum over 100000 ones gave 65535, silently. The runtime refuses such code on
a software Vulkan device (`runtime/module.py`), knowing from this the length of the longest
reduction each linalg op computes: the product of its reduction loops, those of its
indexing maps' dimensions absent from its result's map; for convolutions and pooling (no
maps) their filter or window's size, for `linalg.reduce` the reduced dims, for tm_tensor's
sort and scan the whole operand (bounds from above: refusing too much is only a fallback).
"""

from __future__ import annotations

import math

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.linalg_ir import static_shape

UNKNOWN = None   # a reduction over a dynamic dimension: no bound known here


def longest_reduction(module: ir.Operation) -> int | None:
    """The most elements one reduction of `module` runs over (0: none; None: unknown)."""
    longest = 0
    for op in walk(module):
        length = _reduction_length(op)
        if length is UNKNOWN:
            return UNKNOWN
        longest = max(longest, length)
    return longest


def _reduction_length(op: ir.Operation) -> int | None:
    name = op.name
    if name.startswith("linalg.") and "indexing_maps" in op.attributes:
        return _by_maps(op)
    if name.startswith(("linalg.conv", "linalg.depthwise_conv", "linalg.pooling")):
        return _size(op.operands[1].type)            # the filter or the window
    if name == "linalg.reduce":
        shape = static_shape(op.operands[0].type)
        if shape is None:
            return UNKNOWN
        return math.prod(shape[d] for d in ir.DenseI64ArrayAttr(op.attributes["dimensions"]))
    if name.startswith("tm_tensor.") and len(op.operands):
        return _size(op.operands[0].type)
    return 0


def _by_maps(op: ir.Operation) -> int | None:
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    kept = {_dim(e) for e in maps[-1].results}
    extents: dict[int, int | None] = {}
    for map_, operand in zip(maps, op.operands):
        try:
            tensor = ir.RankedTensorType(operand.type)
        except ValueError:
            continue       # a scalar operand
        for index, expr in enumerate(map_.results):
            if (dim := _dim(expr)) is not None and dim not in kept:
                size = None if tensor.is_dynamic_dim(index) else tensor.shape[index]
                extents[dim] = size if extents.get(dim) is None else extents[dim]
    if any(size is None for size in extents.values()):
        return UNKNOWN
    return math.prod(extents.values()) if extents else 0


def _dim(expr: ir.AffineExpr) -> int | None:
    try:
        return ir.AffineDimExpr(expr).position
    except ValueError:
        return None


def _size(type_: ir.Type) -> int | None:
    shape = static_shape(type_)
    if shape is None:
        return UNKNOWN
    return math.prod(shape)
