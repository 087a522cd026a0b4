"""What a compiled function takes and returns: tensor specs and the output tree structure.

A leaf module every layer may use: the frontends fill it in, the runtime checks calls
against it and stores it in artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils import _pytree as pytree

from kiln.errors import InputError

DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
    torch.uint8: "u8", torch.bool: "i1",
}
NAME_DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
assert len(NAME_DTYPES) == len(DTYPE_NAMES), "two dtypes share a short name"


@dataclass(frozen=True)
class TensorSpec:
    """The shape (None where dynamic) and dtype one tensor input must have."""

    shape: tuple[int | None, ...]
    dtype: torch.dtype

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape) or "scalar"
        return f"{dims}:{DTYPE_NAMES.get(self.dtype, str(self.dtype))}"

    def check(self, index: int, value: object) -> None:
        """Raise InputError naming input `index` if `value` does not fit this spec."""
        if not isinstance(value, torch.Tensor):
            raise InputError(f"input {index} must be a tensor of {self.describe()}, "
                             f"got {type(value).__name__}")
        if value.dim() != len(self.shape):
            raise InputError(f"input {index} must have rank {len(self.shape)} "
                             f"({self.describe()}), got rank {value.dim()} {tuple(value.shape)}")
        for axis, (want, got) in enumerate(zip(self.shape, value.shape)):
            if want is not None and want != got:
                raise InputError(f"input {index} must have shape {self.describe()}, got "
                                 f"{tuple(value.shape)} (dimension {axis} is {got}, not {want})")
        if value.dtype != self.dtype:
            raise InputError(f"input {index} must have dtype {self.dtype}, got {value.dtype}")


@dataclass(frozen=True)
class Signature:
    """Inputs as a flat list of tensor specs; outputs as a pytree spec over flat results."""

    inputs: tuple[TensorSpec, ...]
    out_spec: pytree.TreeSpec

    def check(self, args: tuple[object, ...]) -> None:
        if len(args) != len(self.inputs):
            wanted = ", ".join(s.describe() for s in self.inputs)
            raise InputError(f"expected {len(self.inputs)} inputs ({wanted}), got {len(args)}")
        for index, (spec, value) in enumerate(zip(self.inputs, args)):
            spec.check(index, value)

    def to_json(self) -> dict:
        return {
            "inputs": [{"shape": list(s.shape), "dtype": DTYPE_NAMES[s.dtype]} for s in self.inputs],
            "out_spec": pytree.treespec_dumps(self.out_spec),
        }

    @classmethod
    def from_json(cls, data: dict) -> Signature:
        inputs = tuple(TensorSpec(tuple(s["shape"]), NAME_DTYPES[s["dtype"]]) for s in data["inputs"])
        return cls(inputs, pytree.treespec_loads(data["out_spec"]))
