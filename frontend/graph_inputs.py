"""A Dynamo (or partition) graph's flat inputs seen as tensors only, for torch.export and IREE.

Under dynamic shapes Dynamo passes symbolic sizes (`s0: torch.SymInt`) as graph inputs next
to the tensors whose dims they are. Kiln executables take tensors only, so each size input
is recomputed from a tensor's shape inside the exported program (`TensorsOnly`), and at
call time the size arguments are dropped (`InputPlan.bind`). The dims whose fake sizes are
symbolic become `dynamic_dims`: one executable then serves every size.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

from kiln.errors import FrontendError

# sympy node class name -> the Python operator that computes it on ints or SymInts.
SYMPY_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "Add": operator.add,
    "Mul": operator.mul,
    "Pow": operator.pow,
    "FloorDiv": operator.floordiv,   # torch.utils._sympy.functions
    "PythonMod": operator.mod,
    "Mod": operator.mod,
}


@dataclass(frozen=True)
class InputPlan:
    """Which flat inputs are tensors, how each size input follows from their shapes."""

    tensor_positions: tuple[int, ...]
    sizes: dict[int, sympy.Expr]                  # flat position -> size expression
    symbols: dict[sympy.Symbol, tuple[int, int]]  # symbol -> (tensor index, dim)
    dynamic_dims: dict[int, list[int]]            # tensor index -> its symbolic dims

    @classmethod
    def of(cls, gm: torch.fx.GraphModule, meta_key: str) -> InputPlan:
        """The plan for `gm`'s placeholders, read from their fake values (`meta[meta_key]`)."""
        values = [node.meta.get(meta_key) for node in gm.graph.nodes if node.op == "placeholder"]
        tensors = tuple(i for i, v in enumerate(values) if isinstance(v, torch.Tensor))
        symbols, dynamic = {}, {}
        for index, position in enumerate(tensors):
            for dim, size in enumerate(values[position].shape):
                if isinstance(size, torch.SymInt) and not isinstance(size.node.expr, sympy.Integer):
                    dynamic.setdefault(index, []).append(dim)
                    if isinstance(size.node.expr, sympy.Symbol):
                        symbols.setdefault(size.node.expr, (index, dim))
        sizes = {i: _size_expression(i, v, symbols) for i, v in enumerate(values)
                 if i not in tensors}
        return cls(tensors, sizes, symbols, dynamic)

    def examples(self, flat: tuple) -> tuple[torch.Tensor, ...]:
        """The tensors among the flat example inputs."""
        return tuple(flat[i] for i in self.tensor_positions)

    def bind(self, compiled: Callable) -> Callable:
        """A function of the flat inputs that calls `compiled` with the tensors only."""
        positions = self.tensor_positions
        if positions == tuple(range(len(positions))) and not self.sizes:
            return compiled

        def call(*flat):
            return compiled(*(flat[i] for i in positions))

        return call

    def flat_inputs(self, tensors: tuple[torch.Tensor, ...]) -> list[object]:
        """The graph's flat inputs rebuilt from the tensors: sizes read from their shapes."""
        flat: list[object] = [None] * (len(tensors) + len(self.sizes))
        for index, position in enumerate(self.tensor_positions):
            flat[position] = tensors[index]
        dims = {symbol: tensors[i].shape[d] for symbol, (i, d) in self.symbols.items()}
        for position, expression in self.sizes.items():
            flat[position] = evaluate(expression, dims)
        return flat


class TensorsOnly(torch.nn.Module):
    """`gm` called with its tensor inputs only; size inputs are computed from their shapes."""

    def __init__(self, gm: torch.fx.GraphModule, plan: InputPlan) -> None:
        super().__init__()
        self.gm, self.plan = gm, plan

    def forward(self, *tensors: torch.Tensor):
        return self.gm(*self.plan.flat_inputs(tensors))


def evaluate(expression: sympy.Expr, dims: dict[sympy.Symbol, object]) -> object:
    """The value of a size `expression` with each symbol replaced by its (Sym)Int in `dims`."""
    if isinstance(expression, sympy.Integer):
        return int(expression)
    if isinstance(expression, sympy.Symbol):
        return dims[expression]
    combine = SYMPY_OPERATORS[type(expression).__name__]
    return functools.reduce(combine, (evaluate(arg, dims) for arg in expression.args))


def _size_expression(position: int, value: object, symbols: dict) -> sympy.Expr:
    if not isinstance(value, torch.SymInt):
        raise FrontendError(f"graph input {position} is a {type(value).__name__}; Kiln takes "
                            "tensors and the symbolic sizes of their dims")
    expression = value.node.expr
    unknown = expression.free_symbols - set(symbols)
    if unknown or not _computable(expression):
        raise FrontendError(f"graph input {position} is the size {expression}, which no tensor "
                            "input's shape gives; mark that value static (dynamic=False)")
    return expression


def _computable(expression: sympy.Expr) -> bool:
    if isinstance(expression, (sympy.Integer, sympy.Symbol)):
        return True
    return type(expression).__name__ in SYMPY_OPERATORS and all(
        _computable(arg) for arg in expression.args)
