"""Control-flow simplification on `kiln.if` / `kiln.loop`, run first in `kiln-graph`.

Scripted control flow is expensive on IREE: a `kiln.if` becomes an `scf.if` whose condition is
read back on the host (a device-to-host sync per branch), and a `kiln.loop` becomes an
`scf.for` whose iterations run one after the other from the host, none fused with the next
(`rnn_loop` before these passes: ~7.7 us a step, 4 dispatches and one condition read-back).
These passes remove both where the program allows it:

- `kiln-fold-constant-branches`: an `if` on a constant, a loop that never runs, disappear.
- `kiln-hoist-loop-invariants`: pure ops of a loop body that do not depend on it move out.
- `kiln-unroll-loops`: a `for` loop with a small constant trip count becomes straight code.
- `kiln-convert-if-to-select`: an `if` with small pure tensor branches becomes both branches
  plus `aten.where.self`, so no host sync is left.

All of them assume value semantics (they run after `kiln-import-cleanup`): an op's only
effect is its results, except for the ops `speculatable` rejects.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import torch
from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.graph_values import owner_op, torch_int, vtensor_dtype
from kiln.passes.registry import PassContext, kiln_pass

# Largest trip count unrolled, and most ops (body ops, nested included, times the trip count)
# an unrolled loop may become. IREE's compile time grows ~linearly with the copies (rnn_loop:
# 1.1-1.5 s with the loop kept; unrolled, 1.9 s at 32 steps, 3.4-4.1 s at 100, 7.0 s at 256,
# 11 ops a step), so these keep an unrolled loop's compile time under ~5 s; see `unroll_loops`.
MAX_UNROLL = 128
MAX_UNROLLED_OPS = 2048
# Most ops (both branches together, constants included) an `if` may hold to be if-converted:
# both branches then always run, so they must be cheap.
MAX_SELECT_OPS = 16

# Ops that may read out of bounds, fail, or have effects if run when the program would not
# run them (data-dependent indices, host reads, randomness, printing, in-place writes).
_NOT_SPECULATABLE = ("index", "gather", "scatter", "select", "slice", "embedding", "narrow",
                     "take", "item", "rand", "dropout", "bernoulli", "normal", "uniform",
                     "empty", "copy", "print", "warn", "raise")
# Always harmless (the last two are what `_condition_tensor` builds).
_FREE_OPS = ("torch.constant.", "torch.prim.ListConstruct", "kiln.param", "torch.aten.Int.bool",
             "torch.prim.NumToTensor.Scalar")
_TENSOR = "!torch.vtensor<"


def constant_of(value: ir.Value) -> object | None:
    """The Python value of a `torch.constant.int` / `torch.constant.bool`, or of a comparison
    of two constant int lists (torch.nn's `hx.size() != expected` checks, which torch-mlir
    does not fold); None otherwise."""
    op = owner_op(value)
    if op is not None and (compare := _LIST_COMPARISONS.get(op.name)) is not None:
        lists = [_constant_list(v) for v in op.operands]
        return None if None in lists else compare(*lists)
    if op is None or op.name not in ("torch.constant.int", "torch.constant.bool"):
        return None
    return op.attributes["value"].value


_LIST_COMPARISONS = {"torch.aten.eq.int_list": operator.eq, "torch.aten.ne.int_list": operator.ne}


def _constant_list(value: ir.Value) -> list[int] | None:
    op = owner_op(value)
    if op is None or op.name != "torch.prim.ListConstruct":
        return None
    items = [constant_of(v) for v in op.operands]
    return None if None in items else items


def speculatable(op: ir.Operation) -> bool:
    """Whether running `op` when the program would not have run it is harmless.

    `_FREE_OPS` always; a `torch.aten` op when it has no region, is not in place, is not in
    `_NOT_SPECULATABLE` and produces only floating-point or bool tensors (float arithmetic
    and comparisons never trap; integer division by zero would).
    """
    if op.name.startswith(_FREE_OPS):
        return not len(op.regions)
    if not op.name.startswith("torch.aten.") or len(op.regions):
        return False
    short = op.name.removeprefix("torch.aten.")
    if short.partition(".")[0].endswith("_") or any(w in short for w in _NOT_SPECULATABLE):
        return False
    dtypes = [vtensor_dtype(r.type) for r in op.results]
    return bool(dtypes) and all(d is not None and (d.is_floating_point or d is torch.bool)
                                for d in dtypes)


def _body(op: ir.Operation, index: int = 0) -> tuple[list[ir.Operation], ir.Operation]:
    """The ops of region `index`'s only block, without and then with its `kiln.yield`."""
    ops = [o.operation for o in op.regions[index].blocks[0].operations]
    return ops[:-1], ops[-1]


