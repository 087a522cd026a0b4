"""`kiln-lower-adaptive-pools`: uneven adaptive poolings as matmuls (average) or slices (max).

`adaptive_avg_pool2d(x, (OH, OW))` averages, for output row `o`, the input rows
`floor(o * H / OH)` to `ceil((o + 1) * H / OH)`; when `H` is not a multiple of `OH` these
windows differ in size and overlap. torch-mlir lowers that case wrongly (a `tensor.cast`
between the sizes it computed and the real ones fails), while torch.export decomposes it
before Kiln sees it; TorchScript's `aten::adaptive_avg_pool2d` reaches torch-mlir as is.
The average is separable: `y = P · x · Qᵀ` with `P[o, h] = 1 / |window o|` on row `o`'s
window, so this pass emits two matmuls with constant `[W, OW]` and `[H, OH]` matrices.
Max pooling over the same windows fails in torch-mlir too (both frontends); the maximum is
separable as well but not linear, so each window becomes a slice and an `amax`, the window
results are concatenated, along the last axis first and then along the one before.
Even pools (`H % OH == 0`, such as the global pooling of classifiers) are left alone:
torch-mlir lowers them to a plain pooling.
"""

from __future__ import annotations

import math

import numpy as np
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import torch_bool, torch_int, torch_int_list
from kiln.passes.graph_values import function_ops
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-lower-adaptive-pools"
_AVERAGE_POOLS = {"torch.aten.adaptive_avg_pool1d": 1, "torch.aten.adaptive_avg_pool2d": 2}
_MAX_POOLS = {"torch.aten.adaptive_max_pool1d": 1, "torch.aten.adaptive_max_pool2d": 2}


@kiln_pass(PASS)
def lower_adaptive_pools(module: ir.Operation, ctx: PassContext) -> None:
    """Rewrite adaptive poolings with uneven windows: f32 averages as matmuls with constants,
    maxima (whose indices are unused) as one slice and `amax` per window.

    Needs static input and output sizes in the pooled dims. Effect: correctness (torch-mlir
    fails on these); the matmuls are small (`[.., H, W] x [W, OW]`), the slices OH + OW.
    """
    for op in function_ops(module):
        dims = _AVERAGE_POOLS.get(op.name) or _MAX_POOLS.get(op.name)
        if dims is None or not _uneven(op, dims):
            continue
        sizes, out = vtensor_shape(op.operands[0].type), vtensor_shape(op.results[0].type)
        if op.name in _AVERAGE_POOLS:
            if not str(op.results[0].type).endswith(",f32>"):
                continue
            with ir.InsertionPoint(op), op.location:
                result = _as_matmuls(op.operands[0], sizes, out, dims)
            done = "adaptive average poolings as matmuls"
        else:
            if list(op.results[1].uses):
                continue  # the indices are used: leave it (and its error) to torch-mlir
            with ir.InsertionPoint(op), op.location:
                result = _as_window_maxima(op.operands[0], sizes, out, dims)
            done = "adaptive max poolings as window maxima"
        op.results[0].replace_all_uses_with(result)
        op.erase()
        ctx.count(PASS, done)


def _uneven(op: ir.Operation, dims: int) -> bool:
    """Static pooled sizes of which at least one is not a multiple of its output size."""
    sizes, out = vtensor_shape(op.operands[0].type), vtensor_shape(op.results[0].type)
    if sizes is None or out is None or len(sizes) < dims + 1:
        return False
    pairs = list(zip(sizes[-dims:], out[-dims:]))
    return not any(n <= 0 or m <= 0 for n, m in pairs) and not all(n % m == 0 for n, m in pairs)


def _as_matmuls(x: ir.Value, sizes: list[int], out: list[int], dims: int) -> ir.Value:
    """`x @ Q_w` pools the last axis; for 2-d, transpose, `@ Q_h`, transpose back."""
    lead = sizes[:-dims]
    if dims == 1:
        return _matmul(x, _averaging(sizes[-1], out[-1]), lead + [out[-1]])
    (h, w), (oh, ow) = sizes[-2:], out[-2:]
    rows = _transpose_last(_matmul(x, _averaging(w, ow), lead + [h, ow]), lead + [ow, h])
    return _transpose_last(_matmul(rows, _averaging(h, oh), lead + [ow, oh]), lead + [oh, ow])


def _windows(n: int, m: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows: `[start, end)` of each of `m` outputs over `n`."""
    return [((o * n) // m, math.ceil((o + 1) * n / m)) for o in range(m)]


def _averaging(n: int, m: int) -> np.ndarray:
    """The `[n, m]` matrix whose column `o` averages input window `o` of an adaptive pool."""
    matrix = np.zeros((n, m), dtype=np.float32)
    for o, (start, end) in enumerate(_windows(n, m)):
        matrix[start:end, o] = 1.0 / (end - start)
    return matrix


def _as_window_maxima(x: ir.Value, sizes: list[int], out: list[int], dims: int) -> ir.Value:
    """Max-pool the last axis window by window, then (2-d) the axis before it."""
    element = str(x.type).rsplit(",", 1)[1].rstrip(">")
    shape = list(sizes)
    for axis in range(len(sizes) - 1, len(sizes) - 1 - dims, -1):
        maxima = []
        for start, end in _windows(sizes[axis], out[axis]):
            window = _with(shape, axis, end - start)
            bounds = [torch_int(axis), torch_int(start), torch_int(end), torch_int(1)]
            piece = ir.Operation.create("torch.aten.slice.Tensor",
                                        results=[_typed(window, element)],
                                        operands=[x, *bounds]).result
            maxima.append(ir.Operation.create(
                "torch.aten.amax", results=[_typed(_with(shape, axis, 1), element)],
                operands=[piece, torch_int_list([axis]), torch_bool(True)]).result)
        shape = _with(shape, axis, out[axis])
        listed = ir.Operation.create(
            "torch.prim.ListConstruct", results=[ir.Type.parse("!torch.list<vtensor>")],
            operands=maxima).result
        x = ir.Operation.create("torch.aten.cat", results=[_typed(shape, element)],
                                operands=[listed, torch_int(axis)]).result
    return x


def _with(shape: list[int], axis: int, size: int) -> list[int]:
    return [size if i == axis else d for i, d in enumerate(shape)]


def _typed(shape: list[int], element: str) -> ir.Type:
    return ir.Type.parse(f"!torch.vtensor<[{','.join(map(str, shape))}],{element}>")


def _vtensor(shape: list[int]) -> ir.Type:
    return _typed(shape, "f32")


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
