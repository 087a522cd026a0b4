"""What a compiled function takes and returns: tensor specs and the output tree structure.

A leaf module every layer may use: the frontends fill it in, the runtime checks calls
against it and stores it in artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils import _pytree as pytree

from kiln.errors import InputError
from kiln.shape_guards import ShapeGuards

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
        if value.layout != torch.strided or value.device.type == "meta":
            raise InputError(f"input {index} is a {value.layout} tensor on {value.device}: a "
                             "compiled module takes dense tensors with data (call .to_dense() "
                             "or pass a real tensor)")
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
class ScalarSpec:
    """A non-tensor argument (TorchScript's int, float, bool, str, None or list) the program
    was specialized to: every call must pass this same value."""

    value: object

    def describe(self) -> str:
        return repr(self.value)

    def check(self, index: int, value: object) -> None:
        if type(value) is not type(self.value) or value != self.value:
            raise InputError(
                f"input {index} was compiled for the value {self.value!r}, got {value!r}: Kiln "
                "specializes a TorchScript program's non-tensor arguments to their example "
                "values; compile again with this value in the example inputs")


InputSpec = TensorSpec | ScalarSpec


@dataclass(frozen=True)
class Signature:
    """Inputs as a flat list of specs (tensors, and scalars the program was specialized to);
    outputs as a pytree spec over flat results."""

    inputs: tuple[InputSpec, ...]
    out_spec: pytree.TreeSpec
    # (leaf index, "int" | "float" | "bool"): results the program returns as 0-d tensors that
    # the caller gets as Python scalars (a TorchScript function returning a loop counter).
    scalar_outputs: tuple[tuple[int, str], ...] = ()
    # Positions among the program's tensor arguments that it may write in place (see
    # passes/written_inputs.py): the runtime passes those as copies. None: not known (an
    # artifact of an older Kiln), so every input is copied.
    written_inputs: tuple[int, ...] | None = None
    # The dtype of each flat result, where the program's types say it (None: unknown). IREE
    # has no unsigned types: a uint8 result comes back as int8 and is viewed as this.
    output_dtypes: tuple[torch.dtype | None, ...] | None = None
    # Tensor inputs the model updates in place (`x.add_(1)`): the program returns their new
    # values as its first results, which the runtime copies into the caller's tensors.
    mutated_inputs: tuple[int, ...] = ()
    # The sizes of the dynamic dims the program is valid for (shape_guards.py).
    shape_guards: ShapeGuards = field(default_factory=ShapeGuards)

    def check(self, args: tuple[object, ...]) -> None:
        if len(args) != len(self.inputs):
            wanted = ", ".join(s.describe() for s in self.inputs)
            raise InputError(f"expected {len(self.inputs)} inputs ({wanted}), got {len(args)}")
        for index, (spec, value) in enumerate(zip(self.inputs, args)):
            spec.check(index, value)
        if self.shape_guards:
            self.shape_guards.check(args)

    @property
    def dynamic(self) -> bool:
        """Whether some input dimension may vary between calls."""
        return any(d is None for s in self.inputs if isinstance(s, TensorSpec) for d in s.shape)

    def tensors(self, args: tuple[object, ...]) -> tuple[torch.Tensor, ...]:
        """The arguments the compiled program takes: those of the tensor inputs."""
        return tuple(a for a, s in zip(args, self.inputs) if isinstance(s, TensorSpec))

    @property
    def num_results(self) -> int:
        """How many results the program returns: input updates, then the flat outputs."""
        return len(self.mutated_inputs) + self.out_spec.num_leaves

    def outputs(self, flat: list[torch.Tensor], tensors: tuple[torch.Tensor, ...] = ()
                ) -> object:
        """The caller's output structure from the program's results, after writing the
        input updates among them into `tensors` (the call's tensor arguments)."""
        dtypes = self.output_dtypes if self.output_dtypes is not None else [None] * len(flat)
        flat = [_as_dtype(t, d) for t, d in zip(flat, dtypes, strict=True)]
        for position, value in zip(self.mutated_inputs, flat):
            tensors[position].copy_(value)
        flat = flat[len(self.mutated_inputs):]
        for index, kind in self.scalar_outputs:
            flat[index] = _PYTHON_SCALARS[kind](flat[index].item())
        return pytree.tree_unflatten(flat, self.out_spec)

    def to_json(self) -> dict:
        return {
            "inputs": [{"scalar": s.value} if isinstance(s, ScalarSpec) else
                       {"shape": list(s.shape), "dtype": DTYPE_NAMES[s.dtype]}
                       for s in self.inputs],
            "out_spec": pytree.treespec_dumps(_tuples_for_structseqs(self.out_spec)),
            "structseqs": _structseq_names(self.out_spec),
            "scalar_outputs": [list(pair) for pair in self.scalar_outputs],
            "written_inputs": (None if self.written_inputs is None
                               else list(self.written_inputs)),
            "output_dtypes": (None if self.output_dtypes is None else
                              [DTYPE_NAMES.get(d) for d in self.output_dtypes]),
            "mutated_inputs": list(self.mutated_inputs),
            "shape_guards": self.shape_guards.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Signature:
        inputs = tuple(ScalarSpec(s["scalar"]) if "scalar" in s else
                       TensorSpec(tuple(s["shape"]), NAME_DTYPES[s["dtype"]])
                       for s in data["inputs"])
        scalars = tuple((int(i), str(k)) for i, k in data.get("scalar_outputs", []))
        written = data.get("written_inputs")
        dtypes = data.get("output_dtypes")
        out_spec = _with_structseqs(pytree.treespec_loads(data["out_spec"]),
                                    list(data.get("structseqs", [])))
        guards = ShapeGuards.from_json(data.get("shape_guards") or {})
        guards.within(len(inputs), [len(s.shape) if isinstance(s, TensorSpec) else None
                                    for s in inputs])
        return cls(inputs, out_spec, scalars,
                   None if written is None else tuple(int(i) for i in written),
                   None if dtypes is None else tuple(NAME_DTYPES.get(d) for d in dtypes),
                   tuple(int(i) for i in data.get("mutated_inputs", [])), guards)


_PYTHON_SCALARS = {"int": int, "float": float, "bool": bool}


# torch.return_types (`torch.sort(x)`'s `values, indices`) are pytree nodes without a
# serialization name: they are saved as tuples, with their names beside the spec (in
# pre-order), and only names of torch.return_types are ever read back.
def _tuples_for_structseqs(spec: pytree.TreeSpec) -> pytree.TreeSpec:
    children = [_tuples_for_structseqs(c) for c in spec.children()]
    if spec.is_leaf():
        return spec
    if pytree.is_structseq_class(spec.type):
        return pytree.TreeSpec(tuple, None, children)
    return pytree.TreeSpec(spec.type, spec.context, children)


def _structseq_names(spec: pytree.TreeSpec) -> list[str | None]:
    if spec.is_leaf():
        return []
    own = spec.type.__name__ if pytree.is_structseq_class(spec.type) else None
    return [own] + [n for c in spec.children() for n in _structseq_names(c)]


def _with_structseqs(spec: pytree.TreeSpec, names: list[str | None]) -> pytree.TreeSpec:
    if spec.is_leaf() or not names:
        return spec
    name = names.pop(0)
    children = [_with_structseqs(c, names) for c in spec.children()]
    if name is None:
        return pytree.TreeSpec(spec.type, spec.context, children)
    kind = getattr(torch.return_types, str(name), None)
    if kind is None or not pytree.is_structseq_class(kind) or spec.type is not tuple:
        raise ValueError(f"'{name}' is not a torch.return_types result type")
    return pytree.TreeSpec(kind, None, children)


def _as_dtype(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`tensor` seen as `dtype` where the program returned the same bits under a signless
    type (uint8 as int8)."""
    if dtype is None or tensor.dtype == dtype or tensor.element_size() != dtype.itemsize:
        return tensor
    return tensor.view(dtype)
