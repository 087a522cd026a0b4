"""Shapes of ranked tensor types, for the passes on linalg."""

from __future__ import annotations

from torch_mlir import ir


def static_shape(value_type: ir.Type) -> list[int] | None:
    """The shape of a statically shaped ranked tensor type, else None."""
    try:
        tensor = ir.RankedTensorType(value_type)
    except ValueError:
        return None
    return list(tensor.shape) if tensor.has_static_shape else None
