"""Facts about torch-dialect ops that the frontends and the passes both need."""

from __future__ import annotations

import re

from torch_mlir import ir

# aten ops PyTorch also accepts on unbatched input ([C, *spatial]); the number of spatial
# dims is in the name (conv2d, max_pool1d_with_indices, conv_transpose3d.input).
_UNBATCHABLE = re.compile(
    r"torch\.aten\.(conv|conv_transpose|max_pool|avg_pool|adaptive_avg_pool|adaptive_max_pool"
    r"|lp_pool)(?P<dims>[123])d(_with_indices)?(\.\w+)?$")


def spatial_dims(name: str) -> int | None:
    """The spatial dims of a convolution or pooling with an unbatched form (`torch.aten.conv2d`:
    2), or None for any other op. Its input is unbatched when its rank is this plus one."""
    match = _UNBATCHABLE.match(name)
    return int(match.group("dims")) if match else None


def torch_int(value: int) -> ir.Value:
    """A `torch.constant.int` holding `value`, at the current insertion point."""
    return ir.Operation.create("torch.constant.int", results=[ir.Type.parse("!torch.int")],
                               attributes={"value": ir.IntegerAttr.get(
                                   ir.IntegerType.get_signless(64), value)}).result
