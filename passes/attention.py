"""`kiln-raise-attention` and `kiln-lower-attention`: hand-written attention as one op."""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.passes.graph_values import (
    KnownValues,
    erase_dead,
    function_ops,
    owner_op,
    torch_int,
    users,
)
from kiln.passes.registry import PassContext, kiln_pass

SOFTMAX_OPS = ("torch.aten._softmax", "torch.aten.softmax.int")
_SCALES = {"torch.aten.mul.Scalar": False, "torch.aten.div.Scalar": True}  # op -> divides
_VIEWS = ("torch.aten.view", "torch.aten.reshape", "torch.aten._unsafe_view")


@dataclass
class Attention:
    """The parts of softmax(q @ kᵀ * scale + mask) @ v found in the IR."""

    query: ir.Value
    key: ir.Value
    value: ir.Value
    scale: float
    mask: ir.Value | None


@kiln_pass("kiln-raise-attention")
def raise_attention(module: ir.Operation, ctx: PassContext) -> None:
    """Raise softmax(q @ kᵀ * scale [+ mask]) @ v written by hand to `kiln.attention`.

    Matches `matmul` (or export's expand/view/bmm/view form of it), a transpose of the
    last two key dims, an optional `* c` or `/ c` by a constant, an optional float mask
    added with alpha 1, and a softmax over the last dim whose only user is the final
    matmul. Without a scaling op the scale is 1. Batch dims must agree exactly.
    Effect: `kiln-lower-attention` hands IREE one `scaled_dot_product_attention`, which
    IREE compiles to a single `iree_linalg_ext.attention` dispatch (benchmarks/ablation.py).
    Measured on the CPU that is no faster at small sizes and slower at BERT-base size
    (236 ms vs 130 ms decomposed), so it runs only in `kiln-graph-all`.
    """
    known = KnownValues(ctx.params)  # type: ignore[arg-type]
    for op in function_ops(module):
        if (found := _match(op, known)) is None:
            continue
        operands = [found.query, found.key, found.value]
        with ir.InsertionPoint(op), op.location:
            raised = ir.Operation.create(
                "kiln.attention", results=[op.results[0].type],
                operands=operands + ([found.mask] if found.mask is not None else []),
                attributes={"scale": ir.FloatAttr.get(ir.F64Type.get(), found.scale)})
        op.results[0].replace_all_uses_with(raised.results[0])
        ctx.count("kiln-raise-attention", "attentions raised")
    erase_dead(function_ops(module))


def _match(op: ir.Operation, known: KnownValues) -> Attention | None:
    if len(op.results) != 1 or (pv := _matmul_operands(op.results[0])) is None:
        return None
    probabilities, value = pv
    softmax = owner_op(probabilities)
    if softmax is None or softmax.name not in SOFTMAX_OPS or len(users(probabilities)) != 1:
        return None
    rank = len(vtensor_shape(probabilities.type) or [])
    if known.get(softmax.operands[1]) not in (-1, rank - 1):
        return None
    scores, mask = _strip_mask(softmax.operands[0], known)
    scores, scale = _strip_scale(scores, known)
    if scale is None or (qk := _matmul_operands(scores)) is None:
        return None
    if (key := _untransposed(qk[1])) is None or not _same_batch(qk[0], key, value):
        return None
    return Attention(qk[0], key, value, scale, mask)


def _strip_mask(scores: ir.Value, known: KnownValues) -> tuple[ir.Value, ir.Value | None]:
    op = owner_op(scores)
    if op is None or op.name != "torch.aten.add.Tensor" or len(users(scores)) != 1:
        return scores, None
    if known.get(op.operands[2]) != 1:
        return scores, None
    inner, mask = op.operands[0], op.operands[1]
    mask_shape = vtensor_shape(mask.type)
    if mask_shape is None or str(mask.type).rpartition(",")[2] != str(scores.type).rpartition(",")[2]:
        return scores, None
    if len(mask_shape) > len(vtensor_shape(scores.type) or []) or inner.type != scores.type:
        return scores, None
    return inner, mask


def _strip_scale(scores: ir.Value, known: KnownValues) -> tuple[ir.Value, float | None]:
    op = owner_op(scores)
    if op is None or op.name not in _SCALES:
        return scores, 1.0
    factor = known.get(op.operands[1])
    if len(users(scores)) != 1 or isinstance(factor, bool) or not isinstance(factor, (int, float)):
        return scores, None
    if factor == 0:
        return scores, None
    return op.operands[0], 1.0 / factor if _SCALES[op.name] else float(factor)


