"""PyTorch ops the torch dialect has no op for, decomposed into ops it has: one mechanism.

An op without a torch-dialect op (`aten::diff`, `aten::lstm`, `aten::gru`, `aten::unsafe_chunk`,
PyTorch's fused transformer fast paths, ...) is called on fake tensors of its operands' types
under `make_fx`, which records what it computes:
- CompositeImplicitAutograd ops (diff, lstm, gru, rnn_tanh/relu, the cells, unsafe_chunk)
  decompose through PyTorch's own C++ definitions. The RNNs come out as PyTorch's CPU
  algorithm: one matmul for the input projection of all steps at once, then the recurrence
  step by step (unrolled: the shapes, so the trip count, are static);
- ops PyTorch's C++ decompositions leave and the torch dialect lacks (`unsafe_split`) go
  through torch._decomp's table;
- PyTorch's fused fast paths, which have neither (`_native_multi_head_attention`,
  `_transformer_encoder_layer_fwd`, taken by `nn.MultiheadAttention` and
  `nn.TransformerEncoderLayer` in inference), through Kiln's definitions below, written from
  what ATen's kernels compute.
The recorded FX graph is imported with torch-mlir's FxImporter as a private function of the
module being built, and called: `decompose_operators` does this for each `kiln.decompose`
placeholder the TorchScript importer left, once torch-mlir's refinement has given its
operands static types, and inlines the calls. The torch.export frontend (and so `torch.compile(backend="kiln")`) adds Kiln's
definitions, `KILN_DECOMPOSITIONS`, to the table it gives `run_decompositions`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import torch
import torch._decomp
from torch.fx.experimental.proxy_tensor import make_fx
from torch_mlir import ir
from torch_mlir.dialects import func
from torch_mlir.extras.fx_importer import FxImporter
from torch_mlir.passmanager import PassManager

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.errors import FrontendError, UnsupportedOpError, first_line
from kiln.frontend.control_flow_types import through_casts

aten = torch.ops.aten
PLACEHOLDER = "kiln.decompose"  # the importer's stand-in for the op, its schema attached
DECOMPOSED = "kiln.decomposed"  # marks the private functions holding decompositions
_FILE_LINE = re.compile(r'"([^"]+)":(\d+)')
_DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
           "bf16": torch.bfloat16, "si64": torch.int64, "si32": torch.int32,
           "si16": torch.int16, "si8": torch.int8, "ui8": torch.uint8, "i1": torch.bool}


# ---------------------------------------------------------------------------------------------
# Kiln's definitions of PyTorch's fused fast paths


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None,
                    mask_type: int | None) -> torch.Tensor:
    """ATen's `_masked_softmax` on [B, H, L, S] scores: True in `mask` is left out (a row with
    nothing left is NaN, as the CPU kernel computes it). mask_type 0: [L, S]; 1: key padding
    [B, S]; 2: broadcastable."""
    if mask is None:
        return torch.softmax(scores, -1)
    mask = mask.to(torch.bool)
    if mask_type == 1:
        mask = mask[:, None, None, :]
    return torch.softmax(scores.masked_fill(mask, float("-inf")), -1)


def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                                proj_weight, proj_bias, mask=None, need_weights=True,
                                average_attn_weights=True, mask_type=None):
    """`aten::_native_multi_head_attention` (ATen's attention.cpp): batch-first [B, T, D]."""
    batch, length = query.shape[0], query.shape[1]
    head_dim = embed_dim // num_head
    w_q, w_k, w_v = qkv_weight.chunk(3, 0)
    b_q, b_k, b_v = qkv_bias.chunk(3, 0)

    def heads(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        projected = torch.nn.functional.linear(x, weight, bias)
        return projected.view(batch, -1, num_head, head_dim).transpose(1, 2)

    q = heads(query, w_q, b_q) / math.sqrt(head_dim)
    k, v = heads(key, w_k, b_k), heads(value, w_v, b_v)
    weights = _masked_softmax(q @ k.transpose(-2, -1), mask, mask_type)
    context = (weights @ v).transpose(1, 2).reshape(batch, length, embed_dim)
    out = torch.nn.functional.linear(context, proj_weight, proj_bias)
    if not need_weights:
        return out, query.new_empty(0)
    return out, weights.mean(1) if average_attn_weights else weights


def transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                                  proj_bias, use_gelu, norm_first, eps, norm_weight_1,
                                  norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
                                  ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None,
                                  mask_type=None):
    """`aten::_transformer_encoder_layer_fwd` (ATen's transformer.cpp)."""

    def norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, (embed_dim,), weight, bias, eps)

    x = norm(src, norm_weight_1, norm_bias_1) if norm_first else src
    x = native_multi_head_attention(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias,
                                    proj_weight, proj_bias, mask, False, True, mask_type)[0]
    x = x + src
    if not norm_first:
        x = norm(x, norm_weight_1, norm_bias_1)
    residual = x
    if norm_first:
        x = norm(x, norm_weight_2, norm_bias_2)
    hidden = torch.nn.functional.linear(x, ffn_weight_1, ffn_bias_1)
    hidden = torch.nn.functional.gelu(hidden) if use_gelu else torch.relu(hidden)
    x = torch.nn.functional.linear(hidden, ffn_weight_2, ffn_bias_2) + residual
    return norm(x, norm_weight_2, norm_bias_2) if not norm_first else x


