"""`kiln-lower-control-flow`: `kiln.if` / `kiln.loop` -> `torch.prim.If` / `torch.prim.Loop`.

Why torch.prim and not scf directly: the two pairs have the same operands, regions and
yields (kiln's ops were modelled on them), and torch-mlir's own `convert-torch-to-scf` (inside
`torch-backend-to-linalg-on-tensors-backend-pipeline`) already lowers them to `scf.if`,
`scf.for` (constant-true condition) and `scf.while`, converting the `!torch` carried types,
conditions and trip counts to builtin ones. An `scf` op carrying `!torch` types would instead
need the type conversion that pipeline does for its own ops only. So this pass renames; scf
comes from torch-mlir. It runs first in `kiln-lower`, before any torch-mlir pipeline, because
kiln ops are unregistered and those pipelines cannot see into them.

Open types: the TorchScript importer refines types without decompositions (so kiln-graph sees
`aten.linear`, not `aten.mm`), which leaves a few results without a dtype (e.g. `aten.stack`
of a list). `torchdynamo-export-to-torch-backend-pipeline` does not refine types, so when the
module still holds such a tensor type, this pass runs torch-mlir's simplification pipeline
(decompositions included, as the lowering is about to do them anyway) to complete it.
"""

from __future__ import annotations

from torch_mlir import ir

from torch_mlir.passmanager import PassManager

from kiln.dialects.kiln import walk
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

KILN_TO_TORCH: dict[str, tuple[str, str]] = {
    "kiln.if": ("torch.prim.If", "torch.prim.If.yield"),
    "kiln.loop": ("torch.prim.Loop", "torch.prim.Loop.condition"),
}


@kiln_pass("kiln-lower-control-flow")
def lower_control_flow(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite every `kiln.if` to `torch.prim.If` and every `kiln.loop` to `torch.prim.Loop`.

    Operands, result types and region bodies move over unchanged; each `kiln.yield` becomes the
    torch terminator with the same operands. Other kiln ops (`kiln.fused`, `kiln.param`) stay.
    Effect: none measurable on its own; it is what lets torch-mlir lower control flow to scf.
    """
    for op in [op for op in walk(module) if op.name in KILN_TO_TORCH]:
        kind = op.name
        with op.location:
            if kind == "kiln.loop" and _breaks_out_of_a_for(op):
                _hide_initial_condition(op)
            restructure(op, *KILN_TO_TORCH[kind])
        ctx.count("kiln-lower-control-flow", f"{kind} lowered")
    if any(_is_open(value.type) for value in _values(module)):
        _complete_types(module)
        ctx.count("kiln-lower-control-flow", "type refinements")


def _is_true(value: ir.Value) -> bool:
    owner = value.owner
    return (isinstance(owner, ir.OpView) and owner.operation.name == "torch.constant.bool"
            and bool(owner.operation.attributes["value"].value))


def _breaks_out_of_a_for(loop: ir.Operation) -> bool:
    """A loop entered with a constant true condition whose body may yield false (a break)."""
    body_yield = list(loop.regions[0].blocks[0].operations)[-1].operation
    return _is_true(loop.operands[1]) and not _is_true(body_yield.operands[0])


def _hide_initial_condition(loop: ir.Operation) -> None:
    """torch-mlir lowers a torch.prim.Loop whose *initial* condition is constant true to
    scf.for, ignoring the condition its body yields, so a `break` would be lost; and its
    canonicalizer folds any constant-only expression back to `true`. So the initial condition
    becomes `isnan(s) or not isnan(s)` (always true) of `s`, the sum of a function argument,
    which no folder sees through: the loop then lowers to scf.while."""
    entry = loop.parent
    while entry.parent is not None and entry.name != "func.func":
        entry = entry.parent
    tensors = [a for a in entry.regions[0].blocks[0].arguments
               if str(a.type).startswith("!torch.vtensor<")]
    if not tensors:
        return
    with ir.InsertionPoint(loop):
        none = _create("torch.constant.none", "!torch.none")
        dtype = str(tensors[0].type).rsplit(",", 1)[-1].rstrip(">")
        dtype = dtype if dtype.startswith(("f", "bf")) else "si64"  # sum promotes ints to i64
        total = _create("torch.aten.sum", f"!torch.vtensor<[],{dtype}>", tensors[0], none)
        nan = _create("torch.aten.isnan", "!torch.vtensor<[],i1>", total)
        not_nan = _create("torch.aten.logical_not", "!torch.vtensor<[],i1>", nan)
        either = _create("torch.aten.logical_or", "!torch.vtensor<[],i1>", nan, not_nan)
        loop.operands[1] = _create("torch.aten.Bool.Tensor", "!torch.bool", either)


def _create(name: str, result: str, *operands: ir.Value) -> ir.Value:
    return ir.Operation.create(name, results=[ir.Type.parse(result)], operands=list(operands)).result


COMPLETE_TYPES = ("builtin.module(torch-simplification-pipeline,torch-simplification-pipeline,"
                  "torch-refine-public-return)")


def _values(module: ir.Operation):
    for op in walk(module):
        yield from op.results
        for region in op.regions:
            for block in region.blocks:
                yield from block.arguments


def _is_open(value_type: ir.Type) -> bool:
    """A tensor type without a dtype or a rank, which the backend contract rejects."""
    text = str(value_type)
    return text == "!torch.vtensor" or (text.startswith("!torch.vtensor<")
                                       and (",unk>" in text or "<*," in text))


def _complete_types(module: ir.Operation) -> None:
    try:
        PassManager.parse(COMPLETE_TYPES).run(module)
    except ir.MLIRError as e:
        for diagnostic in e.error_diagnostics:
            diagnostic.location.emit_error(f"while completing tensor types: {diagnostic.message}")
        raise PassFailed from None


def restructure(op: ir.Operation, name: str, terminator: str) -> ir.Operation:
    """Replace `op` by an op `name` with its operands, result types and regions moved over,
    each region's terminator replaced by `terminator` with the same operands.

    (The TorchScript importer has the inverse twin; frontend and passes do not import each
    other, see STYLE practice 1.)
    """
    with ir.InsertionPoint(op), op.location:
        new = ir.Operation.create(name, results=[r.type for r in op.results],
                                  operands=list(op.operands), regions=len(op.regions))
    for old_region, region in zip(op.regions, new.regions, strict=True):
        old_block = old_region.blocks[0]
        block = region.blocks.append(*[a.type for a in old_block.arguments])
        for old_argument, argument in zip(old_block.arguments, block.arguments):
            old_argument.replace_all_uses_with(argument)
        for inner in list(old_block.operations):
            block.append(inner.operation)
        last = list(block.operations)[-1].operation
        with ir.InsertionPoint(last), last.location:
            ir.Operation.create(terminator, operands=list(last.operands))
        last.erase()
    for old_result, result in zip(op.results, new.results, strict=True):
        old_result.replace_all_uses_with(result)
    op.erase()
    return new
