"""`kiln-collapse-dynamic-views`: views of tensors with several dynamic dims, made safe.

torch.export decomposes `linear` on a `[B, S, K]` input into `view(x, [B*S, K])` with
`B = size(x, 0)`, `S = size(x, 1)`. torch-mlir lowers a view whose source has more than
one dynamic dimension wrongly: it casts `x` to `?x1xK` first (wrong results, or IREE's
runtime shape assert). Two rewrites avoid its inference, both lowered correctly for any
sizes: a view that only merges runs of neighbouring dims (sizes built from `aten.size.int`
of the viewed tensor) becomes one `torch.prims.collapse` per run (`tensor.collapse_shape`);
any other such view first collapses its source to one dimension, then views that
(`tensor.reshape` with the computed sizes). Views with at most one dynamic source dim are
left alone: torch-mlir gets those right.
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.passes.graph_values import erase_dead, function_ops, owner_op, torch_int
from kiln.passes.registry import PassContext, kiln_pass

_VIEWS = ("torch.aten.view", "torch.aten._unsafe_view", "torch.aten.reshape")


@kiln_pass("kiln-collapse-dynamic-views")
def collapse_dynamic_views(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite views of tensors with 2+ dynamic dims into prims.collapse (+ a 1-D view).

    Assumes value semantics (views are reshapes). Effect: correctness only (dynamic batch
    *and* sequence through nn.Linear and attention); both forms lower to reshapes that
    move no data, so no dispatch is added.
    """
    for op in [op for op in walk(module) if op.name in _VIEWS]:
        shape = vtensor_shape(op.operands[0].type)
        if shape is None or shape.count(-1) < 2:
            continue
        with ir.InsertionPoint(op), op.location:
            if (groups := _merged_groups(op)) is not None:
                result = _collapse(op.operands[0], groups, op.results[0].type)
            else:
                result = _view_of_flat(op)
        op.results[0].replace_all_uses_with(result)
        op.erase()
        ctx.count("kiln-collapse-dynamic-views", "views rewritten")
    erase_dead(function_ops(module))


def _view_of_flat(view: ir.Operation) -> ir.Value:
    """view(collapse(x, 0, rank - 1), sizes): torch-mlir lowers a 1-D source's view right."""
    source = view.operands[0]
    rank = len(vtensor_shape(source.type) or [])
    element = str(source.type).rpartition(",")[2]
    flat = ir.Operation.create(
        "torch.prims.collapse", results=[ir.Type.parse(f"!torch.vtensor<[?],{element}")],
        operands=[source, torch_int(0), torch_int(rank - 1)]).result
    return ir.Operation.create(view.name, results=[view.results[0].type],
                               operands=[flat, *list(view.operands)[1:]]).result


def _merged_groups(view: ir.Operation) -> list[tuple[int, int]] | None:
    """The (first, last) source dims each output dim merges, if the view is a dynamic merge."""
    source = view.operands[0]
    shape = vtensor_shape(source.type)
    sizes = owner_op(view.operands[1])
    if shape is None or sizes is None or sizes.name != "torch.prim.ListConstruct":
        return None
    groups, cursor = [], 0
    for entry in sizes.operands:
        if (width := _width(entry, source, shape, cursor)) is None:
            return None
        groups.append((cursor, cursor + width - 1))
        cursor += width
    if cursor != len(shape):
        return None
    return groups


def _width(entry: ir.Value, source: ir.Value, shape: list[int], cursor: int) -> int | None:
    """How many source dims from `cursor` on the size `entry` covers, or None if unknown."""
    if (constant := _int_constant(entry)) is not None:
        product, width = 1, 0
        while cursor + width < len(shape) and shape[cursor + width] > 0 and product < constant:
            product *= shape[cursor + width]
            width += 1
        return width if width and product == constant else None
    dims = _size_factors(entry, source)
    if dims is None or dims != list(range(cursor, cursor + len(dims))) or not dims:
        return None
    return len(dims)


def _size_factors(value: ir.Value, source: ir.Value) -> list[int] | None:
    """[d0, d1, ...] if `value` is size(source, d0) * size(source, d1) * ..., else None."""
    op = owner_op(value)
    if op is None:
        return None
    if op.name == "torch.aten.size.int" and op.operands[0] == source:
        dim = _int_constant(op.operands[1])
        return None if dim is None else [dim]
    if op.name == "torch.aten.mul.int":
        left, right = (_size_factors(v, source) for v in op.operands)
        return None if left is None or right is None else left + right
    return None


def _int_constant(value: ir.Value) -> int | None:
    op = owner_op(value)
    if op is None or op.name != "torch.constant.int":
        return None
    return ir.IntegerAttr(op.attributes["value"]).value


def _collapse(source: ir.Value, groups: list[tuple[int, int]], result_type: ir.Type
              ) -> ir.Value:
    """One prims.collapse per merged run, last run first so earlier indices stay valid."""
    shape = vtensor_shape(source.type)
    element = str(source.type).rpartition(",")[2]
    runs = [(first, last) for first, last in groups if last > first]
    value = source
    for index, (first, last) in enumerate(reversed(runs)):
        merged = shape[first:last + 1]
        shape = [*shape[:first], -1 if -1 in merged else _product(merged), *shape[last + 1:]]
        dims = ",".join("?" if d < 0 else str(d) for d in shape)
        step_type = (result_type if index == len(runs) - 1
                     else ir.Type.parse(f"!torch.vtensor<[{dims}],{element}"))
        value = ir.Operation.create("torch.prims.collapse", results=[step_type],
                                    operands=[value, torch_int(first), torch_int(last)]).result
    return value


def _product(sizes: list[int]) -> int:
    product = 1
    for size in sizes:
        product *= size
    return product


