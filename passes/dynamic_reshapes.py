"""`kiln-expand-dynamic-reshapes`: a reshape that splits one dynamic dim in two, as the
`tensor.expand_shape` it is, moved below the elementwise ops that follow it.

After a linear on [B, S, K] (computed on [B*S, K]), torch.export views the result back as
[B, S, N]. With B and S dynamic, torch-mlir lowers that view as `tensor.reshape` by a shape
tensor (`tensor.from_elements B, S, N`): an opaque op IREE fuses nothing across, so every
epilogue of a dynamic-shape transformer (bias, GELU, residual) became a dispatch of its own
and `kiln-pack-matmuls` could not carry the feed-forward's epilogue on its tiles. The same
reshape written as `tensor.expand_shape [[..], [d, d+1], [..]] output_shape [...]` is a view
IREE propagates through elementwise ops. Kiln's own linalg passes do not: so the
elementwise generics after such an expand (GELU on [B, S, 3072], until the next linear
collapses it back) run on the unexpanded [B*S, 3072] instead, and the expand follows them.

Measured (benchmarks/dynamic_shapes.py): see README, Dynamic shapes.
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.graph_values import owner_op
from kiln.passes.linalg_ir import indexing_maps, map_text
from kiln.passes.registry import PassContext, kiln_pass
from kiln.passes.splice import inline_function, splice_function

PASS = "kiln-expand-dynamic-reshapes"


@kiln_pass(PASS)
def expand_dynamic_reshapes(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite `tensor.reshape`s that split one dynamic dim into two as expand_shapes.

    Effect: the same values; IREE fuses the elementwise ops on either side of the reshape.
    """
    for op in list(walk(module)):
        if op.name == "tensor.reshape" and (dim := _split_dim(op)) is not None:
            _expand(op, dim)
            ctx.count(PASS, "reshapes written as expand_shape")
    for op in list(walk(module)):   # program order: an expand moved below one generic
        if op.name == "linalg.generic" and _sink_expand(op):   # meets the next one later
            ctx.count(PASS, "elementwise ops run before an expand_shape")


def _split_dim(op: ir.Operation) -> int | None:
    """d, where `op` reshapes a tensor whose one dynamic dim is d into the same dims with d
    split in two, by a shape that `tensor.from_elements` builds; else None."""
    source, result = (ir.RankedTensorType(v.type) for v in (op.operands[0], op.results[0]))
    shape = owner_op(op.operands[1])
    dynamic = [i for i in range(source.rank) if source.is_dynamic_dim(i)]
    if (len(dynamic) != 1 or result.rank != source.rank + 1 or shape is None
            or shape.name != "tensor.from_elements"):
        return None
    dim = dynamic[0]
    before, after = list(source.shape[:dim]), list(source.shape[dim + 1:])
    result_shape = [None if result.is_dynamic_dim(i) else s for i, s in enumerate(result.shape)]
    if result_shape[:dim] != before or result_shape[dim + 2:] != after:
        return None
    return dim


def _expand(op: ir.Operation, dim: int) -> None:
    source, result = op.operands[0], op.results[0]
    result_type = ir.RankedTensorType(result.type)
    sizes = list(owner_op(op.operands[1]).operands)
    element = str(sizes[0].type)   # the shape's element type: i64 or index
    groups = [[i] for i in range(dim)] + [[dim, dim + 1]] + [
        [i + 1] for i in range(dim + 1, result_type.rank - 1)]
    lines, output_shape = [], []
    for i in range(result_type.rank):
        if result_type.is_dynamic_dim(i) and element == "index":
            output_shape.append(f"%s{i}")
        elif result_type.is_dynamic_dim(i):
            lines.append(f"%d{i} = arith.index_cast %s{i} : {element} to index")
            output_shape.append(f"%d{i}")
        else:
            output_shape.append(str(result_type.shape[i]))
    arguments = ", ".join([f"%x: {source.type}", *(f"%s{i}: {element}" for i in
                                                   range(len(sizes)))])
    body = "".join(f"    {line}\n" for line in lines)
    splice_function(op, (
        f"func.func private @expand({arguments}) -> {result.type} {{\n{body}"
        f"    %e = tensor.expand_shape %x {groups} output_shape [{', '.join(output_shape)}] "
        f": {source.type} into {result.type}\n"
        f"    return %e : {result.type}\n}}"), [source, *sizes])


