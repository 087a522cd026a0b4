"""Dynamic dims: what the user asks for, what torch.export is told, and what it made of them.

`dynamic_dims` names the input dims that may vary per call, as a list per input
(`{0: [0, 1]}`) or with bounds (`{0: {0: (1, 8), 1: (8, 512)}}`, a bound None where there is
none, or a `torch.export.Dim`). `parse` turns either form into {input: {dim: (low, high)}}.
torch.export is given `Dim.AUTO` with those bounds, and an example of at least two along
each dynamic dim (it fixes dims of size 0 or 1); the shape guards it recorded become the
signature's `ShapeGuards`, checked on every call.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy
import torch
from torch.export import ExportedProgram
from torch.utils._sympy.printers import PythonPrinter
from torch.utils._sympy.value_ranges import ValueRanges

from kiln.errors import FrontendError, InputError
from kiln.shape_guards import DimBound, ShapeGuards, dim_name

Range = tuple[int | None, int | None]          # (low, high); None: no bound
DynamicDims = Mapping[int, Mapping[int, Range]]  # input index -> dim -> range
EXAMPLE = "dynamic_dims must map input indices to lists of dimensions or to {dimension: " \
          "(low, high)}, e.g. {0: [0]} for a dynamic batch or {0: {1: (1, 512)}} for " \
          "sequences of up to 512"


def parse(dynamic_dims: object) -> dict[int, dict[int, Range]] | None:
    """`dynamic_dims` in its canonical form; FrontendError naming what is wrong."""
    if dynamic_dims is None:
        return None
    if not isinstance(dynamic_dims, Mapping):
        raise FrontendError(f"{EXAMPLE}, got {dynamic_dims!r}")
    parsed: dict[int, dict[int, Range]] = {}
    for index, dims in dynamic_dims.items():
        if not _is_int(index):
            raise FrontendError(f"{EXAMPLE}, got the key {index!r}")
        if isinstance(dims, (list, tuple)) and all(_is_int(d) for d in dims):
            parsed[index] = {dim: (None, None) for dim in dims}
        elif isinstance(dims, Mapping) and all(_is_int(d) for d in dims):
            parsed[index] = {dim: _range(index, dim, bound) for dim, bound in dims.items()}
        else:
            raise FrontendError(f"{EXAMPLE}, got {dims!r} for input {index}")
    return parsed


def _range(index: int, dim: int, bound: object) -> Range:
    if bound is None:
        return None, None
    if hasattr(bound, "min") and hasattr(bound, "max"):  # torch.export.Dim
        low, high = bound.min, bound.max
        high = None if high is None or high >= torch.utils._sympy.numbers.int_oo else high
    elif isinstance(bound, (list, tuple)) and len(bound) == 2:
        low, high = bound
    else:
        raise FrontendError(f"dynamic_dims gives input {index} dimension {dim} the bound "
                            f"{bound!r}; give (low, high), None or a torch.export.Dim")
    if not all(v is None or (_is_int(v) and v >= 0) for v in (low, high)) or (
            low is not None and high is not None and low > high):
        raise FrontendError(f"dynamic_dims gives input {index} dimension {dim} the bounds "
                            f"{bound!r}; they must be sizes with low <= high")
    return (None if low is None else int(low)), (None if high is None else int(high))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def export_shapes(example_inputs: tuple, dynamic_dims: DynamicDims | None) -> tuple | None:
    """torch.export's `dynamic_shapes` for these dims: Dim.AUTO with the user's bounds.

    Dim.AUTO, not named Dims: export infers which dims must be equal (a batch shared by two
    inputs) instead of failing; the importer checks that each one stayed dynamic."""
    if not dynamic_dims:
        return None
    for index in dynamic_dims:
        if not 0 <= index < len(example_inputs):
            raise FrontendError(f"dynamic_dims names input {index}, but there are only "
                                f"{len(example_inputs)} inputs")
    return tuple({dim: torch.export.Dim.AUTO(min=low, max=high)
                  for dim, (low, high) in dynamic_dims.get(index, {}).items()} or None
                 for index in range(len(example_inputs)))


def tracing_examples(example_inputs: tuple, dynamic_dims: DynamicDims | None) -> tuple:
    """The examples export traces with: each dynamic dim at least 2 long (export fixes
    sizes 0 and 1, and a batch-1 example is what a user has); other values as given."""
    widened = list(example_inputs)
    for index, dims in (dynamic_dims or {}).items():
        x = widened[index] if 0 <= index < len(widened) else None
        if not isinstance(x, torch.Tensor):
            continue
        for dim, (low, high) in dims.items():
            if not 0 <= dim < x.dim():
                raise FrontendError(f"dynamic_dims names dimension {dim} of input {index}, "
                                    f"which has rank {x.dim()}")
            size = x.shape[dim]
            if (low is not None and size < low) or (high is not None and size > high):
                raise FrontendError(
                    f"example input {index} has size {size} in dimension {dim}, outside the "
                    f"bounds ({low}, {high}) dynamic_dims gives it")
            if size < 2:
                if high is not None and high < 2:
                    raise FrontendError(f"dynamic_dims bounds input {index} dimension {dim} "
                                        f"to ({low}, {high}): a dim of one size is not dynamic")
                x = _grown(x, dim, 2)
        widened[index] = x
    return tuple(widened)


def _grown(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    if x.shape[dim] == 0:
        shape = list(x.shape)
        shape[dim] = size
        return x.new_zeros(shape)
    return torch.cat([x] * size, dim)


def shape_guards(program: ExportedProgram, dynamic_dims: DynamicDims | None = None
                 ) -> ShapeGuards:
    """The sizes `program` is valid for: bounds of its input symbols (narrowed to the user's
    own, `dynamic_dims`) and torch.export's shape guards between them, over the user inputs'
    dims; FrontendError where a guard is not integer arithmetic over input dims (it could not
    be checked on a call)."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    names: dict[sympy.Symbol, sympy.Symbol] = {}   # export's symbol -> in{i}_{d}
    places: dict[sympy.Symbol, tuple[int, int]] = {}   # export's symbol -> (input, dim)
    tied: list[tuple[sympy.Symbol, sympy.Expr]] = []   # a dim equal to an expression
    shape_env = None
    for index, name in enumerate(program.graph_signature.user_inputs):
        fake = placeholders[name].meta.get("val")
        if not isinstance(fake, torch.Tensor):
            continue
        for dim, size in enumerate(fake.shape):
            if not isinstance(size, torch.SymInt):
                continue
            shape_env = size.node.shape_env
            expr, own = size.node.expr, sympy.Symbol(dim_name(index, dim), integer=True)
            if isinstance(expr, sympy.Symbol) and expr not in names:
                names[expr], places[expr] = own, (index, dim)
            elif not isinstance(expr, sympy.Integer):
                tied.append((own, expr))
    user = parse(dynamic_dims) or {}
    bounds = tuple(_bound(*places[s], program.range_constraints.get(s), user) for s in names)
    conditions = [sympy.Eq(own, expr) for own, expr in tied if expr.free_symbols <= set(names)]
    if shape_env is not None:
        conditions += [g.expr for g in shape_env.guards if g.expr.free_symbols
                       and g.expr.free_symbols <= set(names)]
    printer = PythonPrinter()
    texts = []
    for condition in conditions:
        text = printer.doprint(condition.xreplace(names))
        if text not in texts and text != "True":
            texts.append(text)
    try:
        return ShapeGuards(tuple(b for b in bounds if b is not None), tuple(texts))
    except ValueError as e:
        raise FrontendError(f"torch.export made the program depend on a shape condition Kiln "
                            f"cannot check on a call ({e}); make that dim static") from None


