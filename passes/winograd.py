"""`kiln-mark-winograd-convs`: pick the 3x3 convolutions IREE should compute by Winograd.

IREE has a Winograd F(6,3) conversion (`iree-linalg-ext-convert-conv2d-to-winograd`, run
in the CPU target's preprocessing, `runtime/targets.py`): a filter transform, an input
transform, a batch matmul over the 64 tile positions and an output transform. It rewrites
only convolutions carrying the unit attribute `__winograd_conv`; this pass decides which,
on the linalg IR torch-mlir produced, because the choice depends on facts only Kiln has:

- the filter must be a constant (a weight), so IREE hoists its transform out of the call:
  computed once at compile or load time instead of on every call (`targets.py` raises
  IREE's size-increase limit for hoisted constants so that the 7x larger transformed
  filters qualify);
- the convolution must be big enough: below 16 channels the transforms cost more than the
  multiplications they save, and at 7x7 the 6x6 tiles are mostly padding. At 14x14 it still
  gains alone, but on ResNet-50 only ~1% for 84 MB more resident filters, so the output
  must be at least 24x24 (single convolutions 0.48-0.81x the time of im2col + matmul there;
  measured in `benchmarks/flags.md`).

Only stride-1, dilation-1, 3x3, f32 `linalg.conv_2d_nchw_fchw` / `conv_2d_nhwc_hwcf`
accumulating into zeros qualify (IREE's conversion drops any other starting value, such as
a bias left inside the convolution); everything else stays for im2col. Other targets ignore
the attribute. Accuracy: F(6,3)'s transforms round more than a direct sum, about 1e-5 of the
output's magnitude against 1e-6 for im2col (measured against float64).
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.graph_values import owner_op
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-mark-winograd-convs"
ATTRIBUTE = "__winograd_conv"   # what IREE 3.13's conversion looks for
MIN_OUTPUT_SIZE = 24            # both output spatial dims; 24 = exactly four 6-wide tiles
MIN_CHANNELS = 16               # input and output channels
# Op name -> (index of the first spatial dim of the output, of the channel dim of the
# output, of the filter's input-channel dim, of the filter's first spatial dim).
_LAYOUTS = {
    "linalg.conv_2d_nchw_fchw": (2, 1, 1, 2),
    "linalg.conv_2d_nhwc_hwcf": (1, 3, 2, 0),
}


@kiln_pass(PASS)
def mark_winograd_convs(module: ir.Operation, ctx: PassContext) -> None:
    """Mark large stride-1 3x3 f32 convolutions with constant filters `__winograd_conv`.

    Runs on linalg (after torch-mlir's lowering); the mark makes IREE's CPU preprocessing
    rewrite the convolution as Winograd F(6,3). Effect: ResNet-50 (its 56x56 and 28x28
    stages' six 3x3 convolutions) 6-9% faster in interleaved A/B (benchmarks/flags.md).
    """
    for op in walk(module):
        if op.name in _LAYOUTS and ATTRIBUTE not in op.attributes and _qualifies(op):
            op.attributes[ATTRIBUTE] = ir.UnitAttr.get()
            ctx.count(PASS, "convolutions marked for Winograd")


def _qualifies(op: ir.Operation) -> bool:
    spatial, channel, filter_in, filter_spatial = _LAYOUTS[op.name]
    shapes = [_static_shape(v.type) for v in (op.operands[0], op.operands[1], op.results[0])]
    if any(shape is None for shape in shapes):
        return False
    _, filter_shape, output_shape = shapes
    if filter_shape[filter_spatial:filter_spatial + 2] != [3, 3]:
        return False
    if min(output_shape[spatial:spatial + 2]) < MIN_OUTPUT_SIZE:
        return False
    if min(output_shape[channel], filter_shape[filter_in]) < MIN_CHANNELS:
        return False
    if any(not _all_ones(op, name) for name in ("strides", "dilations")):
        return False
    element_types = {str(ir.RankedTensorType(v.type).element_type)
                     for v in (op.operands[0], op.operands[1], op.results[0])}
    return element_types == {"f32"} and _is_constant(op.operands[1]) and _starts_at_zero(op)


def _static_shape(value_type: ir.Type) -> list[int] | None:
    try:
        tensor = ir.RankedTensorType(value_type)
    except ValueError:
        return None
    return list(tensor.shape) if tensor.has_static_shape else None


def _all_ones(op: ir.Operation, name: str) -> bool:
    """Whether the op's `strides` / `dilations` are all 1 (absent means 1)."""
    if name not in op.attributes:
        return True
    return all(int(v) == 1 for v in ir.DenseIntElementsAttr(op.attributes[name]))


def _starts_at_zero(op: ir.Operation) -> bool:
    """Whether the convolution accumulates into zeros (`linalg.fill` of 0.0).

    IREE's conversion takes only the type of the accumulator: a convolution that starts
    from its broadcast bias (torch-mlir's form of a biased convolution that
    `kiln-split-conv-bias` did not split) would lose the bias.
    """
    fill = owner_op(op.operands[2])
    if fill is None or fill.name != "linalg.fill":
        return False
    value = owner_op(fill.operands[0])
    if value is None or value.name != "arith.constant":
        return False
    try:
        return ir.FloatAttr(value.attributes["value"]).value == 0.0
    except ValueError:  # not a float
        return False


def _is_constant(value: ir.Value) -> bool:
    """Whether `value` is an `arith.constant` (a weight, inlined or an IREE parameter)."""
    return (op := owner_op(value)) is not None and op.name == "arith.constant"
