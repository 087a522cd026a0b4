"""`kiln-split-conv-batch`: a batched NCHW convolution becomes one convolution per image.

IREE 3.13 makes a batched `linalg.conv_2d_nchw_fchw` a `matmul_like` generic that misses
the data-tiled matmul path (a 1x1 convolution, 1024 -> 256 channels at 14x14, batch 8: 11.2 ms
at 74 GFLOP/s), while a batch of one is a plain data-tiled matmul (142 GFLOP/s for the same
work). Moving the batch into the matmul's columns costs a transpose IREE runs at 1.5 GB/s, so
this pass does the simplest thing that reaches the fast path: one convolution per image on
`tensor.extract_slice`s of the input and the accumulator, their results inserted into one
tensor (the same 1x1 convolution: 17.1-17.9 ms -> 9.9-10.5 ms; `benchmarks/flags.md`).

Runs after the Winograd passes. Kiln's own Winograd folds the batch into its tiles, so it
never sees those. Convolutions marked `__winograd_conv` for IREE's F(6,3) are split too, each
image keeping the mark: IREE's Winograd transforms slow down more than the batch grows (at
56x56 and batch 4, 4.1 ms for the input transform and 3.4 ms for the output transform
against 0.58 and 0.27 ms at batch 1). Part of `kiln-codegen-cpu` (measured on the CPU), for
batches of 2 to MAX_BATCH images (each image is a dispatch of its own).
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.cpu.winograd import ATTRIBUTE as WINOGRAD
from kiln.passes.graph_values import owner_op
from kiln.passes.registry import PassContext, kiln_pass
from kiln.passes.splice import splice_function

PASS = "kiln-split-conv-batch"
MAX_BATCH = 16
_CONVOLUTION = "linalg.conv_2d_nchw_fchw"


@kiln_pass(PASS)
def split_conv_batch(module: ir.Operation, ctx: PassContext) -> None:
    """Split each batched static-shape NCHW convolution into one per image (CPU only)."""
    for op in list(walk(module)):
        if op.name != _CONVOLUTION:
            continue
        types = [ir.RankedTensorType(v.type) for v in (*op.operands, op.results[0])]
        if not all(t.has_static_shape for t in types) or not 2 <= types[0].shape[0] <= MAX_BATCH:
            continue
        if _padded_pooling(op.operands[0]):
            continue
        splice_function(op, _per_image_function(op, types), list(op.operands))
        ctx.count(PASS, "batched convolutions split per image")


def _per_image_function(op: ir.Operation, types: list[ir.RankedTensorType]) -> str:
    """`func.func private @per_image(%x, %w, %acc)`: the convolution, one image at a time."""
    x_type, w_type, acc_type, _ = types
    x_shape, y_shape = ([1, *t.shape[1:]] for t in (x_type, acc_type))
    x1, y1 = (f"tensor<{'x'.join(map(str, shape))}x{t.element_type}>"
              for shape, t in ((x_shape, x_type), (y_shape, acc_type)))
    x_sizes, y_sizes = (", ".join(map(str, shape)) for shape in (x_shape, y_shape))
    attributes = ", ".join(f"{name} = {op.attributes[name]}"
                           for name in ("dilations", "strides") if name in op.attributes)
    if WINOGRAD in op.attributes:
        attributes = f"{WINOGRAD}, {attributes}" if attributes else WINOGRAD
    lines = [f"%r0 = tensor.empty() : {acc_type}"]
    for i in range(x_type.shape[0]):
        lines += [
            (f"%x{i} = tensor.extract_slice %x[{i}, 0, 0, 0] [{x_sizes}] [1, 1, 1, 1] : "
             f"{x_type} to {x1}"),
            (f"%a{i} = tensor.extract_slice %acc[{i}, 0, 0, 0] [{y_sizes}] [1, 1, 1, 1] : "
             f"{acc_type} to {y1}"),
            (f"%y{i} = {_CONVOLUTION} {{{attributes}}} ins(%x{i}, %w : {x1}, {w_type}) "
             f"outs(%a{i} : {y1}) -> {y1}"),
            (f"%r{i + 1} = tensor.insert_slice %y{i} into %r{i}[{i}, 0, 0, 0] [{y_sizes}] "
             f"[1, 1, 1, 1] : {y1} into {acc_type}"),
        ]
    body = "\n    ".join(lines)
    return (f"func.func private @per_image(%x: {x_type}, %w: {w_type}, %acc: {acc_type}) "
            f"-> {acc_type} {{\n    {body}\n    return %r{x_type.shape[0]} : {acc_type}\n}}")


def _padded_pooling(value: ir.Value) -> bool:
    """Whether `value` is a `tensor.pad` of a pooling's result. IREE 3.13 cannot distribute
    the pooling's dispatch once per-image slices of the padded result follow ("write
    affecting operations on global resources are restricted to workgroup distributed
    contexts"; a max pooling feeding a transposed convolution, tests/test_graph_passes.py)."""
    pad = owner_op(value)
    if pad is None or pad.name != "tensor.pad":
        return False
    source = owner_op(pad.operands[0])
    return source is not None and source.name.startswith("linalg.pooling_")
