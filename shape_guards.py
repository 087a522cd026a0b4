"""The input shapes a dynamic-shape program is valid for, checked on every call.

A program compiled with dynamic dims is not valid for every size of them. The user may
bound a dim (`dynamic_dims={0: {1: (1, 512)}}`), and torch.export narrows more: it
specializes the model where the example's sizes decided a branch or a broadcast (a ResNet
exported at 32x32 pixels pools its last stage to 1x1 and broadcasts on that, so it holds for
images of up to 32 pixels only). Called outside those shapes, the executable would compute
wrong values. So the program's `ShapeGuards` travel with it (artifacts included) and every
call outside them is an InputError naming the dim and the condition, as eager's own shape
errors would name them.

Conditions are torch.export's shape guards printed as Python expressions over names
`in{input}_{dim}`. An artifact is untrusted input, so they are never handed to `eval` as
read: each is parsed, and only integer arithmetic (+ - * // %), comparisons, and/or/not, the
names of the program's dynamic dims and small integer constants are accepted; anything else
is rejected when the signature is read.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kiln.errors import InputError

MAX_CONDITION_CHARS = 4096
MAX_CONSTANT = 1 << 62
_NAME = re.compile(r"in(\d+)_(\d+)")
_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                  ast.UAdd, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod,
                  ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
                  ast.Name, ast.Load, ast.Constant)


@dataclass(frozen=True)
class DimBound:
    """`low <= input[dim] <= high` (high None: no upper bound)."""

    input: int
    dim: int
    low: int
    high: int | None

    def describe(self) -> str:
        return f"{self.low}..{'' if self.high is None else self.high}"


@dataclass(frozen=True)
class ShapeGuards:
    """Bounds of dynamic dims, and conditions between them, every call must satisfy."""

    bounds: tuple[DimBound, ...] = ()
    conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for condition in self.conditions:
            _validated(condition)
        code = " and ".join(f"({c})" for c in self.conditions) or "True"
        # Derived once, not per call: the expression and the dims its names stand for.
        object.__setattr__(self, "_code", compile(code, "<shape guard>", "eval"))
        object.__setattr__(self, "_places", _names(self.conditions))

    def __bool__(self) -> bool:
        return bool(self.bounds or self.conditions)

    def check(self, args: Sequence[object]) -> None:
        """InputError unless the tensors among `args` have shapes inside these guards."""
        for bound in self.bounds:
            size = args[bound.input].shape[bound.dim]  # type: ignore[attr-defined]
            if size < bound.low or (bound.high is not None and size > bound.high):
                raise InputError(
                    f"input {bound.input} dimension {bound.dim} is {size}, outside the sizes "
                    f"this program was compiled for ({bound.describe()}: the dynamic_dims "
                    "bounds, or a limit of the model's own, such as its position table)")
        if self.conditions and not self.holds(args):
            raise InputError(self._failure(args))

    def holds(self, args: Sequence[object]) -> bool:
        sizes = self._sizes(args)
        try:  # safe: every node of the expression was checked against _ALLOWED_NODES
            return bool(eval(self._code, {"__builtins__": {}}, sizes))
        except ZeroDivisionError:
            return False

    def _sizes(self, args: Sequence[object]) -> dict[str, int]:
        return {name: int(args[i].shape[d])  # type: ignore[attr-defined]
                for name, (i, d) in self._places.items()}

    def _failure(self, args: Sequence[object]) -> str:
        failed = next(c for c in self.conditions
                      if not ShapeGuards(conditions=(c,)).holds(args))
        shapes = ", ".join(f"input {i} {tuple(args[i].shape)}"  # type: ignore[attr-defined]
                           for i in sorted({i for i, _ in _names([failed]).values()}))
        return (f"{shapes}: outside the shapes this program was compiled for, which need "
                f"{readable(failed)}. torch.export specialized the model to the example "
                "inputs' sizes there (a broadcast or branch on a size); compile with example "
                "inputs whose sizes are typical of the calls, or with this shape")

    def to_json(self) -> dict:
        return {"bounds": [[b.input, b.dim, b.low, b.high] for b in self.bounds],
                "conditions": list(self.conditions)}

    @classmethod
    def from_json(cls, data: dict) -> ShapeGuards:
        bounds = tuple(DimBound(int(i), int(d), int(lo), None if hi is None else int(hi))
                       for i, d, lo, hi in data.get("bounds", []))
        return cls(bounds, tuple(str(c) for c in data.get("conditions", [])))

    def within(self, num_inputs: int, ranks: Sequence[int | None]) -> None:
        """ValueError unless every dim named exists among inputs of these `ranks` (None:
        not a tensor)."""
        places = [(b.input, b.dim) for b in self.bounds] + list(self._places.values())
        for index, dim in places:
            if not (0 <= index < num_inputs and ranks[index] is not None
                    and 0 <= dim < ranks[index]):  # type: ignore[operator]
                raise ValueError(f"a shape guard names dimension {dim} of input {index}, "
                                 "which the signature does not have")


def dim_name(index: int, dim: int) -> str:
    """The name a condition uses for dimension `dim` of input `index`."""
    return f"in{index}_{dim}"


def readable(condition: str) -> str:
    """A condition with `input0.shape[2]` for `in0_2`."""
    return _NAME.sub(lambda m: f"input{m[1]}.shape[{m[2]}]", condition)


def _names(conditions: Sequence[str]) -> dict[str, tuple[int, int]]:
    return {m[0]: (int(m[1]), int(m[2])) for c in conditions for m in _NAME.finditer(c)}


def _validated(condition: str) -> None:
    """ValueError unless `condition` is integer arithmetic over dim names only."""
    if len(str(condition)) > MAX_CONDITION_CHARS:
        raise ValueError(f"a shape guard is longer than {MAX_CONDITION_CHARS} characters")
    try:
        tree = ast.parse(condition, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as e:
        raise ValueError(f"a shape guard does not parse: {condition[:80]!r}") from e
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(  # noqa: TRY004  # a bad value read from JSON, not a bad type
                f"a shape guard holds {type(node).__name__}, which is not integer "
                f"arithmetic: {condition[:80]!r}")
        if isinstance(node, ast.Name) and not _NAME.fullmatch(node.id):
            raise ValueError(f"a shape guard names '{node.id}', which is not a dimension")
        if isinstance(node, ast.Constant) and not (
                type(node.value) in (int, bool) and abs(node.value) < MAX_CONSTANT):
            raise ValueError(f"a shape guard holds the constant {node.value!r}")
