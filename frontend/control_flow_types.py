"""Types of TorchScript control-flow results, refined after import.

torch-mlir refines shapes and dtypes of straight-line code but not of the results of
`torch.prim.If`/`Loop`; the importer therefore imports, lets torch-mlir refine, joins the
types flowing into each If/Loop result here, and imports again until they settle.
Dtypes torch-mlir leaves open are asked of PyTorch's meta kernels.
"""

from __future__ import annotations

import re

import torch
from torch_mlir import ir
from torch_mlir.passmanager import PassManager

from kiln.dialects.kiln import restructure, walk
from kiln.dialects.torch_ops import torch_bool
from kiln.errors import FrontendError

SCALAR_TYPE_TO_MLIR: dict[str, str] = {
    "Float": "f32", "Double": "f64", "Half": "f16", "BFloat16": "bf16", "Long": "si64",
    "Int": "si32", "Short": "si16", "Char": "si8", "Byte": "ui8", "Bool": "i1",
}
TORCH_DTYPE_TO_SCALAR: dict[torch.dtype, str] = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half",
    torch.bfloat16: "BFloat16", torch.int64: "Long", torch.int32: "Int", torch.int16: "Short",
    torch.int8: "Char", torch.uint8: "Byte", torch.bool: "Bool",
}

OUTPUTS_ATTRIBUTE = "kiln.outputs"
# Each round of torch-mlir's simplification refines one more step of shapes-then-dtypes.
_SIMPLIFY = "torch-simplification-pipeline{decompose-complex-ops=false}"
REFINE_PIPELINE = f"builtin.module({_SIMPLIFY},{_SIMPLIFY},{_SIMPLIFY},torch-refine-public-return)"
RAISE_CONTROL_FLOW = {"torch.prim.If": "kiln.if", "torch.prim.Loop": "kiln.loop"}
_VTENSOR = re.compile(r"^!torch\.vtensor<\[(?P<dims>[^\]]*)\],(?P<dtype>\w+)>$")


def outputs_attribute(node: torch._C.Node) -> dict[str, ir.Attribute]:
    """The attribute that tags an imported If/Loop with the TorchScript values it defines."""
    uids = ",".join(str(v.unique()) for v in node.outputs())
    return {OUTPUTS_ATTRIBUTE: ir.StringAttr.get(uids)}


def refine(module: ir.Module) -> None:
    """torch-mlir's shape and dtype refinement (no decompositions) on straight-line code."""
    try:
        PassManager.parse(REFINE_PIPELINE).run(module.operation)
    except ir.MLIRError as e:
        lines = [f"{d.location}: {d.message}" for d in e.error_diagnostics]
        raise FrontendError("torch-mlir could not refine the imported types:\n  "
                            + "\n  ".join(lines or [str(e)])) from None


def control_flow_types(module: ir.Module) -> dict[int, str]:
    """For each If/Loop result, the join of the types flowing into it (Value.unique() keys).

    torch-mlir does not refine torch.prim.If/Loop results; the importer does, by importing
    again with these types until they stop changing.
    """
    hints: dict[int, str] = {}
    for op in walk(module.operation):
        if OUTPUTS_ATTRIBUTE not in op.attributes:
            continue
        uids = [int(u) for u in op.attributes[OUTPUTS_ATTRIBUTE].value.split(",") if u]
        for uid, incoming in zip(uids, _incoming(op), strict=True):
            if (joined := join_types([str(through_casts(v).type) for v in incoming])) is not None:
                hints[uid] = joined
    return hints


def _incoming(op: ir.Operation) -> list[list[ir.Value]]:
    """Per result of an If/Loop, the values that may become it."""
    terminators = [list(region.blocks[0].operations)[-1].operation for region in op.regions]
    skip = 1 if op.name == "torch.prim.Loop" else 0
    sources = [list(t.operands)[skip:] for t in terminators]
    if op.name == "torch.prim.Loop":
        sources.append(list(op.operands)[2:])
    return [list(values) for values in zip(*sources, strict=True)] if sources else []


def through_casts(value: ir.Value) -> ir.Value:
    """`value` behind any `tensor_static_info_cast`s (refine's casts back to an op's old
    result type), with the most precise type known."""
    owner = value.owner
    while isinstance(owner, ir.OpView) and owner.operation.name == "torch.tensor_static_info_cast":
        value = owner.operation.operands[0]
        owner = value.owner
    return value


def join_types(types: list[str]) -> str | None:
    """The most precise tensor type all known `types` fit; unknown ones carry no information."""
    known = [m for t in types if (m := _VTENSOR.match(t)) and m["dtype"] != "unk"]
    if not known:
        return None
    dims = [m["dims"].split(",") if m["dims"] else [] for m in known]
    if len({m["dtype"] for m in known}) > 1 or len({len(d) for d in dims}) > 1:
        return "!torch.vtensor"
    merged = [sizes[0] if len(set(sizes)) == 1 else "?" for sizes in zip(*dims)]
    return f"!torch.vtensor<[{','.join(merged)}],{known[0]['dtype']}>"


def raise_control_flow(module: ir.Module) -> None:
    """torch.prim.If/Loop made by the importer -> kiln.if/kiln.loop, same operands and regions."""
    for op in [op for op in walk(module.operation) if OUTPUTS_ATTRIBUTE in op.attributes]:
        restructure(op, RAISE_CONTROL_FLOW[op.name], "kiln.yield")