def _replace(op: ir.Operation, values: Iterable[ir.Value]) -> None:
    """Replace the results of `op` by `values`, then erase it."""
    for result, value in zip(op.results, list(values), strict=True):
        result.replace_all_uses_with(value)
    op.erase()


def _inline(op: ir.Operation, index: int) -> None:
    """Move region `index` of `op` (no block arguments) before `op`; its yield replaces it."""
    ops, terminator = _body(op, index)
    for inner in ops:
        inner.move_before(op)
    _replace(op, list(terminator.operands))


def _ops_named(module: ir.Operation, name: str, inner_first: bool = False) -> list[ir.Operation]:
    """The ops called `name` under `module`; inner first when some of them may be erased."""
    found = [op for op in walk(module) if op.name == name]
    return found[::-1] if inner_first else found


# ---------------------------------------------------------------------------------------------
# kiln-fold-constant-branches


@kiln_pass("kiln-fold-constant-branches")
def fold_constant_branches(module: ir.Operation, ctx: PassContext) -> None:
    """Replace a `kiln.if` on a constant by the branch taken, and drop loops that never run.

    A `kiln.if` whose condition is a `torch.constant.bool` becomes the taken region's ops;
    a `kiln.loop` whose trip count is a constant <= 0 or whose initial condition is constant
    false becomes its initial carried values. Runs again after `kiln-unroll-loops` and
    `canonicalize`, where conditions on the iteration index (`if i == 0`) become constants.
    Effect: removes the host read of the condition and the scf op; on `rnn_loop` it finds
    nothing (its branch depends on data), so no latency change there.
    """
    for op in _ops_named(module, "kiln.if", inner_first=True):
        if isinstance(taken := constant_of(op.operands[0]), bool):
            _inline(op, 0 if taken else 1)
            ctx.count("kiln-fold-constant-branches", "ifs folded")
    for op in _ops_named(module, "kiln.loop", inner_first=True):
        trips, runs = constant_of(op.operands[0]), constant_of(op.operands[1])
        if runs is False or (isinstance(trips, int) and trips <= 0):
            _replace(op, list(op.operands)[2:])
            ctx.count("kiln-fold-constant-branches", "loops dropped")


# ---------------------------------------------------------------------------------------------
# kiln-convert-if-to-select


