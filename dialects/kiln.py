"""The kiln dialect: program structure Kiln owns (parameters, control flow, fusion groups).

Why not `torch_mlir.dialects.ext` (IRDL): IRDL binds one constraint variable per operand
group, so every value of a variadic group must have the same type (LLVM `irdlOpVerifier`:
"expected '!torch.bool' but got '!torch.vtensor<...>'"). `kiln.yield`, `kiln.loop` and
`kiln.fused` carry values of mixed types, so they cannot be declared that way. Kiln ops are
therefore generic operations in the `kiln` namespace (the context allows that namespace
unregistered, see `dialects/context.py`), each described by an `OpDef` below whose verifier
`verify_kiln_ops` runs after parsing and after every pass. They print in generic form:

    %w = "kiln.param"() {qualname = "fc1.weight"} : () -> !torch.vtensor<[16,8],f32>
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch_mlir import ir

VTENSOR_PREFIX = "!torch.vtensor"

Verifier = Callable[[ir.Operation], str | None]


@dataclass(frozen=True)
class OpDef:
    """One kiln op: its full name, its documentation and its verifier."""

    name: str
    summary: str
    verify: Verifier


KILN_OPS: dict[str, OpDef] = {}


def kiln_op(name: str, summary: str) -> Callable[[Verifier], Verifier]:
    """Register `verify` (op -> problem in words, or None) as the verifier of `kiln.<name>`."""

    def register(verify: Verifier) -> Verifier:
        full = f"kiln.{name}"
        assert full not in KILN_OPS, f"two definitions of {full}"
        KILN_OPS[full] = OpDef(full, summary, verify)
        return verify

    return register


def _types(values) -> list[str]:
    return [str(v.type) for v in values]


def _listing(types: list[str]) -> str:
    return f"({', '.join(types)})"


def _yield_problem(label: str, region: ir.Region, want: list[str]) -> str | None:
    """Why region `label` is not one block ending in `kiln.yield` of the types `want`."""
    blocks = list(region.blocks)
    if len(blocks) != 1:
        return f"{label} region must have exactly one block, found {len(blocks)}"
    operations = list(blocks[0].operations)
    if not operations or operations[-1].operation.name != "kiln.yield":
        return f"{label} region must end with 'kiln.yield'"
    got = _types(operations[-1].operation.operands)
    if got != want:
        return f"{label} region yields {_listing(got)} but {_listing(want)} is expected"
    return None


def vtensor_shape(value_type: ir.Type) -> list[int] | None:
    """The sizes of a ranked !torch.vtensor type (-1 where dynamic), or None."""
    text = str(value_type)
    if not text.startswith(VTENSOR_PREFIX + "<["):
        return None
    dims = text[len(VTENSOR_PREFIX) + 2 : text.index("]")]
    return [-1 if d == "?" else int(d) for d in dims.split(",")] if dims else []


@kiln_op("param", "A module parameter or buffer, referenced by its fully qualified name.")
def verify_param(op: ir.Operation) -> str | None:
    """`%w = "kiln.param"() {qualname = "fc1.weight"} : () -> !torch.vtensor<[16,8],f32>`.

    Weights stay out of the IR; `kiln-inline-params` replaces each with its value.
    """
    if len(op.operands) or len(op.results) != 1 or len(op.regions):
        return "takes no operands or regions and produces one result"
    if "qualname" not in op.attributes or not isinstance(op.attributes["qualname"], ir.StringAttr):
        return "needs a string attribute 'qualname' naming the parameter, e.g. \"fc.weight\""
    if not op.attributes["qualname"].value:
        return "has an empty 'qualname'; name the parameter, e.g. \"fc.weight\""
    if not str(op.results[0].type).startswith(VTENSOR_PREFIX):
        return f"must produce a !torch.vtensor, not {op.results[0].type}"
    return None


@kiln_op("yield", "Ends a kiln region; its operands become the parent op's results.")
def verify_yield(op: ir.Operation) -> str | None:
    """`"kiln.yield"(%a, %b) : (!torch.vtensor<[4],f32>, !torch.int) -> ()`."""
    parent = op.parent
    if parent is None or parent.name not in KILN_OPS:
        return f"must end a region of a kiln op, not of {parent.name if parent else 'nothing'}"
    block_ops = list(op.block.operations)
    if block_ops[-1].operation != op:
        return "must be the last op of its block"
    return None


@kiln_op("if", "prim::If: run the then or the else region; each yields the results.")
def verify_if(op: ir.Operation) -> str | None:
    """One !torch.bool condition, two single-block regions yielding the result types.

        %r = "kiln.if"(%cond) ({
          "kiln.yield"(%a) : (!torch.vtensor<[4],f32>) -> ()
        }, {
          "kiln.yield"(%b) : (!torch.vtensor<[4],f32>) -> ()
        }) : (!torch.bool) -> !torch.vtensor<[4],f32>
    """
    if _types(op.operands) != ["!torch.bool"]:
        return f"takes one !torch.bool condition, got {_listing(_types(op.operands))}"
    if len(op.regions) != 2:
        return f"needs a then and an else region, found {len(op.regions)} regions"
    want = _types(op.results)
    for label, region in zip(("then", "else"), op.regions):
        if problem := _yield_problem(label, region, want):
            return problem
        if len(region.blocks[0].arguments):
            return f"{label} region must take no block arguments"
    return None


@kiln_op("loop", "prim::Loop: iterate while the condition holds, up to a trip count.")
def verify_loop(op: ir.Operation) -> str | None:
    """Operands: max trip count (!torch.int), initial condition (!torch.bool), carried values.

    The body takes the iteration index (!torch.int) and the carried values and yields the
    next condition and carried values; the results are the final carried values. A `for`
    loop has a constant true condition; a `while` loop has the largest int as trip count.

        %r = "kiln.loop"(%n, %true, %h0) ({
        ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
          "kiln.yield"(%true, %h) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
        }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
    """
    operands = _types(op.operands)
    if operands[:2] != ["!torch.int", "!torch.bool"]:
        return ("takes a !torch.int trip count and a !torch.bool condition first, got "
                f"{_listing(operands[:2])}")
    carried = operands[2:]
    if carried != _types(op.results):
        return f"carries {_listing(carried)} in but returns {_listing(_types(op.results))}"
    if len(op.regions) != 1:
        return f"needs one body region, found {len(op.regions)}"
    body = op.regions[0]
    if problem := _yield_problem("body", body, ["!torch.bool", *carried]):
        return problem
    arguments = _types(body.blocks[0].arguments)
    if arguments != ["!torch.int", *carried]:
        return f"body takes {_listing(arguments)} but {_listing(['!torch.int', *carried])} is expected"
    return None


@kiln_op("fused", "A fusion group: a body computing the results from the inputs, one dispatch.")
def verify_fused(op: ir.Operation) -> str | None:
    """The body's block arguments stand for the inputs; it yields the results; it reads
    nothing from above.

        %r = "kiln.fused"(%x) ({
        ^bb0(%a: !torch.vtensor<[8],f32>):
          %t = torch.aten.tanh %a : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
          "kiln.yield"(%t) : (!torch.vtensor<[8],f32>) -> ()
        }) : (!torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32>
    """
    if not len(op.results):
        return "must produce at least one result"
    if len(op.regions) != 1:
        return f"needs one body region, found {len(op.regions)}"
    body = op.regions[0]
    if problem := _yield_problem("body", body, _types(op.results)):
        return problem
    arguments = _types(body.blocks[0].arguments)
    if arguments != _types(op.operands):
        return f"body takes {_listing(arguments)} but its inputs are {_listing(_types(op.operands))}"
    if outsider := _value_from_above(op):
        return f"body reads {outsider} from outside; pass it in as an input"
    return None


def _value_from_above(op: ir.Operation) -> str | None:
    """The first value used inside `op`'s body but defined outside it, printed; or None."""
    inside = {arg for arg in op.regions[0].blocks[0].arguments}
    for nested in walk(op.regions[0]):
        inside.update(nested.results)
        for region in nested.regions:
            for block in region.blocks:
                inside.update(block.arguments)
    for nested in walk(op.regions[0]):
        for operand in nested.operands:
            if operand not in inside:
                return operand.get_name()
    return None


@kiln_op("attention", "Scaled dot-product attention: softmax(q @ kᵀ * scale + mask) @ v.")
def verify_attention(op: ir.Operation) -> str | None:
    """q is [..., L, E], k is [..., S, E], v is [..., S, Ev]; the result is [..., L, Ev].

    An optional fourth operand is a float mask added to the scores before the softmax.

        %o = "kiln.attention"(%q, %k, %v) {scale = 0.125 : f64}
            : (!torch.vtensor<[1,2,4,8],f32>, !torch.vtensor<[1,2,4,8],f32>,
               !torch.vtensor<[1,2,4,8],f32>) -> !torch.vtensor<[1,2,4,8],f32>
    """
    if len(op.operands) not in (3, 4) or len(op.results) != 1:
        return (f"takes query, key, value and an optional mask and returns one result, got "
                f"{len(op.operands)} operands and {len(op.results)} results")
    if "scale" not in op.attributes or not isinstance(op.attributes["scale"], ir.FloatAttr):
        return "needs a float attribute 'scale'"
    shapes = [vtensor_shape(v.type) for v in [*list(op.operands)[:3], op.results[0]]]
    if any(s is None for s in shapes):
        return "needs ranked !torch.vtensor operands and result"
    q, k, v, out = shapes
    if not all(len(s) >= 2 and len(s) == len(q) for s in (q, k, v, out)):
        return ("needs query, key, value and result of one rank >= 2, got ranks "
                f"{[len(s) for s in (q, k, v, out)]}")
    if min(q[-1], k[-1]) >= 0 and q[-1] != k[-1]:
        return f"query feature size {q[-1]} differs from key feature size {k[-1]}"
    if min(k[-2], v[-2]) >= 0 and k[-2] != v[-2]:
        return f"key length {k[-2]} differs from value length {v[-2]}"
    return None


@kiln_op("decompose", "A PyTorch op the torch dialect lacks, awaiting its decomposition.")
def verify_decompose(op: ir.Operation) -> str | None:
    """`%r = "kiln.decompose"(%x, %n) {schema = "aten::diff(Tensor self, int n=1, ...)"}`.

    The TorchScript importer's placeholder: its operands are the op's arguments in schema
    order; once their types are refined, `frontend/decompositions` replaces it by what PyTorch
    decomposes the op into. None is left after import.
    """
    if not isinstance(op.attributes.get("schema") if "schema" in op.attributes else None,
                      ir.StringAttr):
        return "needs a string attribute 'schema' holding the PyTorch op's schema"
    if len(op.regions):
        return "takes no regions"
    return None


def walk(root: ir.Region | ir.Operation) -> Iterator[ir.Operation]:
    """Every operation nested in `root` (not `root` itself), outer before inner."""
    regions = [root] if isinstance(root, ir.Region) else list(root.regions)
    for region in regions:
        for block in region.blocks:
            for child in block.operations:
                yield child.operation
                yield from walk(child.operation)


def kiln_problems(root: ir.Operation) -> list[tuple[ir.Location, str]]:
    """Every kiln op under `root` that its verifier rejects, with the reason in words."""
    problems = []
    for op in walk(root):
        if (definition := KILN_OPS.get(op.name)) is None:
            if op.name.startswith("kiln."):
                problems.append((op.location, f"'{op.name}' is not a kiln op; known: "
                                              f"{', '.join(sorted(KILN_OPS))}"))
            continue
        if (problem := definition.verify(op)) is not None:
            problems.append((op.location, f"'{op.name}' {problem}"))
    return problems


def restructure(op: ir.Operation, name: str, terminator: str) -> ir.Operation:
    """Replace `op` by an op `name` with its operands, result types and regions moved over,
    each region's terminator replaced by `terminator` with the same operands."""
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
