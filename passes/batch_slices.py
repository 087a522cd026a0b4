"""`kiln-batch-slices`: the same op on every slice `x[i]` of a tensor becomes one op on `x`.

An unrolled loop over `xs` leaves, for each step `i`, `select(xs, 0, i)` feeding a copy of the
loop body. The part of the body that reads only that slice (and values common to all steps) is
independent of the other steps, so it can run once on the whole tensor: N tiny dispatches become
one, and only the truly sequential part (the recurrence through a carried value) stays per step.

    %x_i = select(%xs, 0, i)  for i in 0..N-1         %Y   = linear(%xs, %w, %b)
    %y_i = linear(%x_i, %w, %b)              ==>       %y_i = select(%Y, 0, i)

A *family* is a tensor `B` with leading size N and the N values `select(B, 0, i)`, one per
index. A group is N ops of one kind, the i-th reading slice i of one or more families at the
same operand positions and the very same values elsewhere; it becomes one batched op, whose
slices form a new family, so whole chains (linear, sum, compare, neg, where) batch in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import torch_bool, torch_int, torch_int_list
from kiln.passes.control_flow_opt import constant_of
from kiln.passes.graph_values import erase_dead, function_ops, owner_op, pure, users
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-batch-slices"
_TENSOR = "!torch.vtensor<"

# Ops applied elementwise with broadcasting: batched, each family operand gets size-1 dims
# after its leading N so that it lines up with the result as the per-slice op's did.
ELEMENTWISE = frozenset("torch.aten." + name for name in (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal", "tanh", "sigmoid", "relu",
    "gelu", "silu", "erf", "sin", "cos", "clamp", "leaky_relu", "hardtanh",
    "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor", "add.Scalar", "sub.Scalar",
    "mul.Scalar", "div.Scalar", "pow.Tensor_Scalar", "maximum", "minimum", "where.self",
    "gt.Scalar", "lt.Scalar", "ge.Scalar", "le.Scalar", "eq.Scalar", "ne.Scalar",
    "gt.Tensor", "lt.Tensor", "ge.Tensor", "le.Tensor", "eq.Tensor", "ne.Tensor",
    "logical_and", "logical_or", "logical_not",
))
# Ops whose first operand may gain leading dims: the batched op is the same op on `B`.
LEADING_DIMS = frozenset({"torch.aten.linear", "torch.aten.matmul"})


@dataclass
class Family:
    """`batched` (leading size N) and its N slices `select(batched, 0, i)`, in index order."""

    batched: ir.Value
    slices: list[ir.Value]


@kiln_pass(PASS)
def batch_slices(module: ir.Operation, ctx: PassContext) -> None:
    """Run once on a whole tensor the ops an unrolled loop runs on each of its slices.

    Groups of N ops, the i-th reading `select(x, 0, i)` for every i in 0..N-1 and the same
    other operands, become one op on `x` (elementwise ops, linear, matmul, mm, full sums);
    the results are sliced back per step. Repeats until no group is left, so a whole
    slice-only prefix of a loop body runs batched.
    Effect (measured, CPU): the TorchScript-tutorial RNN loop (100 steps) goes from ~307
    IREE dispatches a call to 5; see README (Graph passes).
    """
    slice_of: dict[ir.Value, tuple[Family, int]] = {}
    worklist = _families(module)
    for family in worklist:
        _index(family, slice_of)
    while worklist:
        family = worklist.pop()
        while (batched := _batch_one_user(family, slice_of)) is not None:
            _index(batched, slice_of)
            worklist.append(batched)
            ctx.count(PASS, "ops batched", len(family.slices))
    erase_dead(function_ops(module))


def _batch_one_user(family: Family,
                    slice_of: dict[ir.Value, tuple[Family, int]]) -> Family | None:
    """Batch the first group found among the users of `family`'s slice 0 (it erases ops,
    so the caller asks again until None)."""
    for user in users(family.slices[0]):
        pattern = _pattern(user, slice_of)
        if (group := _group(user, family, pattern)) is not None:
            return _batch(group, pattern)
    return None


def _pattern(op: ir.Operation, slice_of: dict[ir.Value, tuple[Family, int]]
             ) -> list[Family | None]:
    """Per operand of `op`: the family it is slice 0 of, or None (the same in all N ops)."""
    pattern: list[Family | None] = []
    for operand in op.operands:
        family_index = slice_of.get(operand)
        pattern.append(family_index[0] if family_index and family_index[1] == 0 else None)
    return pattern


def _index(family: Family, slice_of: dict[ir.Value, tuple[Family, int]]) -> None:
    for i, value in enumerate(family.slices):
        slice_of[value] = (family, i)


def _families(module: ir.Operation) -> list[Family]:
    """Every tensor of which all N leading slices are taken (`select.int` on dim 0)."""
    found: dict[ir.Value, dict[int, ir.Value]] = {}
    for op in function_ops(module):
        if op.name != "torch.aten.select.int" or constant_of(op.operands[1]) != 0:
            continue
        shape = vtensor_shape(op.operands[0].type)
        index = constant_of(op.operands[2])
        if not shape or shape[0] < 2 or not isinstance(index, int) or -1 in shape:
            continue
        index = index + shape[0] if index < 0 else index
        found.setdefault(op.operands[0], {}).setdefault(index, op.results[0])
    return [Family(source, [by_index[i] for i in range(len(by_index))])
            for source, by_index in found.items()
            if sorted(by_index) == list(range(vtensor_shape(source.type)[0]))]


def _group(first: ir.Operation, family: Family,
           pattern: list[Family | None]) -> list[ir.Operation] | None:
    """The N ops like `first` (which reads slice 0 of `family`), the i-th on slices i."""
    n = len(family.slices)
    if not _batchable(first) or any(f is not None and len(f.slices) != n for f in pattern):
        return None
    if first.name not in ELEMENTWISE and (pattern[0] is None or any(pattern[1:])):
        return None  # linear, matmul, mm and sum batch through their first operand only
    if first.name in LEADING_DIMS and any(  # a common batch operand would broadcast with N
            len(vtensor_shape(operand.type) or [0, 0, 0]) > 2 for operand in first.operands[1:]
            if str(operand.type).startswith(_TENSOR)):
        return None
    group = [first]
    for i in range(1, n):
        match = next((op for op in users(family.slices[i])
                      if op.name == first.name and op not in group
                      and _same_shape(op, first, pattern, i)), None)
        if match is None:
            return None
        group.append(match)
    block = first.block
    return group if all(op.block == block for op in group) else None


def _same_shape(op: ir.Operation, first: ir.Operation, pattern: list[Family | None],
                i: int) -> bool:
    if len(op.operands) != len(first.operands) or op.results[0].type != first.results[0].type:
        return False
    for mine, theirs, family in zip(op.operands, first.operands, pattern):
        if family is not None and mine != family.slices[i]:
            return False
        if family is None and not _same_value(mine, theirs):
            return False
    return True


def _same_value(a: ir.Value, b: ir.Value, depth: int = 4) -> bool:
    """Whether `a` and `b` certainly hold the same value: one SSA value, or the results of two
    pure ops with equal attributes and operands that hold the same values. Kiln ops are not
    CSE'd by MLIR, so one weight read in every step is a separate `kiln.param` (and transpose)
    per step."""
    if a == b:
        return True
    op_a, op_b = owner_op(a), owner_op(b)
    if op_a is None or op_b is None or depth == 0 or a.type != b.type:
        return False
    if (op_a.name != op_b.name or not pure(op_a) or len(op_a.results) != 1
            or len(op_a.operands) != len(op_b.operands)):
        return False
    if _attributes(op_a) != _attributes(op_b):
        return False
    return all(_same_value(x, y, depth - 1) for x, y in zip(op_a.operands, op_b.operands))


def _attributes(op: ir.Operation) -> dict[str, str]:
    return {name: str(op.attributes[name]) for name in op.attributes}


def _batchable(op: ir.Operation) -> bool:
    if len(op.results) != 1 or len(op.regions) or not str(op.results[0].type).startswith(_TENSOR):
        return False
    shape = vtensor_shape(op.results[0].type)
    if shape is None or -1 in shape:
        return False
    if op.name in ELEMENTWISE or op.name in LEADING_DIMS or op.name == "torch.aten.mm":
        return True
    return op.name == "torch.aten.sum" and vtensor_shape(op.operands[0].type) not in (None, [])


def _batch(group: list[ir.Operation], pattern: list[Family | None]) -> Family:
    """Build the batched op before the earliest of `group`; slice it where each op was."""
    first = group[0]
    # The earliest op's common operands are defined before it, where the batched op goes.
    earliest = min(group, key=_Position)
    n = len(group)
    result_shape = vtensor_shape(first.results[0].type)
    element = str(first.results[0].type).rpartition(",")[2].rstrip(">")
    with ir.InsertionPoint(earliest), first.location:
        if first.name in ELEMENTWISE:
            operands = [_lined_up(family.batched, len(result_shape))
                        if family is not None else operand
                        for operand, family in zip(earliest.operands, pattern)]
            batched = _create(first.name, [n, *result_shape], element, operands)
        elif first.name in LEADING_DIMS or first.name == "torch.aten.mm":
            name = "torch.aten.matmul" if first.name == "torch.aten.mm" else first.name
            batched = _create(name, [n, *result_shape], element,
                              [pattern[0].batched, *earliest.operands[1:]])
        else:  # torch.aten.sum over all dims of each slice
            rank = len(vtensor_shape(first.operands[0].type))
            dims = torch_int_list(list(range(1, rank + 1)))
            batched = _create("torch.aten.sum.dim_IntList", [n], element,
                              [pattern[0].batched, dims, torch_bool(False), earliest.operands[1]])
    slices = []
    for i, op in enumerate(group):
        with ir.InsertionPoint(op), op.location:
            piece = _create("torch.aten.select.int", result_shape, element,
                            [batched, torch_int(0), torch_int(i)])
        op.results[0].replace_all_uses_with(piece)
        op.erase()
        slices.append(piece)
    return Family(batched, slices)


class _Position:
    """Sort key: program order of ops in one block."""

    def __init__(self, op: ir.Operation) -> None:
        self.op = op

    def __lt__(self, other: _Position) -> bool:
        return self.op.is_before_in_block(other.op)


def _lined_up(batched: ir.Value, rank: int) -> ir.Value:
    """`batched` [N, *s] with size-1 dims after N up to `rank` + 1 dims in all."""
    shape = vtensor_shape(batched.type)
    element = str(batched.type).rpartition(",")[2].rstrip(">")
    while len(shape) < rank + 1:
        shape = [shape[0], 1, *shape[1:]]
        batched = _create("torch.aten.unsqueeze", shape, element, [batched, torch_int(1)])
    return batched


def _create(name: str, shape: list[int], element: str, operands: list[ir.Value]) -> ir.Value:
    result = ir.Type.parse(f"{_TENSOR}[{','.join(map(str, shape))}],{element}>")
    return ir.Operation.create(name, results=[result], operands=operands).result