def flash_attention_for_cpu(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """`aten._scaled_dot_product_flash_attention_for_cpu` as torch._decomp defines it, with
    the output laid out as the kernel lays it out: like `query`.

    torch._decomp's definition returns a (S, B, H, D)-ordered output whatever the query's
    layout; the graph was traced with the kernel's strides, so a later `.view` that was legal
    there is not (GPT-2's `attn_output.transpose(1, 2).reshape(...).view(-1, D)` failed to
    decompose: "Cannot view a tensor with shape [2, 16, 64] and strides (64, 128, 1)").
    """
    output, logsumexp = _TORCH_FLASH_ATTENTION(query, key, value, *args, **kwargs)
    order = sorted(range(query.dim()), key=lambda d: -query.stride(d))  # outermost first
    inverse = sorted(range(query.dim()), key=order.__getitem__)
    return output.permute(order).contiguous().permute(inverse), logsumexp


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """`aten.gelu` with `approximate="tanh"` by PyTorch's own formula (torch._refs).

    torch-mlir's lowering of the tanh form was off by up to 5e-5 (at x = 1.3); the exact
    (erf) form it lowers well, and is left to it.
    """
    if approximate != "tanh":
        return NotImplemented
    return _TORCH_GELU(x, approximate=approximate)


def _scalar_reduction(index: bool) -> Callable:
    """amax/amin (`index` False) or argmax/argmin (True) of a 0-d tensor, which torch-mlir
    cannot lower: the value itself, or index 0. Other inputs are left to torch-mlir."""
    def reduce(x: torch.Tensor, dim: object = None, keepdim: bool = False) -> torch.Tensor:
        if x.dim() != 0:
            return NotImplemented
        return torch.zeros((), dtype=torch.int64) if index else x.clone()
    return reduce


def _nan_ignoring(pick: Callable) -> Callable:
    """fmax/fmin: `pick` (maximum/minimum) of the two, or the other where one is NaN.
    torch-mlir's own lowering failed on broadcast operands ('tensor.cast' op ... cast
    incompatible)."""
    def nan_ignoring(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.isnan(a), b, torch.where(torch.isnan(b), a, pick(a, b)))
    return nan_ignoring


def log10(x: torch.Tensor) -> torch.Tensor:
    """`aten.log10` as log(x) / ln(10): IREE's CPU code calls libm's `log10f`, which its
    embedded ELF lacks ("iree-lld: error: undefined symbol: log10f")."""
    return torch.log(x) * (1 / math.log(10))


def empty_strided(size, stride, *, dtype=None, layout=None, device=None,
                  pin_memory=None) -> torch.Tensor:
    """`aten.empty_strided` as `empty`: a program of value tensors has no strides to keep
    (torch-mlir has no lowering for it; `new_zeros`/`new_full` reach it)."""
    return torch.empty(size, dtype=dtype, device=device)


def index_reduce(x: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor,
                 reduce: str, *, include_self: bool = True) -> torch.Tensor:
    """`aten.index_reduce` as the `scatter_reduce` it is, with the index along `dim`
    broadcast over `source` (torch-mlir has no lowering for it)."""
    if source.dim() == 0:  # a 0-d tensor is indexed as one of one element
        return index_reduce(x.reshape(1), 0, index.reshape(1), source.reshape(1), reduce,
                            include_self=include_self).reshape(x.shape)
    shape = [1] * source.dim()
    shape[dim % source.dim()] = -1
    return x.scatter_reduce(dim, index.view(shape).expand_as(source), source, reduce,
                            include_self=include_self)


_TORCH_GELU = torch._decomp.decomposition_table[aten.gelu.default]
_TORCH_FLASH_ATTENTION = torch._decomp.decomposition_table[
    aten._scaled_dot_product_flash_attention_for_cpu.default]

KILN_DECOMPOSITIONS: dict[torch._ops.OpOverload, Callable] = {
    aten._native_multi_head_attention.default: native_multi_head_attention,
    aten._transformer_encoder_layer_fwd.default: transformer_encoder_layer_fwd,
    aten._scaled_dot_product_flash_attention_for_cpu.default: flash_attention_for_cpu,
    aten.gelu.default: gelu,
    aten.amax.default: _scalar_reduction(index=False),
    aten.amin.default: _scalar_reduction(index=False),
    aten.argmax.default: _scalar_reduction(index=True),
    aten.argmin.default: _scalar_reduction(index=True),
    aten.fmax.default: _nan_ignoring(torch.maximum),
    aten.fmin.default: _nan_ignoring(torch.minimum),
    aten.log10.default: log10,
    aten.empty_strided.default: empty_strided,
    aten.index_reduce.default: index_reduce,
}


# ---------------------------------------------------------------------------------------------
# The mechanism


class _Unknown:
    """An argument that is not known yet: a tensor of open type, a value computed at run time."""


UNKNOWN = _Unknown()


def find_overload(schema: torch._C.FunctionSchema) -> torch._ops.OpOverload | None:
    """The Python OpOverload of `schema`, or None where PyTorch has none."""
    namespace, _, name = schema.name.partition("::")
    packet = getattr(getattr(torch.ops, namespace, None), name, None)
    return getattr(packet, schema.overload_name or "default", None)


def decompose_operators(module: ir.Module) -> bool:
    """Replace each `kiln.decompose` placeholder whose arguments are known (tensor types
    static, everything else constant) by a call of its decomposition, then inline the calls.

    Returns whether any was replaced; the caller refines types and calls again, since one
    decomposition's results may be what the next one waits for.
    """
    done = False
    for op in [op for op in walk(module.operation) if op.name == PLACEHOLDER]:
        schema = _schema(op)
        tensors: list[ir.Value] = []
        args = [_python_value(v, tensors) for v in op.operands]
        if any(a is UNKNOWN for a in _flatten(args)):  # (`in` would compare tensors)
            continue
        with ir.InsertionPoint(op), op.location:
            results = decompose(module, find_overload(schema), args, tensors)
            if len(op.results) == 1 and str(op.results[0].type).startswith("!torch.list<"):
                results = [ir.Operation.create(  # a Tensor[] result (unsafe_chunk's)
                    "torch.prim.ListConstruct", results=[op.results[0].type],
                    operands=results).result]
            if len(results) != len(op.results):
                raise FrontendError(f"the decomposition of {schema.name} returns {len(results)} "
                                    f"values, not {len(op.results)}")
            for old, new in zip(op.results, results, strict=True):
                old.replace_all_uses_with(_cast(new, old.type))
        op.erase()
        done = True
    if done:
        _inline_decompositions(module)
    return done


def pending(module: ir.Module) -> bool:
    """Whether a placeholder is left."""
    return any(op.name == PLACEHOLDER for op in walk(module.operation))


def check_decomposed(module: ir.Module) -> None:
    """UnsupportedOpError for the first placeholder left: its arguments never became known."""
    for op in walk(module.operation):
        if op.name == PLACEHOLDER:
            schema = _schema(op)
            raise UnsupportedOpError(
                schema.name, where=_file_line(op.location),
                hint="the torch dialect has no op for it, and Kiln decomposes it only where "
                     "its tensors' shapes and dtypes are known and its other arguments are "
                     "constants")


def decompose(module: ir.Module, op: torch._ops.OpOverload, args: Sequence[object],
              tensors: Sequence[ir.Value]) -> list[ir.Value]:
    """Emit `op(*args)` at the current insertion point as a call of its decomposition.

    `args` are the op's arguments in schema order: Python constants, and placeholder tensors
    (`_fake_tensor`, also inside lists) standing for `tensors` in order. Returns the op's
    results, flattened.
    """
    placeholders = [a for a in _flatten(args) if isinstance(a, torch.Tensor)]

    def call(*flat: torch.Tensor) -> object:
        swap = dict(zip(map(id, placeholders), flat, strict=True))
        return op(*_rebuild(args, swap))

    try:
        with torch.backends.mkldnn.flags(enabled=False):  # RNNs: ATen's own CPU algorithm
            graph = make_fx(call, decomposition_table=KILN_DECOMPOSITIONS,
                            tracing_mode="fake")(*placeholders)
        # PyTorch's C++ decompositions update in place (the RNN cells' `add_`) and may use ops
        # the torch dialect lacks (`unsafe_split`): functionalize what they recorded and
        # decompose those ops with torch._decomp's table, in a second trace.
        graph = make_fx(torch.func.functionalize(graph), decomposition_table=_table_for(graph),
                        tracing_mode="fake")(*placeholders)
    except Exception as e:  # PyTorch's own argument checks, or an op with no meta kernel
        raise FrontendError(f"Kiln could not decompose {op.name()}: {first_line(e)}") from e
    graph.graph.eliminate_dead_code()
    name = f"__kiln_decomposed_{len(list(module.body.operations))}"
    with ir.InsertionPoint(module.body), ir.Location.unknown():
        function = FxImporter(module=module, config_check=False).import_stateless_graph(
            graph.graph, func_name=name, func_visibility="private")
    function.attributes[DECOMPOSED] = ir.UnitAttr.get()
    function_type = ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value)
    operands = [_cast(v, t) for v, t in zip(tensors, function_type.inputs, strict=True)]
    return list(func.CallOp(function_type.results, name, operands).results)


