"""`kiln-externalize-params`: large weights become named IREE parameters, not literals."""

from __future__ import annotations

import os
import re

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.registry import PassContext, kiln_pass

# Weights of at least this many bytes leave the IR (override: KILN_EXTERNAL_PARAMS_MIN_BYTES).
# Below it, a literal costs IREE little and saves a parameter lookup at load time.
DEFAULT_MIN_BYTES = 1 << 20
# Resource key prefix; runtime/params.py (MARKER) rewrites these constants for IREE.
MARKER = "kiln.param:"

# torch element type -> (builtin tensor element type, bytes); bool (i1) stays a literal.
_ELEMENTS = {"f32": ("f32", 4), "f16": ("f16", 2), "bf16": ("bf16", 2), "f64": ("f64", 8),
             "si64": ("i64", 8), "si32": ("i32", 4), "si16": ("i16", 2), "si8": ("i8", 1),
             "ui8": ("i8", 1)}
_VTENSOR = re.compile(r"!torch\.vtensor<\[(?P<dims>[0-9,]*)\],(?P<element>\w+)>")


def min_bytes() -> int:
    """The size threshold in bytes, from the environment or the default (1 MiB)."""
    return int(os.environ.get("KILN_EXTERNAL_PARAMS_MIN_BYTES", DEFAULT_MIN_BYTES))


@kiln_pass("kiln-externalize-params")
def externalize_params(module: ir.Operation, ctx: PassContext) -> None:
    """Replace each large `kiln.param` with a data-less `dense_resource<"kiln.param:NAME">`.

    A weight of at least `min_bytes()` (1 MiB by default) becomes a `torch.vtensor.literal`
    whose resource has no blob: torch-mlir carries it to linalg as an `arith.constant`, and
    the runtime turns that into an IREE parameter named NAME, served from a `.irpa` archive
    at load time. Smaller, dynamic-shaped and bool params are left for kiln-inline-params.
    Effect: compile time and module size stop growing with the weights; the weights are
    stored once per artifact, not once per target. Run it before kiln-inline-params.
    """
    threshold = min_bytes()
    for op in [op for op in walk(module) if op.name == "kiln.param"]:
        tensor_type = _builtin_type(str(op.results[0].type), threshold)
        if tensor_type is None:
            continue
        qualname = op.attributes["qualname"].value
        with ir.InsertionPoint(op), op.location:
            value = ir.Attribute.parse(f'dense_resource<"{MARKER}{qualname}"> : {tensor_type}')
            literal = ir.Operation.create("torch.vtensor.literal", results=[op.results[0].type],
                                          attributes={"value": value})
        op.results[0].replace_all_uses_with(literal.results[0])
        op.erase()
        ctx.count("kiln-externalize-params", "params externalized")


def _builtin_type(vtensor: str, threshold: int) -> str | None:
    """`tensor<AxBxT>` for a static vtensor type of at least `threshold` bytes, else None."""
    match = _VTENSOR.fullmatch(vtensor)
    if match is None or match["element"] not in _ELEMENTS:
        return None
    element, width = _ELEMENTS[match["element"]]
    dims = [int(d) for d in match["dims"].split(",") if d]
    size = width
    for d in dims:
        size *= d
    if size < threshold or not dims:
        return None
    return f"tensor<{'x'.join(map(str, dims))}x{element}>"
