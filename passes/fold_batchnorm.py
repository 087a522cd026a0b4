"""`kiln-fold-batchnorm`: fold eval-mode batch norm (any per-channel affine) into conv/linear."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape
from kiln.dialects.torch_ops import CONVOLUTIONS
from kiln.passes.graph_values import (
    KnownValues,
    erase_dead,
    function_ops,
    new_param,
    owner_op,
    prune_params,
    replace_with_param_add,
    source_param,
    tensor_type,
    users,
)
from kiln.passes.registry import PassContext, kiln_pass

PASS = "kiln-fold-batchnorm"


@dataclass(frozen=True)
class Anchor:
    """An op whose output channels are scaled by its weight: where each lives."""

    result_axis: int         # channel axis of the result (negative: from the end)
    weight_axis: int         # output-channel axis of the weight operand (operand 1)
    bias: int | None         # operand index of the bias, None if the op has none


# Convolutions (`dialects.torch_ops.CONVOLUTIONS`) are anchors too; see _convolution_anchor.
_CONVOLUTION = Anchor(1, 0, 2)  # weight [Cout, Cin/groups, k...]
# A transposed convolution's weight is [Cin, Cout/groups, k...]: its output channels lie
# along axis 1, and along one axis only without groups.
_TRANSPOSED_CONVOLUTION = Anchor(1, 1, 2)
ANCHORS: dict[str, Anchor] = {
    "torch.aten.linear": Anchor(-1, 0, 2),       # weight [N, K]
    "torch.aten.mm": Anchor(-1, 1, None),        # export's linear: x @ weightᵀ, [K, N]
}
_ADD_SUB = {"torch.aten.add.Tensor": 1.0, "torch.aten.sub.Tensor": -1.0}


@kiln_pass(PASS)
def fold_batchnorm(module: ir.Operation, ctx: PassContext) -> None:
    """Fold eval-mode batch norm after conv (or linear) into the conv's weight and bias.

    Export decomposes eval `BatchNorm` into `(y - mean) * invstd * gamma + beta` with
    per-channel constants; the TorchScript frontend keeps `aten.batch_norm`, which is
    first rewritten into `y * scale + shift` here. Per-channel multiplies, adds and
    subtracts of known values (params) are then pushed into the producing
    convolution / linear / mm (`mm`'s additive part stays one `add` of a bias) when that
    producer has no other user; the new weights are computed in PyTorch and become
    `kiln.param`s (`conv1.weight#0`). Assumes eval mode: parameters are constants.
    Effect (benchmarks/ablation.py, ResNet-style CNN): each conv+BN pair loses its four
    elementwise ops over the activation; no batch-norm arithmetic reaches IREE.
    """
    known = KnownValues(ctx.params)  # type: ignore[arg-type]  # kiln.compile's dict
    for op in [op for op in function_ops(module) if op.name == "torch.aten.batch_norm"]:
        if _split_batch_norm(op, known):
            ctx.count(PASS, "batch norms made affine")
    erase_dead(function_ops(module))  # the split batch norms: their input has one user now
    while (change := _next_fold(module, known)) is not None:
        ctx.count(PASS, change)
        known = KnownValues(known.params)
    erase_dead(function_ops(module))
    prune_params(module, known.params)


def _next_fold(module: ir.Operation, known: KnownValues) -> str | None:
    """Apply one rewrite; what it did, or None when nothing applies."""
    for op in function_ops(module):
        if op.name not in (*_ADD_SUB, "torch.aten.mul.Tensor", "torch.aten.div.Tensor"):
            continue
        if (done := _fold_into_anchor(op, known) or _reassociate(op, known)) is not None:
            erase_dead(function_ops(module))
            return done
    return None


def _channel_vector(op: ir.Operation, x: ir.Value, c: ir.Value, known: KnownValues,
                    axis: int) -> torch.Tensor | None:
    """`c` as a [C] vector if it varies only along `x`'s channel `axis` and `op` keeps x's type."""
    shape, tensor = vtensor_shape(x.type), known.tensor(c)
    if shape is None or tensor is None or op.results[0].type != x.type or -1 in shape:
        return None
    if tensor.dim() > len(shape) or not tensor.is_floating_point():
        return None
    padded = [1] * (len(shape) - tensor.dim()) + list(tensor.shape)
    axis %= len(shape)
    if any(size != 1 for i, size in enumerate(padded) if i != axis):
        return None
    if padded[axis] not in (1, shape[axis]):
        return None
    return tensor.reshape(-1).expand(shape[axis]).contiguous()


def _anchor_of(value: ir.Value, known: KnownValues) -> tuple[ir.Operation, Anchor] | None:
    """The anchor op producing `value`, if `value` has no other user."""
    op = owner_op(value)
    if op is None or len(users(value)) != 1:
        return None
    if op.name in CONVOLUTIONS:
        return _convolution_anchor(op, known)
    return (op, ANCHORS[op.name]) if op.name in ANCHORS else None


def _convolution_anchor(op: ir.Operation,
                        known: KnownValues) -> tuple[ir.Operation, Anchor] | None:
    """A batched convolution, direct or transposed without groups, as an anchor."""
    result, weight = vtensor_shape(op.results[0].type), vtensor_shape(op.operands[1].type)
    if result is None or weight is None or len(result) != len(weight):
        return None  # unbatched (TorchScript's conv2d on [C, H, W]): channels on axis 0
    at = CONVOLUTIONS[op.name]
    transposed = at.transposed_value(op, known.get)
    if transposed is False:
        return op, _CONVOLUTION
    if transposed is True and known.get(op.operands[at.groups]) == 1:
        return op, _TRANSPOSED_CONVOLUTION
    return None  # grouped transposed: each group's output channels are a block of axis 1


def _alpha(op: ir.Operation, known: KnownValues) -> float | None:
    """The signed factor of the second operand of add/sub.Tensor, None if not known."""
    alpha = known.get(op.operands[2])
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        return None
    return _ADD_SUB[op.name] * alpha


def _fold_into_anchor(op: ir.Operation, known: KnownValues) -> str | None:
    """`anchor(x) * c`, `anchor(x) / c`, `anchor(x) ± c` -> anchor with new weight/bias."""
    y, c = op.operands[0], op.operands[1]
    if (found := _anchor_of(y, known)) is None:
        return None
    anchor, where = found
    if (vector := _channel_vector(op, y, c, known, where.result_axis)) is None:
        return None
    if op.name in _ADD_SUB:
        if where.bias is None or (alpha := _alpha(op, known)) is None:
            return None
        return _rebuild(op, anchor, where, known, scale=None, shift=alpha * vector)
    scale = vector if op.name == "torch.aten.mul.Tensor" else 1.0 / vector
    return _rebuild(op, anchor, where, known, scale=scale, shift=None)


def _rebuild(op: ir.Operation, anchor: ir.Operation, where: Anchor, known: KnownValues,
             scale: torch.Tensor | None, shift: torch.Tensor | None) -> str | None:
    """Replace `op` by a copy of `anchor` whose weight/bias absorb `scale`, then `shift`."""
    operands = list(anchor.operands)
    weight = known.tensor(operands[1])
    bias = known.tensor(operands[where.bias]) if where.bias is not None else None
    if weight is None or (where.bias is not None and bias is None
                          and known.get(operands[where.bias]) is not None):
        return None  # weight computed from activations, or a bias that is not known
    channels = (shift if shift is not None else scale).shape[0]
    bias = torch.zeros(channels, dtype=weight.dtype) if bias is None else bias
    with ir.InsertionPoint(op), op.location:
        if scale is not None:
            view = [1] * weight.dim()
            view[where.weight_axis] = channels
            operands[1] = new_param(known.params, source_param(operands[1]),
                                    weight * scale.reshape(view), operands[1].type, op.location)
            bias = bias * scale
        if where.bias is not None:
            named = (source_param(operands[where.bias]) if known.tensor(operands[where.bias])
                     is not None else source_param(operands[1]) + ".bias")
            operands[where.bias] = new_param(known.params, named,
                                             bias + (shift if shift is not None else 0),
                                             tensor_type(bias), op.location)
        new = ir.Operation.create(anchor.name, results=[op.results[0].type], operands=operands)
    op.results[0].replace_all_uses_with(new.results[0])
    return "scales folded into weights" if scale is not None else "shifts folded into biases"



def _channel_shaped(vector: torch.Tensor, like: ir.Value, axis: int) -> torch.Tensor:
    """`vector` ([C]) shaped to broadcast along `axis` of `like`: [C, 1, ...] or [C]."""
    rank = len(vtensor_shape(like.type) or [])
    return vector.reshape([vector.shape[0]] + [1] * (rank - 1 - axis % rank))


def _reassociate(op: ir.Operation, known: KnownValues) -> str | None:
    """`(anchor ± c1) * c2` -> `anchor * c2 ± c1·c2`; `(anchor ± c1) ± c2` -> one add."""
    inner = owner_op(op.operands[0])
    if inner is None or inner.name not in _ADD_SUB or len(users(inner.results[0])) != 1:
        return None
    y, c1 = inner.operands[0], inner.operands[1]
    if (found := _anchor_of(y, known)) is None or (alpha1 := _alpha(inner, known)) is None:
        return None
    axis = found[1].result_axis
    v1 = _channel_vector(inner, y, c1, known, axis)
    v2 = _channel_vector(op, inner.results[0], op.operands[1], known, axis)
    if v1 is None or v2 is None:
        return None
    if op.name in _ADD_SUB:
        if (alpha2 := _alpha(op, known)) is None:
            return None
        replace_with_param_add(op, y, _channel_shaped(alpha1 * v1 + alpha2 * v2, y, axis),
                               known.params, c1)
        return "affine ops reassociated"
    scale = v2 if op.name == "torch.aten.mul.Tensor" else 1.0 / v2
    with ir.InsertionPoint(op), op.location:
        scaled = ir.Operation.create(op.name, results=[y.type],
                                     operands=[y, op.operands[1]]).results[0]
    replace_with_param_add(op, scaled, _channel_shaped(alpha1 * v1 * scale, y, axis),
                           known.params, c1)
    return "affine ops reassociated"


def _split_batch_norm(op: ir.Operation, known: KnownValues) -> bool:
    """`aten.batch_norm(x, w, b, mean, var, training=False, ...)` -> `x * scale + shift`."""
    x, weight, bias, mean, var, training, _, eps, _ = op.operands
    stats = [known.tensor(mean), known.tensor(var)]
    if known.get(training) is not False or any(s is None for s in stats):
        return False
    if x.type != op.results[0].type:
        return False
    if not isinstance(epsilon := known.get(eps), float):
        return False
    gamma, beta = known.tensor(weight), known.tensor(bias)
    if (gamma is None and known.get(weight) is not None) or (
            beta is None and known.get(bias) is not None):
        return False
    scale = torch.rsqrt(stats[1] + epsilon) * (1.0 if gamma is None else gamma)
    shift = (0.0 if beta is None else beta) - stats[0] * scale
    scale_view = _channel_shaped(scale, x, 1)
    with ir.InsertionPoint(op), op.location:
        scale_param = new_param(known.params, source_param(mean), scale_view,
                                tensor_type(scale_view), op.location)
        scaled = ir.Operation.create("torch.aten.mul.Tensor", results=[x.type],
                                     operands=[x, scale_param]).results[0]
    replace_with_param_add(op, scaled, _channel_shaped(shift, x, 1), known.params, mean)
    return True