@kiln_pass("kiln-convert-if-to-select")
def convert_if_to_select(module: ir.Operation, ctx: PassContext) -> None:
    """Run both branches of a small pure `kiln.if` and pick the results with `aten.where.self`.

    Applies when every result is a `!torch.vtensor` and both regions together hold at most
    `MAX_SELECT_OPS` ops, all `speculatable` (no nested if/loop, no effects, float results
    only). The condition becomes a 0-d bool tensor: the tensor `t` of `aten.Bool.Tensor(t)`
    itself when `t` is 0-d (`t != 0` unless already bool), else
    `NumToTensor(Int.bool(cond)) != 0`; `where.self` broadcasts it. `aten.Bool.Tensor` left
    unused is erased. Costs both branches' work; saves the host read of the condition.
    Effect, measured on `rnn_loop` (CPU, local-sync): with the loop kept, 0.77 ms -> 0.35 ms
    a call (no host read of the condition per step, 4 -> 2 dispatches); with
    `kiln-unroll-loops` the whole call becomes straight-line code, see there.
    """
    for op in _ops_named(module, "kiln.if", inner_first=True):
        if not _selectable(op):
            continue
        condition = op.operands[0]
        with ir.InsertionPoint(op), op.location:
            mask = _condition_tensor(condition)
        (then_ops, then_yield), (else_ops, else_yield) = _body(op, 0), _body(op, 1)
        for inner in [*then_ops, *else_ops]:
            inner.move_before(op)
        with ir.InsertionPoint(op), op.location:
            picked = [_create("torch.aten.where.self", r.type, mask, a, b) for r, a, b in
                      zip(op.results, then_yield.operands, else_yield.operands, strict=True)]
        _replace(op, picked)
        _erase_if_unused(owner_op(condition))
        ctx.count("kiln-convert-if-to-select", "ifs converted")


def _selectable(op: ir.Operation) -> bool:
    """Whether `op` (a kiln.if) has tensor results and few, speculatable branch ops."""
    if not len(op.results) or not all(str(r.type).startswith(_TENSOR) for r in op.results):
        return False
    ops = [*_body(op, 0)[0], *_body(op, 1)[0]]
    return len(ops) <= MAX_SELECT_OPS and all(speculatable(inner) for inner in ops)


def _condition_tensor(condition: ir.Value) -> ir.Value:
    """A 0-d `i1` tensor holding the !torch.bool `condition`, built at the insertion point."""
    source = owner_op(condition)
    if source is not None and source.name == "torch.aten.Bool.Tensor":
        tensor = source.operands[0]
        if str(tensor.type).startswith(_TENSOR + "[],"):
            return tensor if str(tensor.type).endswith(",i1>") else _nonzero(tensor)
    number = _create("torch.aten.Int.bool", "!torch.int", condition)
    return _nonzero(_create("torch.prim.NumToTensor.Scalar", _TENSOR + "[],si64>", number))


def _nonzero(tensor: ir.Value) -> ir.Value:
    """`tensor != 0` as a 0-d bool tensor (`tensor` is 0-d)."""
    zero = torch_int(0)
    return _create("torch.aten.ne.Scalar", _TENSOR + "[],i1>", tensor, zero)


def _create(name: str, result: str | ir.Type, *operands: ir.Value,
            attributes: dict[str, ir.Attribute] | None = None) -> ir.Value:
    """The one result of a new op `name` at the current insertion point and location."""
    result_type = ir.Type.parse(result) if isinstance(result, str) else result
    return ir.Operation.create(name, results=[result_type], operands=list(operands),
                               attributes=attributes or {}).result


def _erase_if_unused(op: ir.Operation | None) -> None:
    if op is not None and all(not list(r.uses) for r in op.results):
        op.erase()


# ---------------------------------------------------------------------------------------------
# kiln-unroll-loops


@kiln_pass("kiln-unroll-loops")
def unroll_loops(module: ir.Operation, ctx: PassContext) -> None:
    """Replace a `for` loop with a small constant trip count by that many copies of its body.

    A `kiln.loop` qualifies when its trip count is a `torch.constant.int` N <= `MAX_UNROLL`,
    its initial condition is constant true and its body yields a constant-true condition (no
    `break`); a `while` loop, or a `for` loop with a break, stays. Copy k maps the index to a
    new `torch.constant.int k` and the carried values to copy k-1's yields; the last copy's
    yields replace the loop. Nested ops (an if inside the body) are cloned whole.
    Effect, measured on `rnn_loop` (100 steps; CPU, local-sync, 2-core Xeon, median of a call
    timed alone), with `kiln-convert-if-to-select`: 0.77 ms -> 0.052 ms (TorchScript: 0.60 ms;
    0.12 ms when interleaved with eager and TorchScript calls in `benchmarks/run.py`; neither
    OMP_NUM_THREADS=1 nor a passive OpenMP wait changes that, so likely cache effects). The linalg has no scf op left; IREE forms 201 dispatches (100
    matmuls, 100 sums, one fused elementwise chain for the recurrence). IREE compile time
    1.3 s -> 3.4 s, hence `MAX_UNROLL` / `MAX_UNROLLED_OPS`.
    """
    for op in _ops_named(module, "kiln.loop", inner_first=True):
        if (trips := _unroll_count(op)) is not None:
            _replace(op, _unrolled(op, trips))
            ctx.count("kiln-unroll-loops", "loops unrolled")


