"""`kiln-form-mmt4d-dispatches`: each packed matmul and its epilogue in one IREE dispatch.

IREE forms a dispatch around a `linalg.mmt4d` but never fuses the mmt4d's consumers into it
(`FormDispatchRegions.cpp`: `if (isa<linalg::Mmt4DOp, linalg::BatchMmt4DOp>(producer))
return false;`, TODO #16025). The packed matmuls `kiln-pack-matmuls` and Kiln's Winograd write
therefore paid a second pass over their result: a dispatch that unpacks the tiles and applies
the bias, residual and activation, reading back what the mmt4d dispatch just wrote. IREE keeps
the dispatch regions its input already has, so this pass forms them itself: a
`flow.dispatch.region` around the accumulator's fill, the mmt4d, its unpack and the chain of
single-use elementwise generics that follows. IREE tiles that region as one mmt4d dispatch
with the unpack and the generics fused into its tiles. A reshape inside the region made
IREE's code generator fail, so generics that ran on a reshape of the unpacked result (a 1x1
convolution's [C, H, W] after the unpack's [C, H*W]) are made two-dimensional and the
reshapes move outside the region.

Measured (`benchmarks/flags.md`): 256x196 output of a packed 1x1 convolution with bias and
ReLU, 0.44 ms in one dispatch against 0.77 ms in two (IREE's own 8x8 data tiling: 0.53 ms).
Whole models in interleaved A/B: ResNet-50 with its 1x1 convolutions packed, within noise
of the same build without regions on a quiet VM; BERT-base neutral (1.00 +- 0.04). Regions
start at the unpack: BERT's GELU on the tiles inside the feed-forward's mmt4d region made
that dispatch slower by more than it saved.

`flow.dispatch.region` is IREE's op, not registered in torch-mlir's context: it is built
as an unregistered op and printed in generic form, which IREE parses. The last pass of
`kiln-codegen-cpu` (the other targets keep IREE's own dispatches).
"""

from __future__ import annotations

import math

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.graph_values import owner_op, users
from kiln.passes.linalg_ir import f32_tensor, indexing_maps, map_text, static_shape
from kiln.passes.registry import PassContext, kiln_pass
from kiln.passes.splice import inline_function

PASS = "kiln-form-mmt4d-dispatches"
_ROOTS = ("linalg.mmt4d", "linalg.batch_mmt4d")
_RESHAPES = ("tensor.expand_shape", "tensor.collapse_shape")


@kiln_pass(PASS)
def form_mmt4d_dispatches(module: ir.Operation, ctx: PassContext) -> None:
    """Wrap every mmt4d whose result is unpacked, and the epilogue after it, in a
    `flow.dispatch.region`."""
    for root in [op for op in walk(module) if op.name in _ROOTS]:
        if (members := _dispatch_members(root)) and (
                sizes := _dynamic_sizes(members := _without_reshapes(members))) is not None:
            _wrap_in_dispatch_region(members, sizes)
            ctx.count(PASS, "mmt4d dispatches formed with their epilogue")


def _dispatch_members(root: ir.Operation) -> list[ir.Operation]:
    """`root` and the single-use chain after it of an unpack, then elementwise generics and
    reshapes, ending at the last generic (or the unpack). A generic joins only if its other
    operands come from before `root` (so a residual add joins the later of the two
    convolutions it adds). Empty when no unpack follows `root`."""
    value, chain, end = root.results[0], [], 0
    while len(uses := users(value)) == 1:
        (user,) = uses
        if not chain and user.name != "linalg.unpack":
            break
        if chain and not (user.name in _RESHAPES or _elementwise_after(user, value, root)):
            break
        chain.append(user)
        if user.name not in _RESHAPES:
            end = len(chain)   # a region ends at the unpack or a generic, not at a reshape
        value = user.results[0]
    return [root, *chain[:end]] if end else []


