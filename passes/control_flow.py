"""`kiln-lower-control-flow`: `kiln.if` / `kiln.loop` -> `torch.prim.If` / `torch.prim.Loop`, and
loops left by a computed condition on to `scf.while`.

Why torch.prim for most: the two pairs have the same operands, regions and yields (kiln's ops
were modelled on them), and torch-mlir's own `convert-torch-to-scf` (inside
`torch-backend-to-linalg-on-tensors-backend-pipeline`) already lowers them to `scf.if` and
`scf.for`, converting the `!torch` carried types, conditions and trip counts to builtin ones.
So this pass renames `kiln.if` and `for`-like loops (condition constant true in and out). It runs
first in `kiln-lower`, before any torch-mlir pipeline, because kiln ops are unregistered and those
pipelines cannot see into them.

Loops with a computed condition (`while`, and `for` with `break`, which TorchScript turns into a
condition) this pass lowers to scf itself, because torch-mlir's lowering fails two ways:
- a loop *entered* with a constant true condition becomes `scf.for`, and the condition its body
  yields is ignored: a `break` is lost (and a `while`-style trip count of 2^63 runs in full);
- its `scf.while` carries the condition in the `before` region only (operands `(i1, values)`,
  `after` arguments `(values)`). IREE's stream conversion (ScfWhileOpConversion, 3.13) converts
  the `after` block with the *operands'* signature, so the i1 lands on a tensor argument:
  "failed to legalize unresolved target materialization from ('i1') to ('!stream.resource<*>',
  'index')". (A loop IREE's canonicalizer happens to rotate escapes this; one with a branch in
  its body, as a `break` makes, does not.)
Instead each becomes a guarded do-while whose operands, `after` arguments and results have the
same types, `(i64 index, values)`; the body runs in `before` and decides whether to go on:

    %r = scf.if %cond0 && 0 < %trips {
      %w:2 = scf.while (%i = 0, %v = %init) {
        ...body(%i, %v) -> %c, %next...
        scf.condition(%c && %i + 1 < %trips) %i + 1, %next
      } do { ^bb0(%i, %v): scf.yield %i, %v }
      scf.yield %w#1
    } else { scf.yield %init }

The condition crosses as an i1 scalar (`torch_c.to_i1` of the body's `!torch.bool`, itself
usually `aten.Bool.Tensor`, i.e. a `tensor.extract`), never as a 0-d tensor; tensors cross with
`torch_c.to_builtin_tensor`/`from_builtin_tensor`, ints and floats with `to_i64`/`to_f64` and
back. torch-mlir's backend type conversion folds those casts.

Open types: the TorchScript importer refines types without decompositions (so kiln-graph sees
`aten.linear`, not `aten.mm`), which leaves a few results without a dtype (e.g. `aten.stack`
of a list). `torchdynamo-export-to-torch-backend-pipeline` does not refine types, so when the
module still holds such a tensor type, this pass runs torch-mlir's simplification pipeline
(decompositions included, as the lowering is about to do them anyway) to complete it. That
happens before the scf lowering, which needs complete types to name builtin ones.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.passmanager import PassManager

from kiln.dialects.context import load_torch_conversion
from kiln.dialects.kiln import restructure, vtensor_shape, walk
from kiln.dialects.torch_ops import torch_bool
from kiln.passes.graph_values import owner_op
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

KILN_TO_TORCH: dict[str, tuple[str, str]] = {
    "kiln.if": ("torch.prim.If", "torch.prim.If.yield"),
    "kiln.loop": ("torch.prim.Loop", "torch.prim.Loop.condition"),
}


@kiln_pass("kiln-lower-control-flow")
def lower_control_flow(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite every `kiln.if` to `torch.prim.If`, every `for`-like `kiln.loop` to
    `torch.prim.Loop`, and every loop with a computed condition to `scf.if` + `scf.while`.

    Operands, result types and region bodies move over unchanged; each `kiln.yield` becomes the
    torch terminator with the same operands. Other kiln ops (`kiln.fused`, `kiln.param`) stay.
    Effect: none measurable on its own; it is what lets control flow reach scf, and IREE.
    """
    raising = [(op, branch) for op in walk(module)
               if op.name == "kiln.if" and (branch := _raise_branch(op)) is not None]
    for op, branch in raising:
        _lower_to_assert(op, branch)
        ctx.count("kiln-lower-control-flow", "raises -> runtime checks")
    for op in [op for op in walk(module) if op.name in KILN_TO_TORCH]:
        kind = op.name
        with op.location:
            restructure(op, *KILN_TO_TORCH[kind])
        ctx.count("kiln-lower-control-flow", f"{kind} lowered")
    if any(_is_open(value.type) for value in _values(module)):
        _complete_types(module)
        ctx.count("kiln-lower-control-flow", "type refinements")
    loops = [op for op in walk(module) if op.name == "torch.prim.Loop" and not _is_for(op)]
    if not loops:
        return
    _check_carried(loops)
    load_torch_conversion()
    for loop in loops:
        with loop.location:
            lower_to_while(loop)
        ctx.count("kiln-lower-control-flow", "loops with a computed condition -> scf.while")