def _bound(index: int, dim: int, vr: ValueRanges | None,
           user: Mapping[int, Mapping[int, Range]]) -> DimBound | None:
    """The range of one input dim. Export's lower bound of 2 is its assumption that a dynamic
    size is not 0 or 1, not a guard: its own `module()` takes size 1, and so does Kiln, unless
    the user's bounds say otherwise."""
    if vr is None:
        return None
    low = int(vr.lower) if isinstance(vr.lower, sympy.Integer) else 0
    high = int(vr.upper) if isinstance(vr.upper, sympy.Integer) else None
    low = 1 if low == 2 else low
    user_low, user_high = user.get(index, {}).get(dim, (None, None))
    low = max(low, user_low or 0)
    high = user_high if high is None else min(high, user_high or high)
    if low <= 1 and high is None:
        return None     # every size (0 is eager's concern: no tensor op fails on it here)
    return DimBound(index, dim, low, high)


def user_guards(dynamic_dims: DynamicDims | None, example_inputs: tuple) -> ShapeGuards:
    """The bounds `dynamic_dims` gives, for a frontend without guards of its own
    (TorchScript); FrontendError where an example lies outside them."""
    bounds = []
    for index, ranges in (parse(dynamic_dims) or {}).items():
        rank = example_inputs[index].dim()
        for dim, (low, high) in ranges.items():
            if (low or 0) > 1 or high is not None:
                bounds.append(DimBound(index, dim % rank, low or 0, high))
    guards = ShapeGuards(tuple(bounds))
    try:
        guards.check(example_inputs)
    except InputError as e:
        raise FrontendError(f"the example inputs lie outside the dynamic_dims bounds: {e}"
                            ) from None
    return guards