def _without_reshapes(members: list[ir.Operation]) -> list[ir.Operation]:
    """`members` with the reshapes between the unpack and the generics gone: IREE cannot
    tile a reshape between an mmt4d's unpack and its consumers in one dispatch. The
    generics run on the unpack's [A, B] instead of the [A, d1, ..., dk] it was reshaped to
    (B = d1 * ... * dk; their other operands are collapsed alike and the last result
    expanded back). When they cannot (a map other than the identity, per-A or scalar, or
    a body that reads its indices), the dispatch ends at the unpack."""
    root, unpack, *rest = members
    generics = [op for op in rest if op.name not in _RESHAPES]
    if len(generics) == len(rest):
        return members
    if rest[len(rest) - len(generics):] != generics:   # a reshape between two generics
        return [root, unpack]
    shape = static_shape(generics[0].results[0].type)
    unpacked = static_shape(unpack.results[0].type)   # None: dynamic rows
    if (shape is None or unpacked is None or len(shape) < 2 or shape[0] != unpacked[0]
            or math.prod(shape[1:]) != unpacked[1]
            or not all(_flattenable(op, shape) for op in generics)):
        return [root, unpack]
    reshaped, flat = rest[len(rest) - len(generics) - 1].results[0], unpack.results[0]
    for op in generics:
        _flatten(op, shape, reshaped, flat)
        reshaped = flat = op.results[0]   # the next generic reads this one's flat result
    last = generics[-1].results[0]
    flat_type, full_type = f32_tensor(*unpacked), f32_tensor(*shape)
    (expanded,) = inline_function(
        f"func.func private @expand(%v: {flat_type}) -> {full_type} {{\n"
        f"    %e = tensor.expand_shape %v [[0], [{', '.join(map(str, range(1, len(shape))))}]] "
        f"output_shape [{', '.join(map(str, shape))}] : {flat_type} into {full_type}\n"
        f"    return %e : {full_type}\n}}", [last], owner_op(last), after=True)
    last.replace_all_uses_except(expanded, owner_op(expanded))
    for reshape in reversed(rest[:len(rest) - len(generics)]):
        if not list(reshape.results[0].uses):
            reshape.erase()
    return [root, unpack, *generics]


def _flattenable(op: ir.Operation, shape: list[int]) -> bool:
    """Whether every operand map of `op` (over `shape`) is the identity, the first
    dimension or none, and its body reads neither its indices nor its accumulator (which
    becomes a new empty tensor)."""
    rank = len(shape)
    allowed = {map_text(rank, range(rank)), map_text(rank, [0]), map_text(rank, [])}
    maps = indexing_maps(op)
    block = op.regions[0].blocks[0]
    return (static_shape(op.results[0].type) == shape and set(maps) <= allowed
            and not list(block.arguments[-1].uses)
            and not any(inner.name == "linalg.index" for inner in block.operations))


def _flatten(op: ir.Operation, shape: list[int], reshaped: ir.Value, flat_input: ir.Value) -> None:
    """Rewrite the generic `op` from `shape` to [shape[0], product of the rest]: its
    identity-mapped operands collapsed (the chain's `reshaped` read as `flat_input`), its
    maps and iterators two-dimensional, a two-dimensional accumulator."""
    rank, flat = len(shape), [shape[0], math.prod(shape[1:])]
    full_type, flat_type = f32_tensor(*shape), f32_tensor(*flat)
    maps = indexing_maps(op)
    identity = map_text(rank, range(rank))
    *inputs, init = list(op.operands)
    for i, (value, map_) in enumerate(zip(inputs, maps)):
        if map_ != identity:
            continue
        if value == reshaped:
            op.operands[i] = flat_input
            continue
        (op.operands[i],) = inline_function(
            f"func.func private @collapse(%v: {full_type}) -> {flat_type} {{\n"
            f"    %c = tensor.collapse_shape %v [[0], [{', '.join(map(str, range(1, rank)))}]] "
            f": {full_type} into {flat_type}\n"
            f"    return %c : {flat_type}\n}}", [value], op)
    (op.operands[len(inputs)],) = inline_function(
        f"func.func private @empty() -> {flat_type} {{\n"
        f"    %e = tensor.empty() : {flat_type}\n    return %e : {flat_type}\n}}", [], op)
    if (empty := owner_op(init)) is not None and empty.name == "tensor.empty":
        _erase_if_unused(empty)
    flat_maps = {map_text(rank, range(rank)): "(d0, d1) -> (d0, d1)",
                 map_text(rank, [0]): "(d0, d1) -> (d0)", map_text(rank, []): "(d0, d1) -> ()"}
    op.attributes["indexing_maps"] = ir.Attribute.parse(
        "[" + ", ".join(f"affine_map<{flat_maps[m]}>" for m in maps) + "]")
    op.attributes["iterator_types"] = ir.Attribute.parse(
        "[#linalg.iterator_type<parallel>, #linalg.iterator_type<parallel>]")
    op.results[0].set_type(ir.Type.parse(flat_type, context=op.context))



