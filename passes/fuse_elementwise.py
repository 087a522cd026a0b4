"""`kiln-fuse-elementwise`: group chains of elementwise torch ops into `kiln.fused` regions."""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.passes.graph_values import owner_op, users
from kiln.passes.lower_fused import ELEMENTWISE_OPS, FLOAT_TYPES, element_type_name
from kiln.passes.registry import PassContext, kiln_pass

SCALAR_CONSTANTS = ("torch.constant.int", "torch.constant.float", "torch.constant.bool",
                    "torch.constant.str", "torch.constant.none")
# rule kind -> (element types the tensor operands may have, the result may have)
_KIND_TYPES = {
    "float": (FLOAT_TYPES, FLOAT_TYPES),
    "compare": (FLOAT_TYPES, ("i1",)),
    "select": ((*FLOAT_TYPES, "i1"), FLOAT_TYPES),
}


@kiln_pass("kiln-fuse-elementwise")
def fuse_elementwise(module: ir.Operation, ctx: PassContext) -> None:
    """Group maximal DAGs of elementwise torch ops into one `kiln.fused` region each.

    Fusable ops are the rows of `ELEMENTWISE_OPS` (passes/lower_fused.py) with static shapes,
    float tensors (i1 for conditions and comparisons), one float type per op, and constant
    scalar operands (alpha, exponents, clamp bounds, gelu's approximate). The rule: walking
    each block backwards, a fusable op not yet grouped is the root (the group's one result,
    any uses); a producer joins when it is fusable, in the same block, and every use of its
    result is already in the group. So a value used outside mid-chain ends the group below
    it and roots its own group; no op is computed twice; groups have one result. A non-table
    op stops the group. A group of one op is not formed. Scalar constants are cloned into
    the body, which is isolated from above. `kiln-lower-fused` turns each group into one
    `linalg.generic`.
    Effect: none measurable. IREE's dispatch formation already fuses such chains (and
    fuses them into the matmul or reduction next to them), so the dispatch count and the
    latency are the same with the pass on and off (benchmarks/ablation.py --pass
    kiln-fuse-elementwise, llvm-cpu, 2-core x86, medians of 300-500 interleaved calls):
    elementwise chain 64x512, 2 groups of 23 ops: 2 dispatches off and on, 0.573 vs
    0.562 ms; ResNet-style CNN, 3 groups of 2 ops: 30 and 30, 0.734 vs 0.735 ms; BERT-style
    encoder: no group forms (views and layer_norm sit between its elementwise ops), 30 and
    30, 0.099 vs 0.100 ms.
    """
    for block in _blocks(module):
        for members in _groups(block):
            _outline(members)
            ctx.count("kiln-fuse-elementwise", "groups formed")
            ctx.count("kiln-fuse-elementwise", "ops fused", len(members))


def _blocks(module: ir.Operation) -> list[ir.Block]:
    """Every block under `module` outside existing `kiln.fused` bodies."""
    found = [block for region in module.regions for block in region.blocks]
    for op in walk(module):
        if op.name == "kiln.fused" or _inside_fused(op):
            continue
        found += [block for region in op.regions for block in region.blocks]
    return found


def _inside_fused(op: ir.Operation) -> bool:
    parent = op.parent
    while parent is not None and parent.name != "builtin.module":
        if parent.name == "kiln.fused":
            return True
        parent = parent.parent
    return False


def _groups(block: ir.Block) -> list[list[ir.Operation]]:
    """The groups of `block`, each in block order; roots are tried last op first."""
    ops = [op.operation for op in block.operations]
    position = {op: index for index, op in enumerate(ops)}
    grouped: set[ir.Operation] = set()
    groups = []
    for root in reversed(ops):
        if root in grouped or not fusable(root):
            continue
        members = _grow(root, position)
        if len(members) > 1:
            grouped |= members
            groups.append(sorted(members, key=position.__getitem__))
    return groups


def _grow(root: ir.Operation, position: dict[ir.Operation, int]) -> set[ir.Operation]:
    """`root` and the producers whose every use ends up inside the group, to a fixed point."""
    members = {root}
    pending = [root]
    while pending:
        for operand in pending.pop().operands:
            producer = owner_op(operand)
            if producer is None or producer in members or producer not in position:
                continue
            if fusable(producer) and all(user in members for user in users(operand)):
                members.add(producer)
                pending.append(producer)
    return members


def fusable(op: ir.Operation) -> bool:
    """Whether `op` may join a group: a table op on static float tensors and constants."""
    rule = ELEMENTWISE_OPS.get(op.name)
    if rule is None or len(op.results) != 1:
        return False
    operand_types, result_types = _KIND_TYPES[rule.kind]
    if not _static(op.results[0].type, result_types):
        return False
    tensors = [v for v in op.operands if vtensor_shape(v.type) is not None]
    scalars = [v for v in op.operands if vtensor_shape(v.type) is None]
    if not all(_static(v.type, operand_types) for v in tensors):
        return False
    if any((producer := owner_op(v)) is None or producer.name not in SCALAR_CONSTANTS
           for v in scalars):
        return False
    if len({element_type_name(v.type) for v in [*tensors, op.results[0]]} - {"i1"}) != 1:
        return False
    return rule.accepts([_constant(v) for v in scalars])


def _static(value_type: ir.Type, element_types: tuple[str, ...]) -> bool:
    shape = vtensor_shape(value_type)
    return shape is not None and -1 not in shape and element_type_name(value_type) in element_types


def _constant(value: ir.Value) -> int | float | bool | str | None:
    op = owner_op(value)
    assert op is not None
    return op.attributes["value"].value if "value" in op.attributes else None


def _outline(members: list[ir.Operation]) -> None:
    """Move `members` (block order, the last is the root) into a new `kiln.fused`."""
    root = members[-1]
    produced = {result for op in members for result in op.results}
    operands = [v for op in members for v in op.operands if v not in produced]
    inputs = list(dict.fromkeys(v for v in operands if vtensor_shape(v.type) is not None))
    constants = list(dict.fromkeys(v for v in operands if vtensor_shape(v.type) is None))
    with ir.InsertionPoint(root), root.location:
        fused = ir.Operation.create("kiln.fused", results=[root.results[0].type],
                                    operands=inputs, regions=1)
    body = fused.regions[0].blocks.append(*[v.type for v in inputs],
                                          arg_locs=[root.location] * len(inputs))
    inside = dict(zip(inputs, body.arguments))
    with ir.InsertionPoint(body):
        for value in constants:
            constant = owner_op(value)
            assert constant is not None, "fusable() admits only constant scalar operands"
            inside[value] = constant.clone().results[0]
    for op in members:
        _move_into(op, body)
        for index, operand in enumerate(op.operands):
            if operand in inside:
                op.operands[index] = inside[operand]
    root.results[0].replace_all_uses_with(fused.results[0])
    with ir.InsertionPoint(body), root.location:
        ir.Operation.create("kiln.yield", operands=[root.results[0]])


def _move_into(op: ir.Operation, body: ir.Block) -> None:
    """Detach `op` and append it to `body`."""
    op.detach_from_parent()
    ir.InsertionPoint(body).insert(op)
