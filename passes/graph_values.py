"""Helpers the graph passes share: compile-time values of parameter-only IR, new params, DCE.

A value is *known* when it is computed only from `kiln.param` ops (whose tensors the pass
context holds) and torch constants. Known values are evaluated with PyTorch itself: the op
`torch.aten.<name>.<overload>` is called as `torch.ops.aten.<name>.<overload>` on the known
operands, so no per-op table is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.dialects.torch_ops import torch_int  # noqa: F401  # the passes' shared helpers

_SCALAR_CONSTANTS = ("torch.constant.int", "torch.constant.float", "torch.constant.bool",
                     "torch.constant.str")
# Never evaluated at compile time: results that change per call or ops that write.
_IMPURE_WORDS = ("rand", "dropout", "bernoulli", "normal", "uniform", "empty", "copy_", "print")
_MLIR_TO_TORCH_DTYPE = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
                        "bf16": torch.bfloat16, "si64": torch.int64, "si32": torch.int32,
                        "si16": torch.int16, "si8": torch.int8, "ui8": torch.uint8,
                        "i1": torch.bool}
_PURE_DEAD = ("kiln.param", "torch.constant.", "torch.prim.ListConstruct", "torch.aten.")
_UNKNOWN = object()


def pure(op: ir.Operation) -> bool:
    """Whether `op` computes its results from its operands (and attributes) alone: a
    kiln.param, a torch constant or list, or a torch.aten op that is not in place, random or
    uninitialized."""
    if not op.name.startswith(_PURE_DEAD) or len(op.regions):
        return False
    short = op.name.removeprefix("torch.aten.")
    return not short.partition(".")[0].endswith("_") and not (
        op.name.startswith("torch.aten.") and any(w in short for w in _IMPURE_WORDS))


def owner_op(value: ir.Value) -> ir.Operation | None:
    """The operation defining `value`, or None for a block argument."""
    owner = value.owner
    return owner.operation if isinstance(owner, ir.OpView) else None


def users(value: ir.Value) -> list[ir.Operation]:
    """The operations that use `value` (one entry per use)."""
    return [use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
            for use in value.uses]


def vtensor_dtype(value_type: ir.Type) -> torch.dtype | None:
    """The torch dtype of a `!torch.vtensor<[...],dtype>` type, or None."""
    text = str(value_type)
    if not text.startswith("!torch.vtensor<"):
        return None
    return _MLIR_TO_TORCH_DTYPE.get(text.rstrip(">").rpartition(",")[2])


def tensor_type(tensor: torch.Tensor) -> ir.Type:
    """The `!torch.vtensor<[...],dtype>` type of a tensor (for a new `kiln.param`)."""
    element = next(name for name, dtype in _MLIR_TO_TORCH_DTYPE.items() if dtype == tensor.dtype)
    return ir.Type.parse(f"!torch.vtensor<[{','.join(map(str, tensor.shape))}],{element}>")


class KnownValues:
    """Compile-time values of IR values computed from parameters and constants, memoized."""

    def __init__(self, params: MutableMapping[str, torch.Tensor]) -> None:
        self.params = params
        self._memo: dict[ir.Value, object] = {}

    def get(self, value: ir.Value) -> object | None:
        """The value (tensor, Python scalar, list, or None for `torch.constant.none`)...

        ...or `_UNKNOWN` when `value` depends on a function argument or an unevaluable op.
        Use `tensor()` when only tensors matter.
        """
        if value not in self._memo:
            self._memo[value] = self._evaluate(value)
        return self._memo[value]

    def tensor(self, value: ir.Value) -> torch.Tensor | None:
        """The tensor `value` holds at compile time, or None if it is not known."""
        found = self.get(value)
        return found if isinstance(found, torch.Tensor) else None

    def known(self, value: ir.Value) -> bool:
        return self.get(value) is not _UNKNOWN

    def _evaluate(self, value: ir.Value) -> object:
        op = owner_op(value)
        if op is None or len(op.results) != 1:
            return _UNKNOWN
        if op.name == "kiln.param":
            return self.params.get(op.attributes["qualname"].value, _UNKNOWN)
        if op.name in _SCALAR_CONSTANTS:
            return op.attributes["value"].value
        if op.name == "torch.constant.none":
            return None
        arguments = [self.get(operand) for operand in op.operands]
        if any(a is _UNKNOWN for a in arguments):
            return _UNKNOWN
        if op.name == "torch.prim.ListConstruct":
            return arguments
        return _call_aten(op, arguments)


def _call_aten(op: ir.Operation, arguments: list[object]) -> object:
    """Run the torch op `op` in PyTorch on `arguments`; `_UNKNOWN` if that is not possible."""
    if not op.name.startswith("torch.aten.") or any(w in op.name for w in _IMPURE_WORDS):
        return _UNKNOWN
    name, _, overload = op.name.removeprefix("torch.aten.").partition(".")
    try:
        function = getattr(getattr(torch.ops.aten, name), overload or "default")
        with torch.no_grad():
            result = function(*arguments)
    except (AttributeError, RuntimeError, TypeError, ValueError, IndexError):
        return _UNKNOWN
    if isinstance(result, torch.Tensor) and not _matches_type(result, op.results[0].type):
        return _UNKNOWN
    return result


def _matches_type(tensor: torch.Tensor, value_type: ir.Type) -> bool:
    return (vtensor_shape(value_type) == list(tensor.shape)
            and vtensor_dtype(value_type) == tensor.dtype)


def new_param(params: MutableMapping[str, torch.Tensor], base: str, tensor: torch.Tensor,
              value_type: ir.Type, location: ir.Location) -> ir.Value:
    """A new `kiln.param` (at the current insertion point) holding `tensor` as `base#N`."""
    index = 0
    while (qualname := f"{base}#{index}") in params:
        index += 1
    params[qualname] = tensor.detach().contiguous()
    op = ir.Operation.create("kiln.param", results=[value_type], loc=location,
                             attributes={"qualname": ir.StringAttr.get(qualname)})
    return op.results[0]


def replace_with_param_add(op: ir.Operation, x: ir.Value, tensor: torch.Tensor,
                           params: MutableMapping[str, torch.Tensor],
                           named_after: ir.Value) -> None:
    """Replace `op`'s result by `x + tensor`, `tensor` a new param named after `named_after`'s."""
    with ir.InsertionPoint(op), op.location:
        param = new_param(params, source_param(named_after), tensor, tensor_type(tensor),
                          op.location)
        add = ir.Operation.create("torch.aten.add.Tensor", results=[op.results[0].type],
                                  operands=[x, param, torch_int(1)])
    op.results[0].replace_all_uses_with(add.results[0])


def source_param(value: ir.Value) -> str:
    """The qualname of the first `kiln.param` `value` is computed from (for naming)."""
    op = owner_op(value)
    if op is None:
        return "const"
    if op.name == "kiln.param":
        return op.attributes["qualname"].value.partition("#")[0]
    for operand in op.operands:
        if (name := source_param(operand)) != "const":
            return name
    return "const"


def erase_dead(ops: Iterable[ir.Operation]) -> int:
    """Erase, last first, the pure ops of `ops` (kiln.param, torch) left without uses."""
    erased = 0
    for op in reversed(list(ops)):
        in_place = op.name.endswith("_") or "_." in op.name  # torch.aten.add_.Tensor
        if op.name.startswith(_PURE_DEAD) and not in_place and all(
                not list(result.uses) for result in op.results):
            op.erase()
            erased += 1
    return erased


def function_ops(module: ir.Operation) -> list[ir.Operation]:
    """Every op in `module`, outer before inner, as a list safe to mutate the IR under."""
    return list(walk(module))


def prune_params(module: ir.Operation, params: MutableMapping[str, torch.Tensor]) -> None:
    """Forget the params passes made (`name#N`) that no `kiln.param` of `module` names now."""
    named = {op.attributes["qualname"].value for op in walk(module) if op.name == "kiln.param"}
    for qualname in [q for q in params if "#" in q and q not in named]:
        del params[qualname]
