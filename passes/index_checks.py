"""`kiln-check-indices`: every index a gather- or scatter-like op takes is checked in the
program before the op reads or writes with it.

Eager PyTorch raises IndexError (or RuntimeError) for an index outside the tensor. The code
torch-mlir and IREE make from these ops does not check: it reads outside the weight (or
writes outside the result) and returns garbage, or dies with a segfault. So before each such
op, the pass inserts `torch.runtime.assert(all(lo <= index < size))`, with `lo` 0 or
`-size` as eager allows negative indices, and a message naming the op and its source line;
a failing call raises `kiln.IndexCheckError` (runtime/module.py).

Cost: a min and a max reduction over the index tensor, compared with the bounds on the
device, and a read of the one-bit verdict by the host before the op runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.dialects.torch_ops import torch_int
from kiln.errors import IndexCheckError
from kiln.passes.graph_values import tensor_type, vtensor_dtype
from kiln.passes.locations import render_location
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-check-indices"


@dataclass(frozen=True)
class IndexedOperand:
    """Where an op's index tensor is and what it indexes.

    `dim_operand`: the operand holding the (constant) dimension; None with `dim` fixed, or
    for `take`, which indexes the flattened tensor (`dim` None).
    """

    index: int                  # operand position of the index tensor
    source: int                 # operand position of the tensor indexed
    dim_operand: int | None     # operand position of the constant dimension
    dim: int | None = 0         # the dimension, when no operand gives it
    negative: bool = False      # eager accepts -size <= index < 0 too


_ALONG_DIM = IndexedOperand(index=2, source=0, dim_operand=1)
OPS: dict[str, IndexedOperand] = {
    "torch.aten.embedding": IndexedOperand(index=1, source=0, dim_operand=None),
    "torch.aten.embedding_bag": IndexedOperand(index=1, source=0, dim_operand=None),
    "torch.aten._embedding_bag": IndexedOperand(index=1, source=0, dim_operand=None),
    "torch.aten.index_select": _ALONG_DIM,
    "torch.aten.gather": _ALONG_DIM,
    "torch.aten.scatter.src": _ALONG_DIM,
    "torch.aten.scatter.value": _ALONG_DIM,
    "torch.aten.scatter.reduce": _ALONG_DIM,
    "torch.aten.scatter.value_reduce": _ALONG_DIM,
    "torch.aten.scatter_add": _ALONG_DIM,
    "torch.aten.scatter_reduce.two": _ALONG_DIM,
    "torch.aten.index_add": _ALONG_DIM,
    "torch.aten.index_copy": _ALONG_DIM,
    "torch.aten.index_fill.int_Scalar": IndexedOperand(2, 0, 1, negative=True),
    "torch.aten.index_fill.int_Tensor": IndexedOperand(2, 0, 1, negative=True),
    "torch.aten.take": IndexedOperand(index=1, source=0, dim_operand=None, dim=None,
                                      negative=True),
}
# Ops indexed by a list of optional index tensors, one per leading dimension (x[i, j]).
LIST_INDEXED = frozenset({"torch.aten.index.Tensor", "torch.aten.index.Tensor_hacked_twin",
                          "torch.aten.index_put", "torch.aten.index_put.hacked_twin",
                          "torch.aten._index_put_impl", "torch.aten._unsafe_index.Tensor",
                          "torch.aten._unsafe_index_put.hacked_twin"})
_BOOL = "!torch.bool"
_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


@kiln_pass(PASS)
def check_indices(module: ir.Operation, ctx: PassContext) -> None:
    """Assert, before each gather/scatter-like op, that its indices lie inside the tensor.

    Effect: an out-of-range index fails the call with IndexCheckError (as eager raises)
    instead of reading or writing outside a tensor.
    """
    for op in list(walk(module)):
        if op.name in OPS:
            checked = _check_operand(op, OPS[op.name])
        elif op.name in LIST_INDEXED:
            checked = _check_list(op)
        else:
            continue
        ctx.count(PASS, "checks", checked)


def _check_operand(op: ir.Operation, spec: IndexedOperand) -> int:
    source, index = op.operands[spec.source], op.operands[spec.index]
    shape = vtensor_shape(source.type)
    if shape is None or not _integer_tensor(index.type):
        return 0
    dim = spec.dim if spec.dim_operand is None else _constant_int(op.operands[spec.dim_operand])
    if spec.dim is not None:
        if dim is None or not -len(shape) <= dim < max(len(shape), 1):
            return 0
        dim %= max(len(shape), 1)
    op.operands[spec.index] = _checked(op, index, source, dim, spec.negative)
    return 1


def _check_list(op: ir.Operation) -> int:
    """x[i, j]: each index tensor of the list checked, in a new list built before `op`."""
    source, indices = op.operands[0], op.operands[1].owner
    if vtensor_shape(source.type) is None or not (
            isinstance(indices, ir.OpView)
            and indices.operation.name == "torch.prim.ListConstruct"):
        return 0
    elements, checked = [], 0
    for dim, index in enumerate(indices.operation.operands):
        if _integer_tensor(index.type):
            index, checked = _checked(op, index, source, dim, negative=True), checked + 1
        elements.append(index)
    with ir.InsertionPoint(op), op.location:
        op.operands[1] = ir.Operation.create(
            "torch.prim.ListConstruct", results=[indices.operation.result.type],
            operands=elements).result
    return checked


def _integer_tensor(value_type: ir.Type) -> bool:
    """A ranked integer tensor (bool masks select, they do not index)."""
    return vtensor_shape(value_type) is not None and vtensor_dtype(value_type) in _INDEX_DTYPES


def _constant_int(value: ir.Value) -> int | None:
    owner = value.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == "torch.constant.int":
        return ir.IntegerAttr(owner.operation.attributes["value"]).value
    return None


def _checked(op: ir.Operation, index: ir.Value, source: ir.Value, dim: int | None,
             negative: bool) -> ir.Value:
    """`index`, after an assert before `op` that `lo <= index < size` for each element of it
    (`dim` None: the size of the flattened `source`); with `negative`, a negative index plus
    `size`, as eager reads -1 as the last element (not every torch-mlir lowering does: index_put
    wrote before the tensor)."""
    scalar = tensor_type(torch.empty((), dtype=vtensor_dtype(index.type)))
    what = "the tensor" if dim is None else f"dimension {dim}"
    message = (f"{IndexCheckError.MESSAGE_PREFIX}: {op.name.removeprefix('torch.aten.')} got "
               f"an index outside {what} of the tensor it indexes "
               f"(at {render_location(op.location)})")
    with ir.InsertionPoint(op), op.location:
        size = (_op("torch.aten.numel", "!torch.int", source) if dim is None
                else _op("torch.aten.size.int", "!torch.int", source, torch_int(dim)))
        low = _op("torch.aten.neg.int", "!torch.int", size) if negative else torch_int(0)
        # Two scalar reductions, never a mask as large as the index: an index broadcast to
        # dynamic sizes made IREE allocate that mask on the stack, unbounded.
        # Compared on the device: read on the host, an i64 past 2**32 passed the check.
        flag = ir.Type.parse("!torch.vtensor<[],i1>")
        above = _op("torch.aten.ge.Scalar", flag, _op("torch.aten.min", scalar, index), low)
        below = _op("torch.aten.lt.Scalar", flag, _op("torch.aten.max", scalar, index), size)
        holds = _op("torch.aten.Bool.Tensor", _BOOL,
                    _op("torch.aten.logical_and", flag, above, below))
        ir.Operation.create("torch.runtime.assert", operands=[holds],
                            attributes={"message": ir.StringAttr.get(message)})
        if negative:   # where(index < 0, index + size, index): no division per element
            mask = ir.Type.parse(str(index.type).rpartition(",")[0] + ",i1>")
            index = _op("torch.aten.where.self", index.type,
                        _op("torch.aten.lt.Scalar", mask, index, torch_int(0)),
                        _op("torch.aten.add.Scalar", index.type, index, size, torch_int(1)),
                        index)
    return index


def _op(name: str, result: str | ir.Type, *operands: ir.Value) -> ir.Value:
    result_type = ir.Type.parse(result) if isinstance(result, str) else result
    return ir.Operation.create(name, results=[result_type], operands=list(operands)).result
