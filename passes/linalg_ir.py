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


def f32_shape(value_type: ir.Type) -> list[int | None] | None:
    """The shape of a ranked f32 tensor type, None for each dynamic dim; None if not one."""
    try:
        tensor = ir.RankedTensorType(value_type)
    except ValueError:
        return None
    if str(tensor.element_type) != "f32":
        return None
    return [None if tensor.is_dynamic_dim(i) else size for i, size in enumerate(tensor.shape)]


def f32_tensor(*shape: int | None) -> str:
    """The text of the f32 tensor type of `shape` (None: a dynamic dim)."""
    return f"tensor<{'x'.join('?' if d is None else str(d) for d in shape)}xf32>"


def map_text(rank: int, results) -> str:
    """The text of the affine map from `rank` dims to the dims `results`, as `indexing_maps`
    prints it: `map_text(3, [0, 2])` is `(d0, d1, d2) -> (d0, d2)`."""
    dims = ", ".join(f"d{i}" for i in range(rank))
    return f"({dims}) -> ({', '.join(f'd{i}' for i in results)})"


def indexing_maps(op: ir.Operation) -> list[str]:
    """A linalg op's indexing maps, as text such as `(d0, d1) -> (d1)`."""
    return [str(ir.AffineMapAttr(a).value) for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
