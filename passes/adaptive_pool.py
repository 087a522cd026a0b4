"""`kiln-lower-adaptive-pools`: uneven adaptive average pooling as two matmuls.

`adaptive_avg_pool2d(x, (OH, OW))` averages, for output row `o`, the input rows
`floor(o * H / OH)` to `ceil((o + 1) * H / OH)`; when `H` is not a multiple of `OH` these
windows differ in size and overlap. torch-mlir lowers that case wrongly (a `tensor.cast`
between the sizes it computed and the real ones fails), while torch.export decomposes it
before Kiln sees it; TorchScript's `aten::adaptive_avg_pool2d` reaches torch-mlir as is.
The average is separable: `y = P · x · Qᵀ` with `P[o, h] = 1 / |window o|` on row `o`'s
window, so this pass emits two matmuls with constant `[W, OW]` and `[H, OH]` matrices.
Even pools (`H % OH == 0`, such as the global pooling of classifiers) are left alone:
torch-mlir lowers them to a plain average pooling.
"""

from __future__ import annotations

import math

import numpy as np
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import torch_int
from kiln.passes.graph_values import function_ops
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-lower-adaptive-pools"
_POOLS = {"torch.aten.adaptive_avg_pool1d": 1, "torch.aten.adaptive_avg_pool2d": 2}


@kiln_pass(PASS)
def lower_adaptive_pools(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite f32 adaptive average poolings with uneven windows as matmuls with constants.

    Needs static input and output sizes in the pooled dims. Effect: correctness (torch-mlir
    fails on these); the matmuls are small (`[.., H, W] x [W, OW]`).
    """
    for op in function_ops(module):
        if (dims := _POOLS.get(op.name)) is None:
            continue
        sizes = vtensor_shape(op.operands[0].type)
        out = vtensor_shape(op.results[0].type)
        if sizes is None or out is None or not str(op.results[0].type).endswith(",f32>"):
            continue
        pairs = list(zip(sizes[-dims:], out[-dims:]))
        if any(n <= 0 or m <= 0 for n, m in pairs) or all(n % m == 0 for n, m in pairs):
            continue
        with ir.InsertionPoint(op), op.location:
            result = _as_matmuls(op.operands[0], sizes, out, dims)
        op.results[0].replace_all_uses_with(result)
        op.erase()
        ctx.count(PASS, "adaptive poolings as matmuls")


def _as_matmuls(x: ir.Value, sizes: list[int], out: list[int], dims: int) -> ir.Value:
    """`x @ Q_w` pools the last axis; for 2-d, transpose, `@ Q_h`, transpose back."""
    lead = sizes[:-dims]
    if dims == 1:
        return _matmul(x, _averaging(sizes[-1], out[-1]), lead + [out[-1]])
    (h, w), (oh, ow) = sizes[-2:], out[-2:]
    rows = _transpose_last(_matmul(x, _averaging(w, ow), lead + [h, ow]), lead + [ow, h])
    return _transpose_last(_matmul(rows, _averaging(h, oh), lead + [ow, oh]), lead + [oh, ow])


def _averaging(n: int, m: int) -> np.ndarray:
    """The `[n, m]` matrix whose column `o` averages input window `o` of an adaptive pool."""
    matrix = np.zeros((n, m), dtype=np.float32)
    for o in range(m):
        start, end = (o * n) // m, math.ceil((o + 1) * n / m)
        matrix[start:end, o] = 1.0 / (end - start)
    return matrix


def _vtensor(shape: list[int]) -> ir.Type:
    return ir.Type.parse(f"!torch.vtensor<[{','.join(map(str, shape))}],f32>")


def _matmul(x: ir.Value, matrix: np.ndarray, shape: list[int]) -> ir.Value:
    literal = ir.Operation.create(
        "torch.vtensor.literal", results=[_vtensor(list(matrix.shape))],
        attributes={"value": ir.DenseElementsAttr.get(matrix)}).result
    return ir.Operation.create("torch.aten.matmul", results=[_vtensor(shape)],
                               operands=[x, literal]).result


def _transpose_last(x: ir.Value, shape: list[int]) -> ir.Value:
    rank = len(shape)
    return ir.Operation.create("torch.aten.transpose.int", results=[_vtensor(shape)],
                               operands=[x, torch_int(rank - 2), torch_int(rank - 1)]).result