def _sink_expand(op: ir.Operation) -> bool:
    """Run the all-parallel, one-result generic `op` on the source of the expand_shape (of one
    pair of dims, one of them dynamic: static programs keep the IR their tuning measured)
    that its identity-mapped inputs all are, and expand its result instead.
    Its other inputs may read only dims outside the pair (a bias along the last dim); its
    accumulator must be unread. The collapse that often follows then folds away."""
    maps = indexing_maps(op)
    block = op.regions[0].blocks[0]
    rank = ir.RankedTensorType(op.results[0].type).rank
    identity = map_text(rank, range(rank))
    if (len(op.results) != 1 or len(maps) != len(op.operands) or maps[-1] != identity
            or list(block.arguments[-1].uses)
            or any("parallel" not in str(t) for t in ir.ArrayAttr(op.attributes["iterator_types"]))
            or any(inner.name == "linalg.index" for inner in block.operations)):
        return False
    *inputs, init = list(op.operands)
    expands = [owner_op(v) for v, m in zip(inputs, maps) if m == identity]
    if not expands or any(e is None or e.name != "tensor.expand_shape" for e in expands):
        return False
    first = expands[0]
    groups = str(first.attributes["reassociation"])
    pair = _pair(first)
    expanded = ir.RankedTensorType(first.results[0].type)
    if pair is None or not any(expanded.is_dynamic_dim(i) for i in (pair, pair + 1)) or any(str(e.attributes["reassociation"]) != groups
                           or str(e.attributes["static_output_shape"])
                           != str(first.attributes["static_output_shape"])
                           or list(e.operands)[1:] != list(first.operands)[1:] for e in expands):
        return False
    new_maps = [_collapsed_map(m, rank, pair) for m in maps[:-1]]
    if None in new_maps:
        return False
    flat = first.operands[0]
    flat_type = ir.RankedTensorType(flat.type)
    element = ir.RankedTensorType(op.results[0].type).element_type
    with op.location:
        out_type = ir.RankedTensorType.get(flat_type.shape, element)
    dims = [i for i in range(flat_type.rank) if flat_type.is_dynamic_dim(i)]
    (empty,) = inline_function(
        f"func.func private @empty(%x: {flat.type}) -> {out_type} {{\n"
        + "".join(f"    %c{i} = arith.constant {i} : index\n"
                  f"    %d{i} = tensor.dim %x, %c{i} : {flat.type}\n" for i in dims)
        + f"    %e = tensor.empty({', '.join(f'%d{i}' for i in dims)}) : {out_type}\n"
        f"    return %e : {out_type}\n}}", [flat], op)
    for i, (value, map_) in enumerate(zip(inputs, maps)):
        if map_ == identity:
            op.operands[i] = owner_op(value).operands[0]
    op.operands[len(inputs)] = empty
    op.attributes["indexing_maps"] = ir.Attribute.parse(
        "[" + ", ".join(f"affine_map<{m}>" for m in [*new_maps, map_text(rank - 1, range(rank - 1))])
        + "]")
    op.attributes["iterator_types"] = ir.Attribute.parse(
        "[" + ", ".join(["#linalg.iterator_type<parallel>"] * (rank - 1)) + "]")
    full_type = op.results[0].type
    result = op.results[0]
    result.set_type(out_type)
    sizes = list(first.operands)[1:]
    static = [int(v) for v in ir.DenseI64ArrayAttr(first.attributes["static_output_shape"])]
    it = iter(range(len(sizes)))
    shape = [f"%s{next(it)}" if ir.ShapedType.is_dynamic_size(v) else str(v) for v in static]
    (expanded,) = inline_function(
        f"func.func private @expand(%v: {out_type}"
        + "".join(f", %s{j}: index" for j in range(len(sizes))) + f") -> {full_type} {{\n"
        f"    %e = tensor.expand_shape %v {groups} output_shape [{', '.join(shape)}] "
        f": {out_type} into {full_type}\n    return %e : {full_type}\n}}",
        [result, *sizes], op, after=True)
    result.replace_all_uses_except(expanded, owner_op(expanded))
    if (dead := owner_op(init)) is not None and not list(dead.results[0].uses):
        dead.erase()
    return True


def _pair(expand: ir.Operation) -> int | None:
    """g, where the expand's groups are singletons but one pair [g, g + 1]."""
    groups = [[int(i) for i in g] for g in ir.ArrayAttr(expand.attributes["reassociation"])]
    pairs = [g[0] for g in groups if len(g) == 2]
    if len(pairs) != 1 or any(len(g) > 2 for g in groups):
        return None
    return pairs[0]



def _collapsed_map(map_: str, rank: int, pair: int) -> str | None:
    """`map_` over the iteration space with dims `pair` and `pair + 1` merged: the identity
    stays the identity; a map reading neither of them is renumbered; others: None."""
    if map_ == map_text(rank, range(rank)):
        return map_text(rank - 1, range(rank - 1))
    head, _, tail = map_.partition(" -> ")
    if head != f"({', '.join(f'd{i}' for i in range(rank))})":
        return None
    results = [r.strip() for r in tail.strip("()").split(",") if r.strip()]
    if any(not r.startswith("d") or not r[1:].isdigit() or int(r[1:]) in (pair, pair + 1)
           for r in results):
        return None
    return map_text(rank - 1, [int(r[1:]) - (int(r[1:]) > pair) for r in results])