def _elementwise_after(op: ir.Operation, value: ir.Value, root: ir.Operation) -> bool:
    """Whether `op` is a one-result all-parallel `linalg.generic` that reads `value` as an
    input (not as its accumulator), and whose other inputs are defined before `root`."""
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    if any("parallel" not in str(t) for t in ir.ArrayAttr(op.attributes["iterator_types"])):
        return False
    *inputs, _ = list(op.operands)
    if value not in inputs:
        return False
    return all(_defined_before(v, root) for v in inputs if v != value)


def _defined_before(value: ir.Value, root: ir.Operation) -> bool:
    """Whether `value` is computed before `root`: an argument, the result of an op before
    it (or in an enclosing block), or a constant (or a reshape of one, which torch-mlir
    writes where it is used)."""
    op = owner_op(value)
    if (op is None or op.block != root.block or op.is_before_in_block(root)
            or op.name == "arith.constant"):
        return True
    return op.name in _RESHAPES and _defined_before(op.operands[0], root)


def _dynamic_sizes(members: list[ir.Operation]) -> list[ir.Value] | None:
    """The values of the region result's dynamic dims (none for a static result): the sizes
    the unpack's `tensor.empty` destination was made with, which the elementwise generics
    after it keep. None where they are not known (then no region is formed)."""
    result_type, unpacked = (ir.RankedTensorType(op.results[0].type)
                             for op in (members[-1], members[1]))
    if result_type.has_static_shape:
        return []
    empty = owner_op(members[1].operands[1])
    if empty is None or empty.name != "tensor.empty" or unpacked.shape != result_type.shape:
        return None
    return list(empty.operands)


def _wrap_in_dispatch_region(members: list[ir.Operation], sizes: list[ir.Value]) -> None:
    """Move `members` (program order, each used only by the next but the last) into a new
    `flow.dispatch.region` where the last one was, which returns the last one's result
    (whose dynamic dims are `sizes`). The `linalg.fill`s, `tensor.empty`s and scalar
    constants the members use are cloned into the region, as IREE's own dispatch formation
    does."""
    last = members[-1]
    result = last.results[0]
    region_op = ir.Operation.create(
        "flow.dispatch.region", results=[result.type], operands=sizes,
        attributes={"operandSegmentSizes": ir.Attribute.parse(
            f"array<i32: {len(sizes)}, 0>")},
        regions=2, loc=last.location, ip=ir.InsertionPoint(last))   # body, workgroup count
    block = region_op.regions[0].blocks.append()
    result.replace_all_uses_with(region_op.results[0])
    terminator = ir.Operation.create("flow.return", operands=[result], loc=last.location,
                                     ip=ir.InsertionPoint(block))
    for member in members:
        _clone_producers(member, terminator)
        member.move_before(terminator)


def _clone_producers(op: ir.Operation, anchor: ir.Operation) -> None:
    """Give `op` its own clones (before `anchor`) of the fills, empties and scalar
    constants it uses; erase an original nothing else uses."""
    for i, operand in enumerate(list(op.operands)):
        producer = owner_op(operand)
        if producer is None or not _cloned_into_regions(producer):
            continue
        clone = producer.clone(ir.InsertionPoint(anchor))
        _clone_producers(clone, clone)
        op.operands[i] = clone.results[0]
        _erase_if_unused(producer)


def _erase_if_unused(op: ir.Operation) -> None:
    """Erase `op` if nothing uses it, then the producers it alone used."""
    if list(op.results[0].uses):
        return
    producers = [owner_op(v) for v in op.operands]
    op.erase()
    for producer in producers:
        if producer is not None and _cloned_into_regions(producer):
            _erase_if_unused(producer)


def _cloned_into_regions(op: ir.Operation) -> bool:
    """A `linalg.fill`, a `tensor.empty` or an `arith.constant` of a scalar."""
    if op.name in ("linalg.fill", "tensor.empty"):
        return True
    return op.name == "arith.constant" and not isinstance(op.results[0].type, ir.ShapedType)
