"""Which arguments of the entry function a compiled program may write in place.

IREE imports a caller's input buffer without a copy and, where a destination-style op takes
a function argument as its `outs` (torch-mlir lowers `sort`, `scatter`, `index_put` and
`slice_scatter` so), it writes the result into that buffer: the caller's tensor changes.
IREE folds away a clone of the argument placed in front (a `stream.tensor.clone` with one
user folds to its source, iree-org/iree#16168 and #24665, still open in IREE 3.13), so the
IR cannot protect the input. The runtime does: it hands these arguments to IREE as copies
and imports the others in place.
"""

from __future__ import annotations

from torch_mlir import ir

# Ops whose result is their operand seen differently (same buffer in IREE): a write into
# the result is a write into the operand.
_VIEWS = frozenset({"tensor.cast", "tensor.expand_shape", "tensor.collapse_shape",
                    "tensor.extract_slice", "tensor.reshape", "tensor.bitcast",
                    "flow.tensor.reshape", "flow.tensor.bitcast"})
# Destination-style ops: their operands are (ins..., outs...) by `operandSegmentSizes`,
# and they write into the `outs`.
_DPS_DIALECTS = ("linalg.", "tm_tensor.", "iree_linalg_ext.")
# Ops with one destination operand at a fixed position.
_DESTINATION_OPERAND = {"tensor.insert_slice": 1, "tensor.insert": 1,
                        "tensor.parallel_insert_slice": 1, "tensor.scatter": 1}
# Ops that only read their tensor operands (or pass them on to their caller).
_READERS = ("arith.", "math.", "tensor.dim", "tensor.extract", "tensor.empty", "tensor.pad",
            "tensor.concat", "tensor.gather", "tensor.rank", "func.return", "func.call")


def entry_function(module: ir.Module, entry: str = "main") -> ir.Operation:
    """The `func.func` named `entry` at the top of `module`."""
    for op in module.body.operations:
        op = op.operation
        if op.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == entry:
            return op
    raise ValueError(f"the module has no function '{entry}'")


def written_arguments(module: ir.Module, entry: str = "main") -> tuple[int, ...]:
    """The positions of `entry`'s arguments that the program may write in place.

    Conservative: an argument reaching an op this module does not know (a loop's carried
    value, say) counts as written.
    """
    arguments = entry_function(module, entry).regions[0].blocks[0].arguments
    return tuple(i for i, arg in enumerate(arguments) if _may_be_written(arg))


def _may_be_written(value: ir.Value) -> bool:
    pending, seen = [value], set()
    while pending:
        current = pending.pop()
        for use in current.uses:
            op, index = use.owner.operation, use.operand_number
            key = (op, index)
            if key in seen:
                continue
            seen.add(key)
            if op.name in _VIEWS:
                pending.extend(op.results)
            elif _writes_operand(op, index):
                return True
    return False


def _writes_operand(op: ir.Operation, index: int) -> bool:
    name = op.name
    if name in _DESTINATION_OPERAND:
        return index == _DESTINATION_OPERAND[name]
    if name.startswith(_DPS_DIALECTS):
        if "operandSegmentSizes" not in op.attributes:
            return not name.startswith("linalg.")  # linalg.index, .yield: no tensor operands
        ins = next(iter(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])))
        return index >= ins
    return not name.startswith(_READERS)