def _raise_branch(op: ir.Operation) -> int | None:
    """1 or 2 where `op` is `if c: raise` (`else: raise`) with an empty other branch and no
    results, the input check TorchScript keeps from a model's `raise`; else None."""
    if len(op.results):
        return None
    bodies = [[o.operation.name for o in region.blocks[0].operations] for region in op.regions]
    for branch, (body, other) in enumerate([bodies, bodies[::-1]], start=1):
        if body == ["torch.prim.RaiseException", "kiln.yield"] and other == ["kiln.yield"]:
            return branch
    return None


def _lower_to_assert(op: ir.Operation, branch: int) -> None:
    """`if c: raise E(msg)` -> `torch.runtime.assert(not c, msg)`: a check in the program."""
    raising = next(iter(op.regions[branch - 1].blocks[0].operations)).operation
    message = owner_op(raising.operands[0])
    text = (message.attributes["value"].value if message is not None
            and message.name == "torch.constant.str" else "the model raised an exception")
    with ir.InsertionPoint(op), op.location:
        holds = op.operands[0]
        if branch == 1:  # not c, as `c != true` (torch-mlir lowers no __not__)
            holds = _op("torch.aten.ne.bool", "!torch.bool", holds, torch_bool(True))
        ir.Operation.create("torch.runtime.assert", operands=[holds],
                            attributes={"message": ir.StringAttr.get(text)})
    op.erase()


def _is_true(value: ir.Value) -> bool:
    owner = value.owner
    return (isinstance(owner, ir.OpView) and owner.operation.name == "torch.constant.bool"
            and bool(owner.operation.attributes["value"].value))


def _is_for(loop: ir.Operation) -> bool:
    """A loop entered with a constant true condition whose body yields constant true too."""
    return _is_true(loop.operands[1]) and _is_true(_terminator(loop.regions[0]).operands[0])


def _terminator(region: ir.Region) -> ir.Operation:
    return list(region.blocks[0].operations)[-1].operation


# ---------------------------------------------------------------------------------------------
# Loops with a computed condition -> scf.if + scf.while

I64 = "i64"
SCALARS = {"!torch.int": ("i64", "torch_c.to_i64", "torch_c.from_i64"),
           "!torch.bool": ("i1", "torch_c.to_i1", "torch_c.from_i1"),
           "!torch.float": ("f64", "torch_c.to_f64", "torch_c.from_f64")}
TENSOR_CASTS = ("torch_c.to_builtin_tensor", "torch_c.from_builtin_tensor")
CMPI_SLT = 2


def builtin_type(torch_type: ir.Type) -> ir.Type | None:
    """The builtin type torch-mlir converts `torch_type` to (`tensor<2x?xi64>` for
    `!torch.vtensor<[2,?],si64>`, `i64` for `!torch.int`), or None where this pass has no cast."""
    text = str(torch_type)
    if text in SCALARS:
        return ir.Type.parse(SCALARS[text][0])
    shape = vtensor_shape(torch_type)
    dtype = text.rstrip(">").rpartition(",")[2]
    if shape is None or dtype == "unk" or "<" in dtype:  # unknown, complex
        return None
    element = dtype[1:] if dtype.startswith(("si", "ui")) else dtype
    dims = "".join(f"{'?' if size < 0 else size}x" for size in shape)
    return ir.Type.parse(f"tensor<{dims}{element}>")