# ---------------------------------------------------------------------------------------------
# Dtypes torch-mlir leaves open (ops on tensor lists): ask PyTorch's meta kernels


def complete_dtypes(module: ir.Module) -> None:
    """Give each aten result typed `[dims],unk` the dtype its meta kernel computes, and each
    tensor unpacked from a list an aten op made (`split`, `chunk`, `unbind`), which
    torch-mlir leaves untyped, its meta kernel's shape and dtype."""
    for op in list(walk(module.operation)):
        if op.name in ("torch.prim.ListUnpack", "torch.aten.__getitem__.t"):
            _type_unpacked(op)
            continue
        if not op.name.startswith("torch.aten.") or not any(",unk>" in str(r.type)
                                                             for r in op.results):
            continue
        if (outputs := _meta_outputs(op)) is None:
            continue
        for result, meta in zip(op.results, outputs):
            text = str(result.type)
            if ",unk>" in text and isinstance(meta, torch.Tensor):
                dtype = SCALAR_TYPE_TO_MLIR[TORCH_DTYPE_TO_SCALAR[meta.dtype]]
                result.set_type(ir.Type.parse(text.replace(",unk>", f",{dtype}>")))


def fold_identity_tests(module: ir.Module) -> bool:
    """`a is b` / `a is not b` decided once types are refined and branches folded: one value
    is one object; tensors whose static types differ are never one object. Returns whether
    any was decided."""
    folded = False
    tests = [op for op in walk(module.operation)
             if op.name in ("torch.aten.__is__", "torch.aten.__isnot__")]
    for op in tests:
        first, second = op.operands
        types = [str(first.type), str(second.type)]
        if first == second:
            same = True
        elif (all(_VTENSOR.match(t) for t in types) and types[0] != types[1]
              and not any("?" in t or ",unk>" in t for t in types)):
            same = False
        else:
            continue
        with ir.InsertionPoint(op), op.location:
            answer = torch_bool(same == op.name.endswith("__is__"))
        op.results[0].replace_all_uses_with(answer)
        op.erase()
        folded = True
    return folded


def _type_unpacked(unpack: ir.Operation) -> None:
    """Types for the tensors a ListUnpack (or `list[i]`, where all elements have one type)
    takes out of a list an aten op made."""
    producer = unpack.operands[0].owner
    if not isinstance(producer, ir.OpView) or not producer.operation.name.startswith("torch.aten."):
        return
    if any(_VTENSOR.match(str(r.type)) and ",unk>" not in str(r.type) for r in unpack.results):
        return  # typed already
    tensors = _meta_outputs(producer.operation)  # the list's tensors
    if tensors is None or not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        return
    if unpack.name == "torch.aten.__getitem__.t":
        if len({(tuple(t.shape), t.dtype) for t in tensors}) != 1:
            return
        tensors = tensors[:1]
    if len(tensors) != len(unpack.results):
        return
    for result, meta in zip(unpack.results, tensors):
        dtype = SCALAR_TYPE_TO_MLIR[TORCH_DTYPE_TO_SCALAR[meta.dtype]]
        dims = ",".join(str(d) for d in meta.shape)
        result.set_type(ir.Type.parse(f"!torch.vtensor<[{dims}],{dtype}>"))


def _meta_outputs(op: ir.Operation) -> list | None:
    """Run `op`'s PyTorch overload on meta tensors; None where an operand is not static."""
    _, _, name, *overload = op.name.split(".", 3)
    packet = getattr(torch.ops.aten, name, None)
    overload_name = overload[0] if overload else "default"
    if packet is None or not hasattr(packet, overload_name):
        return None
    try:
        arguments = [_meta_argument(v) for v in op.operands]
        result = getattr(packet, overload_name)(*arguments)
    except (_NotStatic, RuntimeError, TypeError, ValueError):
        return None
    return list(result) if isinstance(result, (tuple, list)) else [result]


def retype_main(module: ir.Module) -> None:
    """@main's result types := the types its return now returns."""
    main = next(iter(module.body.operations))
    returned = list(main.regions[0].blocks[0].operations)[-1]
    inputs = [a.type for a in main.regions[0].blocks[0].arguments]
    results = [v.type for v in returned.operands]
    main.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, results))


class _NotStatic(Exception):
    """An operand whose value or shape the importer cannot know before running."""


def _meta_argument(value: ir.Value) -> object:
    text = str(value.type)
    if (match := _VTENSOR.match(text)) is not None and match["dtype"] != "unk":
        dims = match["dims"].split(",") if match["dims"] else []
        if "?" in dims:
            raise _NotStatic
        dtype = {v: k for k, v in TORCH_DTYPE_TO_SCALAR.items()}[_MLIR_TO_SCALAR[match["dtype"]]]
        return torch.empty([int(d) for d in dims], dtype=dtype, device="meta")
    owner = value.owner
    if not isinstance(owner, ir.OpView):
        raise _NotStatic
    if owner.operation.name == "torch.prim.ListConstruct":
        return [_meta_argument(v) for v in owner.operation.operands]
    if owner.operation.name == "torch.constant.none":
        return None
    if owner.operation.name.startswith("torch.constant."):
        return owner.operation.attributes["value"].value
    raise _NotStatic


_MLIR_TO_SCALAR = {mlir: scalar for scalar, mlir in SCALAR_TYPE_TO_MLIR.items()}
