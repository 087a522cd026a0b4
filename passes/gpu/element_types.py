"""`kiln-check-element-types`: a CompileError naming the op, not wrong numbers, where a target
cannot compute an element type.

IREE's portable Vulkan profile (`vp_android_baseline_2022`, Kiln's default Vulkan target)
computes 32-bit types only. Its compiler rejects a float64 op with "failed to legalize
'arith.constant'", and float16 code compiled for it ran to wrong numbers on Mesa's lavapipe
(every other element of `-x` left unnegated), bfloat16 to a verifier error. A float64
constant that only feeds a `truncf` to float32 is no float64 computation (a Python float in
an f32 model: LayerNorm's eps, an attention scale): `canonicalize` before this pass folds it
into a float32 constant. What is left in a refused type is computed in it: float64 tensors,
or torch-mlir's integer floor division, which divides through float64.
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

PASS = "kiln-check-element-types"


@kiln_pass(PASS)
def check_element_types(module: ir.Operation, ctx: PassContext, *, refuse: str = "",
                        target: str = "this target") -> None:
    """Fail, naming each op and its source line, where a value has an element type of
    `refuse` (comma-separated: f64,f16,bf16) that `target` cannot compute."""
    refused = {name for name in refuse.split(",") if name}
    found = 0
    for op in walk(module):
        types = [v.type for v in op.results] + [a.type for r in op.regions for b in r.blocks
                                                 for a in b.arguments]
        bad = sorted({name for t in types if (name := _element_type(t)) in refused})
        if bad and op.name != "builtin.module":
            found += 1
            if found <= 3:
                location = _known_location(op)
                location.emit_error(
                    f"'{op.name}' computes {', '.join(bad)}, which the {target} target does not "
                    f"compute; compile this program for 'cpu', or in float32")
    if found:
        raise PassFailed


def _known_location(op: ir.Operation) -> ir.Location:
    """`op`'s location, or its nearest enclosing op's where it has none (constants made by
    torch-mlir's lowering have none; the linalg op around them has the Python line)."""
    while str(op.location) == "loc(unknown)" and op.parent is not None:
        op = op.parent
    return op.location


def _element_type(type_: ir.Type) -> str:
    """'f64' for f64 or tensor<...xf64> (and so on for every type), as MLIR prints it."""
    try:
        type_ = ir.ShapedType(type_).element_type
    except ValueError:   # not a shaped type: a scalar's type is its element type
        pass
    return str(type_)