def _check_carried(loops: list[ir.Operation]) -> None:
    """Report every loop carrying a value with no builtin counterpart (a list, an Optional)."""
    problems = [(loop, r.type) for loop in loops for r in loop.results
                if builtin_type(r.type) is None]
    for loop, value_type in problems:
        loop.location.emit_error(
            f"a loop with a computed condition (while, break) cannot carry '{value_type}': "
            "only tensors of known dtype, ints, floats and bools")
    if problems:
        raise PassFailed


def to_builtin(value: ir.Value) -> ir.Value:
    """`value` as its builtin type, through the torch_c cast for its type."""
    text = str(value.type)
    name = SCALARS[text][1] if text in SCALARS else TENSOR_CASTS[0]
    return _op(name, builtin_type(value.type), value)


def from_builtin(value: ir.Value, torch_type: ir.Type) -> ir.Value:
    """The builtin `value` back as `torch_type`."""
    text = str(torch_type)
    name = SCALARS[text][2] if text in SCALARS else TENSOR_CASTS[1]
    return _op(name, torch_type, value)


def lower_to_while(loop: ir.Operation) -> None:
    """Replace the torch.prim.Loop `loop` by the guarded do-while of the module doc."""
    trips, condition, *inits = loop.operands
    types = [builtin_type(r.type) for r in loop.results]
    with ir.InsertionPoint(loop):
        limit, zero = to_builtin(trips), _i64(0)
        go = _op("arith.andi", "i1", to_builtin(condition), _less(zero, limit))
        inits = [to_builtin(v) for v in inits]
        guard = ir.Operation.create("scf.if", results=types, operands=[go], regions=2)
        then, otherwise = (region.blocks.append() for region in guard.regions)
    with ir.InsertionPoint(otherwise):
        _op("scf.yield", None, *inits)
    with ir.InsertionPoint(then):
        carried = [ir.Type.parse(I64), *types]
        while_op = ir.Operation.create("scf.while", results=carried, operands=[zero, *inits],
                                       regions=2)
        _op("scf.yield", None, *while_op.results[1:])
    _move_body(loop, while_op.regions[0].blocks.append(*carried), limit)
    after = while_op.regions[1].blocks.append(*carried)
    with ir.InsertionPoint(after):
        _op("scf.yield", None, *after.arguments)
    with ir.InsertionPoint(loop):
        results = [from_builtin(v, r.type) for v, r in zip(guard.results, loop.results)]
    for old, new in zip(loop.results, results, strict=True):
        old.replace_all_uses_with(new)
    loop.erase()


def _move_body(loop: ir.Operation, before: ir.Block, limit: ir.Value) -> None:
    """Move the loop body into the `before` block: builtin arguments cast to torch types in,
    the yielded condition and values cast out, the index stepped and checked against `limit`."""
    body = loop.regions[0].blocks[0]
    with ir.InsertionPoint(before):
        torch_args = [from_builtin(a, b.type) for a, b in zip(before.arguments, body.arguments)]
    for old, new in zip(body.arguments, torch_args, strict=True):
        old.replace_all_uses_with(new)
    for op in list(body.operations):
        before.append(op.operation)
    yielded = list(before.operations)[-1].operation
    with ir.InsertionPoint(yielded), yielded.location:
        index = _op("arith.addi", I64, before.arguments[0], _i64(1))
        go = _op("arith.andi", "i1", to_builtin(yielded.operands[0]), _less(index, limit))
        values = [to_builtin(v) for v in list(yielded.operands)[1:]]
        ir.Operation.create("scf.condition", operands=[go, index, *values])
    yielded.erase()


def _op(name: str, result: ir.Type | str | None, *operands: ir.Value,
        **attributes: ir.Attribute) -> ir.Value | None:
    """Create `name(operands)` at the current insertion point; its one result, if any."""
    results = [] if result is None else [ir.Type.parse(result) if isinstance(result, str)
                                         else result]
    op = ir.Operation.create(name, results=results, operands=list(operands),
                             attributes=attributes)
    return op.results[0] if results else None


def _i64(value: int) -> ir.Value:
    i64 = ir.IntegerType.get_signless(64)
    return _op("arith.constant", i64, value=ir.IntegerAttr.get(i64, value))


def _less(a: ir.Value, b: ir.Value) -> ir.Value:
    predicate = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), CMPI_SLT)
    return _op("arith.cmpi", "i1", a, b, predicate=predicate)


# ---------------------------------------------------------------------------------------------
# Open types

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


