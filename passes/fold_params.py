"""`kiln-fold-params`: evaluate parameter-only computations at compile time."""

from __future__ import annotations

from torch_mlir import ir

from kiln.passes.graph_values import (KnownValues, erase_dead, function_ops, new_param, prune_params,
                                      source_param, users)
from kiln.passes.registry import PassContext, kiln_pass

# op -> the scalar operand value that makes it the identity on its tensor operand.
IDENTITY_SCALARS: dict[str, float] = {
    "torch.aten.mul.Scalar": 1,  # export's addmm decomposition multiplies by 1
    "torch.aten.div.Scalar": 1,
}


@kiln_pass("kiln-fold-params")
def fold_params(module: ir.Operation, ctx: PassContext) -> None:
    """Evaluate parameter-only computations at compile time; each result becomes a kiln.param.

    A torch op whose operands are all known (kiln.param values from the pass context, torch
    constants, lists of them) is run in PyTorch (`torch.ops.aten.<name>.<overload>`); only
    the values that a not-folded op uses become new params (`fc1.weight#0`, ...), so the
    weights stay out of the IR. Ops whose result is larger than their tensor inputs
    (expand, broadcasts) are not folded: that would trade a cheap op for more weight bytes.
    It also drops `x * 1` and `x / 1`, which export's addmm decomposition leaves behind.
    Assumes value semantics (after kiln-import-cleanup) and eval mode (params are constant).
    Effect: an MLP's weight transposes and bias scalings leave the program; measured in
    benchmarks/ablation.py together with the other graph passes.
    """
    known = KnownValues(ctx.params)  # type: ignore[arg-type]  # kiln.compile's dict
    ops = function_ops(module)
    foldable = {op for op in ops if _foldable(op, known)}
    for op in ops:
        if op in foldable and any(user not in foldable for user in users(op.results[0])):
            _materialize(op, known, ctx)
        elif _drop_identity(op, known):
            ctx.count("kiln-fold-params", "identity ops dropped")
    erase_dead(function_ops(module))
    prune_params(module, known.params)


def _foldable(op: ir.Operation, known: KnownValues) -> bool:
    if not op.name.startswith("torch.aten.") or len(op.results) != 1:
        return False
    if (result := known.tensor(op.results[0])) is None:
        return False
    inputs = [t for operand in op.operands if (t := known.tensor(operand)) is not None]
    return bool(inputs) and result.numel() <= sum(t.numel() for t in inputs)


def _materialize(op: ir.Operation, known: KnownValues, ctx: PassContext) -> None:
    result = op.results[0]
    tensor = known.tensor(result)
    assert tensor is not None
    with ir.InsertionPoint(op):
        param = new_param(known.params, source_param(result), tensor, result.type, op.location)
    result.replace_all_uses_with(param)
    ctx.count("kiln-fold-params", "params computed at compile time")


def _drop_identity(op: ir.Operation, known: KnownValues) -> bool:
    if (identity := IDENTITY_SCALARS.get(op.name)) is None:
        return False
    tensor, scalar = op.operands
    if isinstance(known.get(scalar), bool) or known.get(scalar) != identity:
        return False
    if tensor.type != op.results[0].type:
        return False
    op.results[0].replace_all_uses_with(tensor)
    return True