def _table_for(graph: torch.fx.GraphModule) -> dict:
    """torch._decomp's decompositions of the ops in `graph` that the torch dialect lacks."""
    context = ir.Context.current
    missing = {node.target for node in graph.graph.nodes
               if isinstance(node.target, torch._ops.OpOverload)
               and not context.is_registered_operation(_torch_dialect_name(node.target))}
    return {op: fn for op, fn in torch._decomp.decomposition_table.items() if op in missing}


def _torch_dialect_name(op: torch._ops.OpOverload) -> str:
    namespace, _, name = op.name().partition("::")
    name, _, overload = name.partition(".")
    return ".".join(p for p in ("torch", namespace, name,
                                "" if overload == "default" else overload) if p)


def _inline_decompositions(module: ir.Module) -> None:
    """Inline every call of a decomposition and drop the private functions (the inliner
    drops those it inlined everywhere itself)."""
    PassManager.parse("builtin.module(inline)").run(module.operation)
    for function in [op for op in module.body.operations if DECOMPOSED in op.attributes]:
        function.operation.erase()


def _schema(op: ir.Operation) -> torch._C.FunctionSchema:
    return torch._C.parse_schema(ir.StringAttr(op.attributes["schema"]).value)


def _python_value(value: ir.Value, tensors: list[ir.Value]) -> object:
    """`value` as a decomposition's argument: a Python constant, a list of them, or a
    placeholder tensor (appending the value it stands for to `tensors`); UNKNOWN otherwise."""
    value = through_casts(value)  # the refined type, not the one this op was built with
    if str(value.type).startswith("!torch.vtensor"):
        fake = _fake_tensor(value)
        if fake is not UNKNOWN:
            tensors.append(value)
        return fake
    if isinstance(value.owner, ir.Block):
        return UNKNOWN
    producer = value.owner.operation
    if producer.name in ("torch.prim.ListConstruct", "torch.derefine"):
        items = [_python_value(v, tensors) for v in producer.operands]
        return items if producer.name == "torch.prim.ListConstruct" else items[0]
    if producer.name == "torch.constant.none":
        return None
    if not producer.name.startswith("torch.constant."):
        return UNKNOWN
    attribute = producer.attributes["value"]
    if isinstance(attribute, (ir.BoolAttr, ir.IntegerAttr, ir.FloatAttr)):
        return attribute.value
    return ir.StringAttr(attribute).value


def _fake_tensor(value: ir.Value) -> torch.Tensor | _Unknown:
    """An uninitialized tensor of `value`'s static type (make_fx fakes it; never read)."""
    shape = vtensor_shape(value.type)
    dtype = _DTYPES.get(str(value.type).rpartition(",")[2].rstrip(">"))
    if shape is None or dtype is None or any(d < 0 for d in shape):
        return UNKNOWN
    return torch.empty(shape, dtype=dtype)


def _file_line(location: ir.Location) -> str | None:
    match = _FILE_LINE.search(str(location))
    return f"{match[1]}:{match[2]}" if match else None


def _cast(value: ir.Value, to: ir.Type) -> ir.Value:
    if value.type == to:
        return value
    return ir.Operation.create("torch.tensor_static_info_cast", results=[to],
                               operands=[value]).result


def _flatten(args: object) -> list[object]:
    if isinstance(args, (list, tuple)):
        return [leaf for item in args for leaf in _flatten(item)]
    return [args]


def _rebuild(args: object, swap: dict[int, torch.Tensor]) -> object:
    if isinstance(args, (list, tuple)):
        return type(args)(_rebuild(item, swap) for item in args)
    if isinstance(args, torch.Tensor):
        return swap[id(args)]
    return args
