"""A Dynamo (or partition) graph's flat inputs seen as tensors only, for torch.export and IREE.

Under dynamic shapes Dynamo passes symbolic sizes (`s0: torch.SymInt`) as graph inputs next
to the tensors whose dims they are. Kiln executables take tensors only, so each size input
is recomputed from a tensor's shape inside the exported program (`TensorsOnly`), and at
call time the size arguments are dropped (`InputPlan.bind`). The dims whose fake sizes are
symbolic become `dynamic_dims`: one executable then serves every size.

Dynamo also passes the Python floats a model reads (`LayerNorm.eps`, `Dropout.p`, an
attention `scaling`, a float argument) as 0-d float64 tensors that the graph turns back into
`SymFloat`s with `.item()`: under `dynamic=True` every float is such an input. torch.export
of the graph sees each `.item()` as a data-dependent value it cannot guard on (`zuf3` for
`layer_norm(..., eps)`). `fix_python_scalars` reads each at its value instead, with a Dynamo
guard on it (a new value recompiles, as Inductor does for floats it cannot keep symbolic),
and the plan passes those inputs to no executable.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch
from torch.fx.experimental.symbolic_shapes import guard_scalar

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
    unused: tuple[int, ...] = ()                  # scalar inputs the graph does not read

    @classmethod
    def of(cls, gm: torch.fx.GraphModule, meta_key: str) -> InputPlan:
        """The plan for `gm`'s placeholders, read from their fake values (`meta[meta_key]`)."""
        nodes = [node for node in gm.graph.nodes if node.op == "placeholder"]
        values = [node.meta.get(meta_key) for node in nodes]
        unused = tuple(i for i, (node, v) in enumerate(zip(nodes, values, strict=True))
                       if not node.users and _scalar(v))
        tensors = tuple(i for i, v in enumerate(values)
                        if isinstance(v, torch.Tensor) and i not in unused)
        symbols, dynamic = {}, {}
        for index, position in enumerate(tensors):
            for dim, size in enumerate(values[position].shape):
                if isinstance(size, torch.SymInt) and not isinstance(size.node.expr, sympy.Integer):
                    dynamic.setdefault(index, []).append(dim)
                    if isinstance(size.node.expr, sympy.Symbol):
                        symbols.setdefault(size.node.expr, (index, dim))
        sizes = {i: _size_expression(i, v, symbols) for i, v in enumerate(values)
                 if i not in tensors and i not in unused}
        return cls(tensors, sizes, symbols, dynamic, unused)

    def examples(self, flat: tuple) -> tuple[torch.Tensor, ...]:
        """The tensors among the flat example inputs."""
        return tuple(flat[i] for i in self.tensor_positions)

    def bind(self, compiled: Callable) -> Callable:
        """A function of the flat inputs that calls `compiled` with the tensors only."""
        positions = self.tensor_positions
        if positions == tuple(range(len(positions))) and not self.sizes and not self.unused:
            return compiled

        def call(*flat):
            return compiled(*(flat[i] for i in positions))

        return call

    def flat_inputs(self, tensors: tuple[torch.Tensor, ...]) -> list[object]:
        """The graph's flat inputs rebuilt from the tensors: sizes read from their shapes."""
        flat: list[object] = [None] * (len(tensors) + len(self.sizes) + len(self.unused))
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


def fix_python_scalars(gm: torch.fx.GraphModule) -> None:
    """Each Python float Dynamo passes `gm` as a 0-d tensor read with `.item()` becomes the
    constant it is now, under a guard in Dynamo's shape env (Dynamo checks it on every call
    and compiles again where it differs); the input is then left unread."""
    changed = False
    for node in [n for n in gm.graph.nodes if n.op == "placeholder"]:
        memo = _python_scalar(node)
        if memo is None:
            continue
        value = guard_scalar(memo)   # the guard: no-op where Dynamo already specialized it
        for user in list(node.users):
            user.replace_all_uses_with(value)
            gm.graph.erase_node(user)
        changed = True
    if changed:
        gm.recompile()


def _python_scalar(node: torch.fx.Node) -> torch.SymFloat | torch.SymInt | None:
    """The symbolic value of a Dynamo graph input that stands for a Python number (Dynamo's
    `GraphArg.pass_arg_as_tensor`, read only with `.item()`), else None."""
    graph_arg, value = node.meta.get("grapharg"), node.meta.get("example_value")
    memo = getattr(value, "item_memo", None)
    if (not getattr(graph_arg, "pass_arg_as_tensor", False) or memo is None or not node.users
            or not all(_is_item(user) for user in node.users)):
        return None
    return memo if memo.node.has_hint() else None


def _is_item(node: torch.fx.Node) -> bool:
    return (node.op == "call_method" and node.target == "item") or (
        node.op == "call_function" and node.target is torch.ops.aten.item.default)


def _scalar(value: object) -> bool:
    return not isinstance(value, torch.Tensor) or value.dim() == 0


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
