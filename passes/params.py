"""`kiln-inline-params`: replace each `kiln.param` by a literal of its value."""

from __future__ import annotations

import numpy as np
import torch
from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

TORCH_DTYPE_TO_MLIR: dict[torch.dtype, str] = {
    torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.int64: "si64", torch.int32: "si32", torch.int16: "si16", torch.int8: "si8",
    torch.uint8: "ui8", torch.bool: "i1",
}
# Literals hold builtin tensors, whose integers are signless (torch-mlir's own convention).
_SIGNLESS = {"si64": "i64", "si32": "i32", "si16": "i16", "si8": "i8", "ui8": "i8"}


@kiln_pass("kiln-inline-params")
def inline_params(module: ir.Operation, ctx: PassContext) -> None:
    """Replace every `kiln.param` with a `torch.vtensor.literal` holding the weight.

    The values come from the pass context (kiln.compile passes the model's weights;
    `kiln-opt --params FILE` a `torch.save`d dict). A name without a value is an error.
    Effect: none on its own; it is what makes weights constants for IREE.
    """
    missing = False
    for op in [op for op in walk(module) if op.name == "kiln.param"]:
        qualname = op.attributes["qualname"].value
        if (value := ctx.params.get(qualname)) is None:
            op.location.emit_error(f"'kiln.param' \"{qualname}\" has no value; pass the weights "
                                   "(kiln-opt --params FILE.pt)")
            missing = True
            continue
        with ir.InsertionPoint(op), op.location:
            literal = ir.Operation.create("torch.vtensor.literal", results=[op.results[0].type],
                                          attributes={"value": _elements(value, qualname)})
        op.results[0].replace_all_uses_with(literal.results[0])
        op.erase()
        ctx.count("kiln-inline-params", "params inlined")
    if missing:
        raise PassFailed


def _elements(value: torch.Tensor, qualname: str) -> ir.Attribute:
    """A dense attribute with the bytes of `value` (a resource blob unless it is one element)."""
    element = TORCH_DTYPE_TO_MLIR[value.dtype]
    shape = "x".join(str(d) for d in value.shape)
    tensor_type = ir.RankedTensorType.parse(
        f"tensor<{shape + 'x' if shape else ''}{_SIGNLESS.get(element, element)}>")
    data = value.detach().contiguous().cpu()
    if data.dtype == torch.bfloat16:
        array = data.view(torch.int16).numpy()
    elif data.dtype == torch.bool:
        array = data.numpy().astype(np.uint8)
    else:
        array = data.numpy()
    if array.size == 1:
        return ir.DenseElementsAttr.get(array.reshape(value.shape), type=tensor_type.element_type)
    blob = "kiln_" + "".join(c if c.isalnum() else "_" for c in qualname)
    return ir.DenseResourceElementsAttr.get_from_buffer(memoryview(array.reshape(-1)), blob,
                                                         tensor_type)