def _unroll_count(loop: ir.Operation) -> int | None:
    """N for a loop `for i in range(N)`, N a constant <= MAX_UNROLL and N copies of the
    body within MAX_UNROLLED_OPS; else None."""
    trips = constant_of(loop.operands[0])
    _, terminator = _body(loop)
    if constant_of(loop.operands[1]) is not True or constant_of(terminator.operands[0]) is not True:
        return None
    if not isinstance(trips, int) or not 0 <= trips <= MAX_UNROLL:
        return None
    return trips if trips * (len(list(walk(loop))) - 1) <= MAX_UNROLLED_OPS else None


def _unrolled(loop: ir.Operation, trips: int) -> list[ir.Value]:
    """Emit `trips` copies of `loop`'s body before it; the values the last one yields."""
    block = loop.regions[0].blocks[0]
    ops, terminator = _body(loop)
    carried = list(loop.operands)[2:]
    index_type = block.arguments[0].type
    for index in range(trips):
        with ir.InsertionPoint(loop), loop.location:
            counter = _create("torch.constant.int", index_type, attributes={
                "value": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), index)})
        mapping = dict(zip(block.arguments, [counter, *carried], strict=True))
        for inner in ops:
            copy = inner.clone(ip=ir.InsertionPoint(loop))
            _remap(copy, mapping)
            mapping.update(zip(inner.results, copy.results))
        carried = [mapping.get(v, v) for v in list(terminator.operands)[1:]]
    return carried


def _remap(op: ir.Operation, mapping: dict[ir.Value, ir.Value]) -> None:
    """Point `op`'s operands, and those of the ops nested in it, through `mapping`."""
    for target in [op, *walk(op)]:
        for position, operand in enumerate(target.operands):
            if operand in mapping:
                target.operands[position] = mapping[operand]


# ---------------------------------------------------------------------------------------------
# kiln-hoist-loop-invariants


@kiln_pass("kiln-hoist-loop-invariants")
def hoist_loop_invariants(module: ir.Operation, ctx: PassContext) -> None:
    """Move `speculatable` ops of a `kiln.loop` body that do not depend on it before the loop.

    An op qualifies when each operand is defined outside the loop or by an op already
    hoisted; ops are visited in body order, inner loops first, so an invariant chain moves
    out whole. Only `speculatable` ops move, since a loop may run zero times.
    Effect: an invariant op runs once instead of once per trip; `rnn_loop` has none (its
    weights are already `kiln.param`s outside the loop), so no change there.
    """
    for loop in _ops_named(module, "kiln.loop", inner_first=True):
        inside = _defined_within(loop)
        for op in _body(loop)[0]:
            if speculatable(op) and not any(v in inside for v in op.operands):
                op.move_before(loop)
                inside.difference_update(op.results)
                ctx.count("kiln-hoist-loop-invariants", "ops hoisted")


def _defined_within(op: ir.Operation) -> set[ir.Value]:
    """Every value defined inside `op`'s regions: block arguments and op results."""
    values: set[ir.Value] = set()
    for region in op.regions:
        for block in region.blocks:
            values.update(block.arguments)
    for inner in walk(op):
        values.update(inner.results)
        for region in inner.regions:
            for block in region.blocks:
                values.update(block.arguments)
    return values
