"""`kiln-batch-unbatched-ops`: convolutions and poolings on unbatched input get a batch of one.

PyTorch's `conv2d`, `max_pool2d`, `avg_pool2d` and their 1-d and 3-d kin accept an unbatched
`[C, *spatial]` input as well as `[N, C, *spatial]`. torch-mlir lowers only the batched form:
on unbatched input `max_pool*d` fails to legalize and `avg_pool2d` becomes invalid linalg.
torch.export hands poolings over unbatched (it batches convolutions itself). This pass gives
such an op the batched form PyTorch computes, `squeeze(op(unsqueeze(x, 0)), 0)`, which moves
no data once lowered (both views are reshapes). The TorchScript importer emits the same form
itself (`GraphImporter.emit_batched`), since its types come from torch-mlir's shape functions,
which assume batched input (a scripted unbatched `conv2d` was typed wrong and crashed
torch-mlir's lowering).
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import spatial_dims, with_batch_of_one
from kiln.passes.graph_values import function_ops
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-batch-unbatched-ops"


@kiln_pass(PASS)
def batch_unbatched_ops(module: ir.Operation, ctx: PassContext) -> None:
    """Give each convolution or pooling called on an unbatched input a batch dim of one.

    An op qualifies when its input (operand 0) has rank spatial dims + 1, the spatial dims
    read from the op's name (`conv2d`: 2). Every tensor result is squeezed back, so users
    see the types they had. Effect: correctness only (see the module docstring).
    """
    for op in function_ops(module):
        if (dims := spatial_dims(op.name)) is None:
            continue
        shape = vtensor_shape(op.operands[0].type)
        if shape is None or len(shape) != dims + 1:
            continue
        _batch(op)
        ctx.count(PASS, "unbatched ops given a batch of one")


def _batch(op: ir.Operation) -> None:
    """Replace `op` by squeeze(op'(unsqueeze(x, 0)), 0) for each of its results."""
    types = [op.operands[0].type, *(r.type for r in op.results)]
    with ir.InsertionPoint(op), op.location:
        squeezed = with_batch_of_one(
            op.name, list(op.operands), [_batched(t) for t in types],
            [r.type for r in op.results], {attr.name: attr.attr for attr in op.attributes})
    for old, new in zip(op.results, squeezed):
        old.replace_all_uses_with(new)
    op.erase()


def _batched(value_type: ir.Type) -> ir.Type:
    """`!torch.vtensor<[1, ...]>` for a ranked vtensor type (unranked stays unranked)."""
    if vtensor_shape(value_type) is None:
        return value_type
    head, _, rest = str(value_type).partition("<[")
    return ir.Type.parse(f"{head}<[1,{rest}")  # these ops' unbatched values have rank >= 2
