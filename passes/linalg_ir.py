"""Reading linalg ops and writing tensor types, shared by the passes on linalg."""

from __future__ import annotations

from torch_mlir import ir


def static_shape(value_type: ir.Type) -> list[int] | None:
    """The shape of a statically shaped ranked tensor type, else None."""
    try:
        tensor = ir.RankedTensorType(value_type)
    except ValueError:
        return None
    return list(tensor.shape) if tensor.has_static_shape else None


def static_f32_shape(value_type: ir.Type) -> list[int] | None:
    """The shape of a statically shaped ranked f32 tensor type, else None."""
    shape = static_shape(value_type)
    if shape is None or str(ir.RankedTensorType(value_type).element_type) != "f32":
        return None
    return shape


def f32_tensor(*shape: int) -> str:
    """The text of the f32 tensor type of `shape`."""
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


def indexing_maps(op: ir.Operation) -> list[str]:
    """A linalg op's indexing maps, as text such as `(d0, d1) -> (d1)`."""
    return [str(ir.AffineMapAttr(a).value) for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
