"""`kiln-fuse-linears`: sibling matmuls with parameter weights become one matmul + slices."""

from __future__ import annotations

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.passes.graph_values import (
    KnownValues,
    erase_dead,
    function_ops,
    new_param,
    owner_op,
    prune_params,
    source_param,
    torch_int,
)
from kiln.passes.registry import PassContext, kiln_pass

# op -> (axis of the weight holding the output features, operand index of the bias or None)
FUSIBLE: dict[str, tuple[int, int | None]] = {
    "torch.aten.mm": (1, None),        # export's linear: x @ weightᵀ, weight [K, N]
    "torch.aten.linear": (0, 2),       # TorchScript's linear, weight [N, K]
}
PASS = "kiln-fuse-linears"


@kiln_pass(PASS)
def fuse_linears(module: ir.Operation, ctx: PassContext) -> None:
    """Fuse sibling matmuls reading one input with parameter weights (Q, K, V) into one.

    Two or more `mm(x, W_i)` (or `linear(x, W_i, b_i)`) with the same `x`, known 2-D
    weights of one dtype and (for linear) all or no known biases become one matmul with
    the weights concatenated along the output features (a new kiln.param) followed by a
    `slice.Tensor` per original. Assumes eval mode (weights are constants).
    Effect (measured, CPU): no gain. Dispatches 30 -> 31 on hand-written attention (the
    slices become copies); BERT-base 115 ms without it vs 124 ms with it. So it runs only
    in `kiln-graph-all`, not in the default `kiln-graph`.
    """
    known = KnownValues(ctx.params)  # type: ignore[arg-type]
    groups: dict[tuple, list[ir.Operation]] = {}
    for op in function_ops(module):
        if (key := _group_key(op, known)) is not None:
            groups.setdefault(key, []).append(op)
    for group in groups.values():
        if len(group) > 1:
            _fuse(group, known)
            ctx.count(PASS, "matmuls fused", len(group))
    erase_dead(function_ops(module))
    prune_params(module, known.params)


def _group_key(op: ir.Operation, known: KnownValues) -> tuple | None:
    """What siblings share: op, input (identical views of one value count as one), dtype."""
    if op.name not in FUSIBLE:
        return None
    weight = known.tensor(op.operands[1])
    if weight is None or weight.dim() != 2 or (bias := _bias_kind(op, known)) == "unknown":
        return None
    x = op.operands[0]
    view = owner_op(x)
    if view is not None and view.name in ("torch.aten.view", "torch.aten.reshape"):
        x = (view.operands[0], str(x.type))  # CSE leaves torch views alone
    return op.name, x, weight.dtype, bias


def _bias_kind(op: ir.Operation, known: KnownValues) -> str:
    if (index := FUSIBLE[op.name][1]) is None or (bias := known.get(op.operands[index])) is None:
        return "none"
    return "tensor" if isinstance(bias, torch.Tensor) else "unknown"


def _fuse(group: list[ir.Operation], known: KnownValues) -> None:
    axis, bias_index = FUSIBLE[group[0].name]
    weights = [known.tensor(op.operands[1]) for op in group]
    sizes = [w.shape[axis] for w in weights]  # type: ignore[union-attr]
    first = group[0]
    result_shape = vtensor_shape(first.results[0].type) or []
    element = str(first.results[0].type).rpartition(",")[2]
    fused_shape = [*result_shape[:-1], sum(sizes)]
    operands = list(first.operands)
    with ir.InsertionPoint(first), first.location:
        weight = torch.cat(weights, dim=axis)  # type: ignore[arg-type]
        operands[1] = new_param(known.params, source_param(first.operands[1]), weight,
                                _vtensor_type(list(weight.shape), element), first.location)
        if bias_index is not None and known.tensor(first.operands[bias_index]) is not None:
            bias = torch.cat([known.tensor(op.operands[bias_index]) for op in group])
            operands[bias_index] = new_param(known.params, source_param(first.operands[2]),
                                             bias, _vtensor_type([sum(sizes)], element),
                                             first.location)
        fused = ir.Operation.create(first.name, operands=operands,
                                    results=[_vtensor_type(fused_shape, element)]).results[0]
        start = 0
        for op, size in zip(group, sizes):
            _replace_with_slice(op, fused, len(fused_shape) - 1, start, start + size)
            start += size


def _replace_with_slice(op: ir.Operation, fused: ir.Value, dim: int, start: int,
                        end: int) -> None:
    ints = [torch_int(v) for v in (dim, start, end, 1)]
    piece = ir.Operation.create("torch.aten.slice.Tensor", results=[op.results[0].type],
                                operands=[fused, *ints]).results[0]
    op.results[0].replace_all_uses_with(piece)


def _vtensor_type(shape: list[int], element: str) -> ir.Type:
    return ir.Type.parse(f"!torch.vtensor<[{','.join(map(str, shape))}],{element}")
