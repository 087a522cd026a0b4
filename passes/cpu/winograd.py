"""Winograd for 3x3 convolutions on the CPU: which convolutions, and by which algorithm.

`kiln-mark-winograd-convs` (large images) and `kiln-winograd-small-convs` (small images)
belong to `kiln-codegen-cpu`, on the linalg IR torch-mlir produced: the choice depends on
facts only Kiln has (a constant filter, the sizes). Both were measured on the CPU only (the
mark is read by the CPU target's flags); the GPU targets compile their own copy of the
linalg without them (GPU Winograd is unmeasured).

Large images, F(6,3) by IREE:

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
a bias left inside the convolution); everything else stays for im2col. Accuracy: F(6,3)'s transforms round more than a direct sum, about 1e-5 of the
output's magnitude against 1e-6 for im2col (measured against float64).

Small images, F(4,3) and F(2,3) written by Kiln (`passes/winograd_linalg.py`; IREE's ops
compute F(6,3) only), by the output's smaller side: 12 to 23 pixels with at least 64
channels get F(4,3) (4x4 tiles: 14x14 is 16 tiles a channel, 77% of them image), 6 to 23
with at least 128 channels F(2,3) (in effect 6 to 11 with 128+ channels, since F(4,3) is
tried first). Single convolutions, the sum of their dispatch times
against im2col + matmul: F(4,3) at 14x14 0.67x (64 channels), 0.52x (128), 0.41-0.49x (256);
F(2,3) at 7x7 0.74x (128), 0.78x (256), 0.72x (512), but 1.0x at 64 channels; F(4,3) at 7x7
(2x2 tiles) 0.97x.
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.cpu.tiles import DEFAULT, Tile
from kiln.passes.cpu.winograd_linalg import winograd_function
from kiln.passes.graph_values import owner_op
from kiln.passes.linalg_ir import static_shape
from kiln.passes.registry import PassContext, kiln_pass
from kiln.passes.splice import splice_function

PASS = "kiln-mark-winograd-convs"
SMALL_PASS = "kiln-winograd-small-convs"
ATTRIBUTE = "__winograd_conv"   # what IREE 3.13's conversion looks for
MIN_OUTPUT_SIZE = 24            # both output spatial dims; 24 = exactly four 6-wide tiles
MIN_CHANNELS = 16               # input and output channels
# Kiln's own F(m,3) below MIN_OUTPUT_SIZE: (m, smallest output side, fewest channels),
# tried in this order.
SMALL_TILES = ((4, 12, 64), (2, 6, 128))
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
        if op.name in _LAYOUTS and ATTRIBUTE not in op.attributes and _is_winograd_conv(op):
            size, channels = _size_and_channels(op)
            if size >= MIN_OUTPUT_SIZE and channels >= MIN_CHANNELS:
                op.attributes[ATTRIBUTE] = ir.UnitAttr.get()
                ctx.count(PASS, "convolutions marked for Winograd")


@kiln_pass(SMALL_PASS)
def winograd_small_convs(module: ir.Operation, ctx: PassContext, *, tile: str = DEFAULT
                         ) -> None:
    """Rewrite 3x3 stride-1 f32 NCHW convolutions of small images into Kiln's own Winograd.

    F(4,3) where the output's smaller side is 12-23 pixels (64+ channels), F(2,3) where it
    is 6-11 (128+ channels), as linalg (`winograd_linalg.py`), its products as packed
    matmuls on `tile` (as kiln-pack-matmuls' option). Effect: ResNet-50's stride-1 3x3
    convolutions of the 14x14 and 7x7 stages (seven), 6-13% off the whole model in
    interleaved A/B (benchmarks/flags.md).
    """
    registers = Tile.parse(tile)
    for op in list(walk(module)):
        if (op.name != "linalg.conv_2d_nchw_fchw" or not _is_winograd_conv(op)
                or not _input_fits_output(op)):
            continue
        size, channels = _size_and_channels(op)
        m = next((m for m, least_size, least_channels in SMALL_TILES
                  if least_size <= size < MIN_OUTPUT_SIZE and channels >= least_channels),
                 None)
        if m is not None:
            _rewrite(op, m, registers)
            ctx.count(SMALL_PASS, f"convolutions rewritten as Winograd F({m},3)")


def _input_fits_output(conv: ir.Operation) -> bool:
    """Whether the NCHW input is exactly the output plus the filter's border, as
    `winograd_function` assumes (linalg also accepts a larger input, rows of it unread)."""
    _, _, in_h, in_w = static_shape(conv.operands[0].type)
    _, _, out_h, out_w = static_shape(conv.results[0].type)
    return (in_h, in_w) == (out_h + 2, out_w + 2)


def _rewrite(conv: ir.Operation, m: int, tile: Tile) -> None:
    """Replace `conv` by the body of `winograd_function`; its zero accumulator (`linalg.fill`
    of a `tensor.empty`) goes too once nothing else uses it."""
    n, c, _, _ = static_shape(conv.operands[0].type)
    _, co, out_h, out_w = static_shape(conv.results[0].type)
    fill = owner_op(conv.operands[2])   # a linalg.fill: _starts_at_zero checked it
    splice_function(conv, winograd_function("winograd", n, c, co, out_h, out_w, m, tile),
                    list(conv.operands[:2]))
    if not list(fill.results[0].uses):
        empty = owner_op(fill.operands[1])
        fill.erase()
        if empty is not None and empty.name == "tensor.empty" and not list(empty.results[0].uses):
            empty.erase()


def _is_winograd_conv(op: ir.Operation) -> bool:
    """A 3x3, stride-1, dilation-1 f32 convolution of static shape, with a constant filter,
    accumulating into zeros."""
    _, _, _, filter_spatial = _LAYOUTS[op.name]
    shapes = [static_shape(v.type) for v in (op.operands[0], op.operands[1], op.results[0])]
    if any(shape is None for shape in shapes):
        return False
    if shapes[1][filter_spatial:filter_spatial + 2] != [3, 3]:
        return False
    if any(not _all_ones(op, name) for name in ("strides", "dilations")):
        return False
    element_types = {str(ir.RankedTensorType(v.type).element_type)
                     for v in (op.operands[0], op.operands[1], op.results[0])}
    return element_types == {"f32"} and _is_constant(op.operands[1]) and _starts_at_zero(op)


def _size_and_channels(op: ir.Operation) -> tuple[int, int]:
    """The smaller output side, and the fewer of input and output channels."""
    spatial, channel, filter_in, _ = _LAYOUTS[op.name]
    filter_shape = static_shape(op.operands[1].type)
    output_shape = static_shape(op.results[0].type)
    return (min(output_shape[spatial:spatial + 2]),
            min(output_shape[channel], filter_shape[filter_in]))


def _all_ones(op: ir.Operation, name: str) -> bool:
    """Whether the op's `strides` / `dilations` are all 1 (absent means 1)."""
    if name not in op.attributes:
        return True
    return all(int(v) == 1 for v in ir.DenseIntElementsAttr(op.attributes[name]))


def _starts_at_zero(op: ir.Operation) -> bool:
    """Whether the convolution accumulates into zeros (`linalg.fill` of 0.0).

    Both Winograds drop the accumulator (IREE's conversion keeps only its type, Kiln's
    rewrite starts its batch matmul from zeros): a convolution that starts from its
    broadcast bias (torch-mlir's form of a biased convolution that `kiln-split-conv-bias`
    did not split) would lose the bias.
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