def _matmul_operands(result: ir.Value) -> tuple[ir.Value, ir.Value] | None:
    """(a, b) if `result` is a @ b of equal-rank operands: matmul, bmm or export's views."""
    op = owner_op(result)
    if op is None:
        return None
    if op.name in ("torch.aten.matmul", "torch.aten.bmm"):
        a, b = op.operands
        return (a, b) if _ranks(a, b, result) else None
    bmm = owner_op(op.operands[0]) if op.name in _VIEWS else None
    if bmm is None or bmm.name != "torch.aten.bmm" or len(users(bmm.results[0])) != 1:
        return None
    a, b = (_before_collapse(v) for v in bmm.operands)
    if not _ranks(a, b, result):
        return None
    shapes = [vtensor_shape(v.type) for v in (a, b, result)]
    if not shapes[0][:-2] == shapes[1][:-2] == shapes[2][:-2]:  # type: ignore[index]
        return None
    return a, b


def _before_collapse(value: ir.Value) -> ir.Value:
    """x for view(expand(x)) / view(x) where the expand changes nothing; else `value`."""
    view = owner_op(value)
    if view is None or view.name not in _VIEWS:
        return value
    source = view.operands[0]
    expand = owner_op(source)
    if expand is not None and expand.name == "torch.aten.expand" and (
            expand.operands[0].type == source.type):
        source = expand.operands[0]
    collapsed, original = vtensor_shape(value.type), vtensor_shape(source.type)
    if collapsed is None or original is None or collapsed[1:] != original[-2:]:
        return value
    return source


def _ranks(a: ir.Value, b: ir.Value, result: ir.Value) -> bool:
    shapes = [vtensor_shape(v.type) for v in (a, b, result)]
    return all(s is not None and len(s) >= 2 and -1 not in s and len(s) == len(shapes[2])
               for s in shapes)  # type: ignore[arg-type]


def _untransposed(value: ir.Value) -> ir.Value | None:
    """x if `value` swaps the last two dims of x (transpose.int or permute); else None."""
    op = owner_op(value)
    rank = len(vtensor_shape(value.type) or [])
    if op is None or rank < 2:
        return None
    known = KnownValues({})
    if op.name == "torch.aten.transpose.int":
        dims = {d % rank for d in (known.get(op.operands[1]), known.get(op.operands[2]))
                if isinstance(d, int)}
        return op.operands[0] if dims == {rank - 2, rank - 1} else None
    if op.name == "torch.aten.permute":
        swapped = [*range(rank - 2), rank - 1, rank - 2]
        dims = known.get(op.operands[1])
        if isinstance(dims, list) and [d % rank for d in dims] == swapped:
            return op.operands[0]
    return None


def _same_batch(query: ir.Value, key: ir.Value, value: ir.Value) -> bool:
    q, k, v = (vtensor_shape(x.type) for x in (query, key, value))
    return (q is not None and k is not None and v is not None and len(q) == len(k) == len(v)
            and q[:-2] == k[:-2] == v[:-2] and q[-1] == k[-1] and k[-2] == v[-2])


@kiln_pass("kiln-lower-attention")
def lower_attention(module: ir.Operation, ctx: PassContext) -> None:
    """Lower `kiln.attention` to `torch.aten.scaled_dot_product_attention`.

    The mask gets leading unit dims up to the query's rank (torch-mlir's lowering needs
    equal ranks). torch-mlir turns the op into `tm_tensor.attention`, which IREE imports
    as `iree_linalg_ext.attention`. Effect: none on its own; it is the lowering half of
    kiln-raise-attention.
    """
    for op in [op for op in walk(module) if op.name == "kiln.attention"]:
        with ir.InsertionPoint(op), op.location:
            query, key, value, *mask = op.operands
            rank = len(vtensor_shape(query.type) or [])
            mask_value = _unsqueezed(mask[0], rank) if mask else _constant("none", None)
            sdpa = ir.Operation.create(
                "torch.aten.scaled_dot_product_attention", results=[op.results[0].type],
                operands=[query, key, value, mask_value, _constant("float", 0.0),
                          _constant("bool", False),
                          _constant("float", op.attributes["scale"].value),
                          _constant("bool", False)])
        op.results[0].replace_all_uses_with(sdpa.results[0])
        op.erase()
        ctx.count("kiln-lower-attention", "attentions lowered")


def _constant(kind: str, value: float | bool | None) -> ir.Value:
    """A `torch.constant.<kind>` at the current insertion point."""
    attributes = {}
    if kind == "float":
        attributes["value"] = ir.FloatAttr.get(ir.F64Type.get(), value)
    elif kind == "bool":
        attributes["value"] = ir.BoolAttr.get(bool(value))
    return ir.Operation.create(f"torch.constant.{kind}", attributes=attributes,
                               results=[ir.Type.parse(f"!torch.{kind}")]).results[0]


def _unsqueezed(mask: ir.Value, rank: int) -> ir.Value:
    """`mask` with leading unit dims added until it has `rank` dims."""
    shape = vtensor_shape(mask.type) or []
    element = str(mask.type).rpartition(",")[2]
    zero = torch_int(0)
    while len(shape) < rank:
        shape = [1, *shape]
        result_type = ir.Type.parse(f"!torch.vtensor<[{','.join(map(str, shape))}],{element}")
        mask = ir.Operation.create("torch.aten.unsqueeze", results=[result_type],
                                   operands=[mask, zero]).results[0]
    return mask
