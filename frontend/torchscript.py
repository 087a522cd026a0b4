"""The TorchScript frontend: a scripted or traced `torch._C.Graph` imported into kiln + torch.

What happens, in order:

1. Preparation, in TorchScript itself (`_prepare`): modules are frozen (weights become
   `prim::Constant` tensors) and inlined; Python scalar and `None` inputs, and arguments left
   out for their defaults (`ConvTranspose2d.forward`'s `output_size=None`), are *specialized*:
   each becomes a constant in the graph and stops being an input (the compiled module takes
   only the tensor inputs); tensor inputs get the exact type of their example; then TorchScript's
   own constant propagation, `remove_mutation`, complete shape analysis and shape peepholes run
   (the peepholes fold `x.size(0)` to a constant, so `range(xs.size(0))` has a known trip count).
2. Import (`GraphImporter`): one walk over the nodes. `aten::*` nodes (and the few `prim::`
   ops in `SCHEMA_PRIMS`) become `torch.<ns>.<name>[.<overload>]` from their schema, one
   table-driven path; structure is handled by `@special_form` rules: `prim::If` -> `kiln.if`,
   `prim::Loop` -> `kiln.loop`, constants, lists, tuples, dicts, attributes. Anything else is an
   `UnsupportedOpError` naming the op and its source line. Every op's location is the node's
   TorchScript source range (`file:line`).
3. Types: TorchScript's shape analysis knows few ops (not even `aten::linear`), so types are
   refined in MLIR: the importer emits `torch.prim.If`/`torch.prim.Loop` first and runs
   torch-mlir's simplification pipeline *without decompositions* (kiln-graph must still see
   `aten.linear`), which refines straight-line code but not control-flow results. Its shape
   functions take convolutions and poolings to be batched, so one refined to an unbatched
   input (`conv2d` on `[C, H, W]`) is imported again with a batch of one (`emit_batched`).
   The importer then joins the types flowing into each If/Loop result (`control_flow_types`) and imports
   again with those types, until they stop changing; then a result whose dtype torch-mlir
   still misses (ops on tensor lists such as `aten.stack`) gets it from PyTorch's meta kernel
   (`complete_dtypes`), and the If/Loop ops become `kiln.if`/`kiln.loop`.

Beyond the schema path: a Python scalar where a Tensor argument is expected (a traced `x * 2`)
selects the op's Scalar overload (`scalar_overload`); an op the torch dialect lacks becomes a
`kiln.decompose` placeholder that `decompositions` replaces once its operands' types are known;
an in-place op TorchScript's remove_mutation left (a write into a slice) is imported in its
functional form, with `slice_scatter`/`select_scatter` writing views back into their base,
where no input, weight or stale alias makes that differ from eager (`functionalize`).

Lists are tracked statically: a list is a Python list of MLIR values, `aten::append` adds to it,
and a `torch.prim.ListConstruct` is emitted where the list is read. A `for` loop that appends
to a list is unrolled when its trip count is a constant (static shapes), since a growing list
cannot be a loop-carried value; appending inside a loop or branch that stays dynamic is an
`UnsupportedOpError`.

Tracing (`trace_module`) keeps only the path the example inputs took: `torch.jit.trace`'s
TracerWarnings (raised by data-dependent control flow) are surfaced as `TracingWarning`.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils import _pytree as pytree
from torch_mlir import ir
from torch_mlir.dialects import func

from kiln.dialects.context import new_context
from kiln.dialects.kiln import vtensor_shape, walk
from kiln.dialects.torch_ops import spatial_dims, torch_int, with_batch_of_one
from kiln.errors import FrontendError, UnsupportedOpError, first_line
from kiln.frontend import decompositions
from kiln.frontend.control_flow_types import (
    SCALAR_TYPE_TO_MLIR,
    TORCH_DTYPE_TO_SCALAR,
    complete_dtypes,
    control_flow_types,
    fold_identity_tests,
    join_types,
    outputs_attribute,
    raise_control_flow,
    refine,
    retype_main,
)
from kiln.frontend.dims import DynamicDims, user_guards
from kiln.frontend.export import ImportedProgram
from kiln.spec import ScalarSpec, Signature, TensorSpec

log = logging.getLogger(__name__)

ScriptLike = torch.jit.ScriptModule | torch.jit.ScriptFunction

SpecialForm = Callable[["GraphImporter", torch._C.Node], None]
SPECIAL_FORMS: dict[str, SpecialForm] = {}

# prim:: ops imported generically from their schema, like aten ops (torch.prim.<name>...).
SCHEMA_PRIMS = frozenset({"prim::NumToTensor", "prim::dtype", "prim::device", "prim::layout",
                          "prim::min", "prim::max"})
# Python operator spellings of ops torch-mlir lowers only under their other name.
OPERATOR_ALIASES = {"aten::__and__": "aten::bitwise_and", "aten::__or__": "aten::bitwise_or",
                    "aten::__xor__": "aten::bitwise_xor"}
SIMPLE_TYPES: dict[str, str] = {
    "IntType": "!torch.int", "FloatType": "!torch.float", "BoolType": "!torch.bool",
    "NoneType": "!torch.none", "StringType": "!torch.str", "DeviceObjType": "!torch.Device",
    "NumberType": "!torch.number",
}
# Small tensor constants stay literals in the IR; larger ones become kiln.param.
LITERAL_DTYPES = frozenset({torch.float32, torch.float64, torch.int64, torch.int32, torch.bool})
MAX_UNROLL = 1024
MAX_TYPE_ROUNDS = 6
# On convolutions and poolings until the types settle: the Value.unique() of output 0.
OUTPUT_MARK = "kiln.output"
_SOURCE_LINE = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)')
_TRACED_FRAME = re.compile(r"^(?P<path>[^\n]+?)\((?P<line>\d+)\): \S+$", re.MULTILINE)
_TORCH_PACKAGE = os.path.dirname(torch.__file__) + os.sep


class TracingWarning(UserWarning):
    """torch.jit.trace saw data-dependent behaviour; the traced graph keeps one path only."""


def special_form(kind: str) -> Callable[[SpecialForm], SpecialForm]:
    """Register `rule(importer, node)` as the import of TorchScript nodes of `kind`."""

    def register(rule: SpecialForm) -> SpecialForm:
        assert kind not in SPECIAL_FORMS, f"two rules for {kind}"
        SPECIAL_FORMS[kind] = rule
        return rule

    return register


def torch_op_name(schema: torch._C.FunctionSchema) -> str:
    """'aten::add.Tensor(...)' -> 'torch.aten.add.Tensor'; 'aten::relu(...)' -> 'torch.aten.relu'."""
    namespace, _, name = schema.name.partition("::")
    return ".".join(part for part in ("torch", namespace, name, schema.overload_name) if part)


def source_position(node: torch._C.Node) -> tuple[str, int] | None:
    """The Python file and line `node` came from, or None where TorchScript kept none.

    A scripted node's source range quotes its code (`File "m.py", line 12`); a traced node's
    is the Python stack at the call (`m.py(12): forward`, innermost first), where the first
    frame outside torch's own package is the model's line.
    """
    try:
        text = node.sourceRange() or ""
    except RuntimeError:  # read lazily from a damaged archive's debug info: no position
        return None
    if (match := _SOURCE_LINE.search(text)) is not None:
        return match["path"], int(match["line"])
    frames = [(m["path"], int(m["line"])) for m in _TRACED_FRAME.finditer(text)]
    ours = [f for f in frames if not f[0].startswith(_TORCH_PACKAGE)]
    return (ours or frames or [None])[0]


def source_line(node: torch._C.Node) -> str | None:
    """`path:line` of `node`'s Python source, or None where it has none."""
    position = source_position(node)
    return f"{position[0]}:{position[1]}" if position else None


def source_location(node: torch._C.Node) -> ir.Location:
    """The MLIR location of `node`: its source file and line, or unknown."""
    position = source_position(node)
    return ir.Location.file(position[0], position[1], 0) if position else ir.Location.unknown()


# ---------------------------------------------------------------------------------------------
# Types


def mlir_type_text(ts_type: torch._C.Type) -> str:
    """The torch-dialect spelling of a TorchScript type, e.g. '!torch.vtensor<[3,4],f32>'."""
    kind = ts_type.kind()
    if (simple := SIMPLE_TYPES.get(kind)) is not None:
        return simple
    if (rule := _CONTAINER_TYPES.get(kind)) is None:
        raise FrontendError(f"Kiln cannot import values of TorchScript type {ts_type}")
    return rule(ts_type)


def _tensor_type(ts_type: torch._C.TensorType) -> str:
    scalar = ts_type.scalarType()
    if scalar is not None and scalar not in SCALAR_TYPE_TO_MLIR:
        raise FrontendError(f"Kiln cannot import tensors of dtype {scalar}")
    sizes = ts_type.varyingSizes()
    if scalar is None and sizes is None:
        return "!torch.vtensor"
    dims = "*" if sizes is None else "[" + ",".join("?" if d is None else str(d) for d in sizes) + "]"
    return f"!torch.vtensor<{dims},{SCALAR_TYPE_TO_MLIR.get(scalar, 'unk')}>"


def _inner(ts_type: torch._C.Type) -> str:
    return mlir_type_text(ts_type).removeprefix("!torch.")


_CONTAINER_TYPES: dict[str, Callable[[torch._C.Type], str]] = {
    "TensorType": _tensor_type,
    "ListType": lambda t: f"!torch.list<{_inner(t.getElementType())}>",
    "OptionalType": lambda t: f"!torch.optional<{_inner(t.getElementType())}>",
    "TupleType": lambda t: f"!torch.tuple<{', '.join(_inner(e) for e in t.elements())}>",
    "DictType": lambda t: f"!torch.dict<{_inner(t.getKeyType())}, {_inner(t.getValueType())}>",
}


# ---------------------------------------------------------------------------------------------
# Entry points


def import_model(model: object, example_inputs: tuple, frontend: str,
                 dynamic_dims: DynamicDims | None = None) -> ImportedProgram:
    """Script, trace or load `model` as `frontend` asks, then import it (kiln.compile's door)."""
    if isinstance(model, (str, os.PathLike)):
        model = load_archive(model)
    elif frontend == "script" and not isinstance(model, ScriptLike):
        model = script_module(model)
    elif frontend == "trace" and not isinstance(model, ScriptLike):
        model = trace_module(model, example_inputs)
    return import_script(model, example_inputs, dynamic_dims)


def load_archive(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """`torch.jit.load(path)` on the CPU, failing with a FrontendError."""
    try:
        return torch.jit.load(os.fspath(path), map_location="cpu")
    except Exception as e:  # a damaged archive fails in many ways (IndexError, RuntimeError)
        raise FrontendError(f"cannot load the TorchScript archive {os.fspath(path)!r}: "
                            f"{first_line(e)}") from e


def script_module(model: object) -> ScriptLike:
    """`torch.jit.script(model)`, failing with a FrontendError that quotes TorchScript."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(model)
    except Exception as e:  # the TorchScript compiler raises many types
        raise FrontendError(f"torch.jit.script failed: {e}") from e


def trace_module(model: object, example_inputs: tuple) -> ScriptLike:
    """`torch.jit.trace(model, example_inputs)`, re-raising its TracerWarnings as TracingWarning.

    A traced graph keeps only the branch and trip counts the example inputs took; Kiln warns
    when tracing saw data-dependent control flow (TorchScript's TracerWarning).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            traced = torch.jit.trace(model, example_inputs)
        except Exception as e:  # tracing raises many types
            raise FrontendError(f"torch.jit.trace failed: {first_line(e)}") from e
    for record in caught:
        if issubclass(record.category, torch.jit.TracerWarning):
            message = (f"tracing kept only the path the example inputs took "
                       f"({record.filename}:{record.lineno}): {record.message}; use "
                       "frontend='script' to keep data-dependent control flow")
            log.warning("%s", message)
            warnings.warn(message, TracingWarning, stacklevel=3)
        else:
            warnings.warn_explicit(record.message, record.category, record.filename,
                                   record.lineno)
    return traced


def import_script(script: ScriptLike, example_inputs: Sequence[object],
                  dynamic_dims: DynamicDims | None = None) -> ImportedProgram:
    """Import a ScriptModule or ScriptFunction called with `example_inputs` into a new context.

    Tensor inputs fix shapes and dtypes, except the dimensions `dynamic_dims` names ({input
    index: [dims]}), which stay variable; scalar and None inputs are specialized to constants.
    """
    example_inputs = tuple(example_inputs)
    bounded = dynamic_dims
    dynamic_dims = _checked_dynamic_dims(dynamic_dims, example_inputs)
    guards = user_guards(bounded, example_inputs)
    graph, module = _prepare(script, example_inputs, dynamic_dims)
    hints: dict[int, str] = {}
    unbatched: set[int] = set()
    for _ in range(MAX_TYPE_ROUNDS):
        ctx = new_context()
        with ctx, ir.Location.unknown():
            importer = GraphImporter(ctx, module, hints, unbatched)
            imported = importer.import_graph(graph)
            if importer.widened:  # a hint was too precise: import again with the join
                hints = {**hints, **importer.widened}
                continue
            _refine(imported.module)
            _decompose(imported.module)
            found = control_flow_types(imported.module)
            newly_unbatched = unbatched_outputs(imported.module) - unbatched
        if found == hints and not newly_unbatched:
            break
        hints = found
        unbatched |= newly_unbatched
    with ctx, ir.Location.unknown():
        decompositions.check_decomposed(imported.module)
        forget_output_marks(imported.module)
        complete_dtypes(imported.module)
        raise_control_flow(imported.module)
        retype_main(imported.module)
    inputs = tuple(TensorSpec(_sizes(x, dynamic_dims.get(i, ())), x.dtype)
                   if isinstance(x, torch.Tensor) else ScalarSpec(x)
                   for i, x in enumerate(example_inputs))
    return ImportedProgram(imported.module, importer.params,
                           Signature(inputs, imported.out_spec, imported.scalar_outputs,
                                     shape_guards=guards))


def _decompose(module: ir.Module) -> None:
    """Replace the `kiln.decompose` placeholders whose operands are known, refining after each
    batch (one decomposition's results may be another's operands); where none is ready, the
    dtypes torch-mlir left open are asked of PyTorch's meta kernels first (`complete_dtypes`)."""
    while decompositions.pending(module):
        if not decompositions.decompose_operators(module):
            complete_dtypes(module)
            _refine(module)
            if not decompositions.decompose_operators(module):
                return
        _refine(module)


def _refine(module: ir.Module) -> None:
    """torch-mlir's refinement, deciding the identity tests (`a is b`) it exposes as it goes
    (folding one can fold a branch, which can make two values one)."""
    refine(module)
    while fold_identity_tests(module):
        refine(module)


def unbatched_outputs(module: ir.Module) -> set[int]:
    """The TorchScript outputs of the convolutions and poolings refined to unbatched input.

    Ranks are often known only after `refine`, whose shape functions then got such ops
    wrong; the importer imports again, emitting those ops batched (`emit_batched`).
    """
    found = set()
    for op in walk(module.operation):
        if OUTPUT_MARK not in op.attributes:
            continue
        shape = vtensor_shape(op.operands[0].type)
        if shape is not None and len(shape) == spatial_dims(op.name) + 1:
            found.add(int(op.attributes[OUTPUT_MARK].value))
    return found


def forget_output_marks(module: ir.Module) -> None:
    for op in walk(module.operation):
        if OUTPUT_MARK in op.attributes:
            del op.attributes[OUTPUT_MARK]


# ---------------------------------------------------------------------------------------------
# Preparation in TorchScript


def _checked_dynamic_dims(dynamic_dims: DynamicDims | None,
                          example_inputs: tuple) -> dict[int, tuple[int, ...]]:
    """{input index: dims} with negative dims made positive; FrontendError where one names no
    tensor input or no dimension of it."""
    checked = {}
    for index, dims in (dynamic_dims or {}).items():
        example = example_inputs[index] if 0 <= index < len(example_inputs) else None
        if not isinstance(example, torch.Tensor):
            raise FrontendError(f"dynamic_dims names input {index}, which is not a tensor input")
        if any(not -example.dim() <= d < example.dim() for d in dims):
            raise FrontendError(f"dynamic_dims names dimensions {list(dims)} of input {index}, "
                                f"which has {example.dim()}")
        checked[index] = tuple(sorted(d % example.dim() for d in dims))
    return checked


def _sizes(example: torch.Tensor, dynamic: Sequence[int]) -> tuple[int | None, ...]:
    return tuple(None if axis in dynamic else size for axis, size in enumerate(example.shape))


def _prepare(script: ScriptLike, example_inputs: tuple,
             dynamic_dims: Mapping[int, Sequence[int]] | None = None
             ) -> tuple[torch._C.Graph, object]:
    """A frozen, inlined, input-specialized and shape-analysed copy of `script`'s graph.

    With `dynamic_dims`, the sizes a trace recorded are erased and TorchScript's complete
    shape analysis (which would specialize every size to the examples) is skipped: torch-mlir
    refines the types from the inputs' partly variable sizes.
    """
    dynamic_dims = dynamic_dims or {}
    if isinstance(script, torch.jit.ScriptModule) and not script._c._has_method("forward"):
        raise FrontendError(
            f"the scripted {script.original_name} has no `forward` method (TorchScript keeps "
            "overloaded forwards, as nn.LSTM's, under other names): wrap it in a module whose "
            "forward calls it, and compile that")
    module = _frozen(script) if isinstance(script, torch.jit.ScriptModule) else None
    if module is None and not isinstance(script, torch.jit.ScriptFunction):
        raise FrontendError(f"the TorchScript importer takes a ScriptModule or ScriptFunction, "
                            f"got {type(script).__name__}")
    graph = (module or script).graph.copy()
    torch._C._jit_pass_inline(graph)
    offset = 1 if module is not None else 0
    inputs = list(graph.inputs())[offset:]
    example_inputs = _with_defaults(module or script, example_inputs, len(inputs))
    if dynamic_dims:
        torch._C._jit_pass_erase_shape_information(graph)
    _specialize_inputs(graph, inputs, example_inputs, offset, dynamic_dims)
    tensors = tuple(x for x in example_inputs if isinstance(x, torch.Tensor))
    _specialize_inference(graph, graph.block())
    _unbind_to_select(graph, graph.block())
    torch._C._jit_pass_constant_propagation(graph)
    torch._C._jit_pass_remove_mutation(graph)
    analysis_inputs = ((module._c,) if module is not None else ()) + tensors
    for _ in range(2):  # shape peepholes fold sizes to constants; analyse again after them
        if not dynamic_dims:
            torch._C._jit_pass_complete_shape_analysis(graph, analysis_inputs, False)
        torch._C._jit_pass_peephole(graph, False)
        torch._C._jit_pass_constant_propagation(graph)
    return graph, module


# What a compiled inference call answers to the questions a scripted model asks of its
# context (nn.MultiheadAttention's fast-path gate): no autograd, no autocast, dense tensors
# on the CPU (Kiln's inputs are).
INFERENCE_CONSTANTS = {"aten::is_grad_enabled": False, "prim::requires_grad": False,
                       "aten::is_autocast_enabled": False, "aten::is_autocast_cpu_enabled": False,
                       "prim::type": "cpu", **{f"prim::is_{kind}": False for kind in (
                           "nested", "cuda", "sparse", "sparse_csr", "mkldnn", "quantized",
                           "meta", "xpu", "mps", "vulkan", "ipu", "maia", "xla", "lazy")}}


def _specialize_inference(graph: torch._C.Graph, block: torch._C.Block) -> None:
    """Replace the context questions of INFERENCE_CONSTANTS by their answers, and `a is b`
    where it is known (`_same_object`: `query is key` after inlining `attn(h, h, h)`), so
    constant propagation folds the branches they guard."""
    for node in list(block.nodes()):
        for inner in node.blocks():
            _specialize_inference(graph, inner)
        if node.kind() == "prim::If":
            _forward_surviving_values(node)
        answer = INFERENCE_CONSTANTS.get(node.kind())
        if node.kind() in ("aten::__is__", "aten::__isnot__"):
            if (same := _same_object(*node.inputs())) is None:
                continue
            answer = same == (node.kind() == "aten::__is__")
        if answer is None:
            continue
        if node.kind() == "prim::type" and node.inputsAt(0).type().kind() != "DeviceObjType":
            continue
        constant = graph.insertConstant(answer)
        constant.node().moveBefore(node)
        node.output().replaceAllUsesWith(constant)
        node.destroy()


def _unbind_to_select(graph: torch._C.Graph, block: torch._C.Block) -> None:
    """`for x in xs.unbind(0)`: a list only read by `list[i]` and `len(list)` is not made;
    each `list[i]` becomes `xs.select(0, i)` and `len(list)` `xs.size(0)` (torch-mlir lowers
    neither `unbind` nor reading its list at a computed index)."""
    unbinds = [node for node in _nodes_within(block) if node.kind() == "aten::unbind"]
    for node in unbinds:
        uses = [use.user for use in node.output().uses()]
        if not uses or any(u.kind() not in ("aten::__getitem__", "aten::len") for u in uses):
            continue
        source, dim = node.inputs()
        for user in uses:
            operands = [source, dim] + ([] if user.kind() == "aten::len" else [user.inputsAt(1)])
            new = graph.create("aten::size" if user.kind() == "aten::len" else "aten::select",
                               operands)
            new.insertBefore(user)
            new.copyMetadata(user)
            new.output().setType(user.output().type())
            user.output().replaceAllUsesWith(new.output())
            user.destroy()
        node.destroy()


def _forward_surviving_values(node: torch._C.Node) -> None:
    """An If result that one branch yields as `prim::Uninitialized` (the branch raises) and
    every other as one value from outside the If is that value wherever the program goes on:
    its uses read the value itself (an Optional narrowed by a check, e.g. GRUCell's `hx`)."""
    for index, output in enumerate(node.outputs()):
        yielded = [list(block.outputs())[index] for block in node.blocks()]
        live = {v.unique(): v for v in yielded if v.node().kind() != "prim::Uninitialized"}
        if len(live) != 1 or len(yielded) == len(live) == 1:
            continue
        value = next(iter(live.values()))
        if not _defined_outside(value, node):
            continue
        output.replaceAllUsesWith(value)


def _defined_outside(value: torch._C.Value, node: torch._C.Node) -> bool:
    """Whether `value` is defined outside `node`'s blocks."""
    owner = value.node()
    while owner is not None and owner.kind() != "prim::Param":
        if owner == node:
            return False
        owner = owner.owningBlock().owningNode()
    return True


def _same_object(first: torch._C.Value, second: torch._C.Value) -> bool | None:
    """Whether two TorchScript values are the same object: True for one value; False where
    one is a tensor object an aten op just made and the other a different value, as in
    cross-attention's `query is key`; None where it cannot be known (two model inputs may be
    one tensor)."""
    if first.unique() == second.unique():
        return True
    if any(_new_tensor_object(v) for v in (first, second)):
        return False
    return None


# aten ops that may hand back their input object itself (`x.contiguous()` of a contiguous x).
_MAY_RETURN_SELF = frozenset({"aten::contiguous", "aten::to", "aten::type_as", "aten::float",
                              "aten::double", "aten::half", "aten::bfloat16", "aten::int",
                              "aten::long", "aten::bool", "aten::cpu", "aten::cuda"})


def _new_tensor_object(value: torch._C.Value) -> bool:
    """Whether `value` is a tensor object its aten op created: fresh memory or a new view
    (`x.transpose(0, 1) is x.transpose(0, 1)` is False), not its input handed back."""
    node = value.node()
    if (not node.kind().startswith("aten::") or node.kind() in _MAY_RETURN_SELF
            or value.type().kind() != "TensorType"):
        return False
    try:
        returns = torch._C.parse_schema(node.schema()).returns
    except RuntimeError:
        return False
    return all(r.alias_info is None or not r.alias_info.is_write for r in returns)


def _with_defaults(script: ScriptLike, example_inputs: tuple, count: int) -> tuple:
    """`example_inputs` followed by the defaults of the arguments they leave out.

    A TorchScript signature keeps Python's defaults (`ConvTranspose2d.forward(input,
    output_size=None)`); those arguments are specialized to their default, as a call
    without them would be.
    """
    schema = (script._c._get_method("forward").schema
              if isinstance(script, torch.jit.ScriptModule) else script.schema)
    arguments = list(schema.arguments)[len(schema.arguments) - count:]
    names = ", ".join(a.name for a in arguments)
    missing = arguments[len(example_inputs):]
    if len(example_inputs) > count or any(not a.has_default_value() for a in missing):
        required = sum(1 for a in arguments if not a.has_default_value())
        takes = f"{required} to {count}" if required < count else f"{count}"
        raise FrontendError(f"the TorchScript program takes {takes} inputs ({names}), "
                            f"but {len(example_inputs)} example inputs were given")
    return example_inputs + tuple(a.default_value for a in missing)


def _constant_input(value: object) -> bool:
    """Whether a non-tensor input can become a TorchScript constant."""
    scalars = (bool, int, float)
    if isinstance(value, list):  # TorchScript constants are typed lists: int[], float[], bool[]
        return bool(value) and type(value[0]) in scalars and all(type(v) is type(value[0])
                                                                for v in value)
    return value is None or isinstance(value, (*scalars, str))


def _frozen(script: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    was_training = script.training
    script.eval()
    try:
        return torch.jit.freeze(script)
    except RuntimeError as e:
        raise FrontendError(f"torch.jit.freeze failed: {first_line(e)}") from e
    finally:
        script.train(was_training)


def _specialize_inputs(graph: torch._C.Graph, inputs: list, example_inputs: tuple,
                       offset: int, dynamic_dims: Mapping[int, Sequence[int]]) -> None:
    """Give tensor inputs their example's type (sizes `dynamic_dims` names left variable);
    replace every other input by a constant."""
    first = next(iter(graph.nodes()), None)
    for index in reversed(range(len(inputs))):
        value, example = inputs[index], example_inputs[index]
        if isinstance(example, torch.Tensor):
            exact = torch._C.TensorType.create_from_tensor(example)
            if index in dynamic_dims:
                exact = exact.with_sizes(list(_sizes(example, dynamic_dims[index])))
            value.setType(exact)
            continue
        if not _constant_input(example):
            raise FrontendError(f"example input {index} is a {type(example).__name__}; the "
                                "TorchScript frontend takes tensors, int, float, bool, str, "
                                "None, or non-empty lists of only int, only float or only bool")
        constant = graph.insertConstant(example)
        if first is not None:
            constant.node().moveBefore(first)
        value.replaceAllUsesWith(constant)
        graph.eraseInput(index + offset)


# ---------------------------------------------------------------------------------------------
# The importer


@dataclass
class _TrackedList:
    """A TorchScript list known element by element, created in region scope `scope`."""

    scope: int
    items: list[ir.Value]


@dataclass
class _ModuleRef:
    """A (sub)module of the frozen model reached by prim::GetAttr, with its path."""

    obj: object
    path: str


@dataclass
class ImportedGraph:
    """A `func.func @main` module and the tree structure of its flat tensor results."""

    module: ir.Module
    out_spec: pytree.TreeSpec
    scalar_outputs: tuple[tuple[int, str], ...] = ()


class GraphImporter:
    """Builds `func.func @main` from a prepared TorchScript graph, one node at a time."""

    def __init__(self, ctx: ir.Context, module: object, hints: dict[int, str],
                 unbatched: set[int]) -> None:
        self.ctx = ctx
        self.root = module
        self.hints = hints  # Value.unique() -> refined type of a control-flow result
        self.widened: dict[int, str] = {}  # hints found too precise (see `yielded`)
        self.scalar_outputs: list[tuple[int, str]] = []  # (leaf, kind) of scalar results
        self.views: dict[int, torch._C.Node] = {}  # slice/select results -> the view node
        self.unbatched = unbatched  # Value.unique() of convolutions on unbatched input
        self.values: dict[int, object] = {}  # Value.unique() -> ir.Value | _TrackedList | _ModuleRef
        self.params: dict[str, torch.Tensor] = {}
        self.scope = 0

    def import_graph(self, graph: torch._C.Graph) -> ImportedGraph:
        """Import `graph` as `@main`; its tensor inputs become the function's arguments."""
        inputs = list(graph.inputs())
        if self.root is not None:
            self.values[inputs.pop(0).unique()] = _ModuleRef(self.root, "")
        module = ir.Module.create()
        types = [self.type_of(v) for v in inputs]
        with ir.InsertionPoint(module.body):
            main = func.FuncOp("main", ir.FunctionType.get(types, []))
        block = main.add_entry_block()
        self.bind(inputs, block.arguments)
        with ir.InsertionPoint(block):
            self.import_nodes(graph.nodes())
            leaves: list[ir.Value] = []
            structure = [self.output_tree(v, leaves) for v in graph.outputs()]
            func.ReturnOp(leaves)
        _erase_unused_structures(main.operation)
        result_types = [v.type for v in leaves]
        main.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(types, result_types))
        tree = structure[0] if len(structure) == 1 else tuple(structure)
        return ImportedGraph(module, pytree.tree_flatten(tree)[1], tuple(self.scalar_outputs))

    def import_nodes(self, nodes: Iterable[torch._C.Node]) -> None:
        for node in nodes:
            with source_location(node):
                self.import_node(node)

    def import_node(self, node: torch._C.Node) -> None:
        """Import one node by its special form, or generically from its schema."""
        kind = node.kind()
        if (rule := SPECIAL_FORMS.get(kind)) is not None:
            rule(self, node)
        elif kind.startswith("aten::") or kind in SCHEMA_PRIMS:
            self.import_from_schema(node)
        else:
            raise self.unsupported(node)

    def import_from_schema(self, node: torch._C.Node) -> None:
        """`ns::name.overload` -> `torch.ns.name.overload`, operands and results in order."""
        schema = self.aliased(self.schema(node))
        name = torch_op_name(schema)
        written = [a.name for a in schema.arguments
                   if a.alias_info is not None and a.alias_info.is_write]
        if written:
            return self.functionalize(node, schema, written)
        if not self.ctx.is_registered_operation(name):
            return self.decompose(node, schema)
        operands = [self.operand(v) for v in node.inputs()]
        if any(_is_scalar(v) for v in _tensor_arguments(schema, operands)):
            name, operands = self.scalar_overload(schema, operands)
        if spatial_dims(name) is None:
            self.emit(name, node, operands)
            if node.kind() in SCATTERS:
                self.views[node.output().unique()] = node
        elif (uid := node.outputsAt(0).unique()) in self.unbatched:
            self.emit_batched(name, node)
        else:
            self.emit(name, node, operands).attributes[OUTPUT_MARK] = ir.StringAttr.get(str(uid))

    def emit_batched(self, name: str, node: torch._C.Node) -> None:
        """`squeeze(op(unsqueeze(x, 0)), 0)` for a convolution or pooling on unbatched input.

        PyTorch takes `[C, *spatial]` input as a batch of one; torch-mlir's shape functions
        and lowerings know only the batched form. New values get open types for `refine`.
        """
        unknown = ir.Type.parse("!torch.vtensor")
        squeezed = with_batch_of_one(name, [self.operand(v) for v in node.inputs()],
                                     [unknown] * (1 + node.outputsSize()),
                                     [self.type_of(v) for v in node.outputs()])
        self.bind(node.outputs(), squeezed)

    def functionalize(self, node: torch._C.Node, schema: torch._C.FunctionSchema,
                      written: list[str]) -> None:
        """An in-place op TorchScript's remove_mutation left (a write into a slice, `x[:, 1:] =
        y`; an update of a chunk, `gate.sigmoid_()`), imported as its functional form.

        The updated value replaces the target for every later use; where the target is a
        `slice`/`select` of another value (recorded in `views`), `slice_scatter` /
        `select_scatter` write it back, level by level, and the updated base replaces the
        base. Refused, naming the op, where that would not be what eager computes: a write
        into a graph input or a weight, into a value defined outside the loop or branch
        doing the write, or while another alias of the value (a view, a list holding it)
        is read later.
        """
        if written != [schema.arguments[0].name]:
            raise self.unsupported(node, f"it writes its argument(s) {', '.join(written)} in "
                                         "place")
        target = node.inputsAt(0)
        chain = self.view_chain(target)  # [(view value, view node), ...] innermost first
        root = chain[-1][1].inputsAt(0) if chain else target
        if (why := self.mutation_hazard(node, root, chain)) is not None:
            raise self.unsupported(node, f"it updates a tensor in place, and {why}")
        functional = _functional_schema(schema, self.ctx)
        if functional is None:
            raise self.unsupported(node, "it updates a tensor in place and has no functional "
                                         "form in the torch dialect")
        operands = [self.operand(v) for v in node.inputs()]
        if any(_is_scalar(v) for v in _tensor_arguments(functional, operands)):
            name, operands = self.scalar_overload(functional, operands)
        else:
            name = torch_op_name(functional)
        updated = ir.Operation.create(name, results=[self.type_of(target)],
                                      operands=operands).result
        self.bind([target, node.output()], [updated, updated])
        for view, view_node in chain:
            source = view_node.inputsAt(0)
            args = [self.operand(v) for v in list(view_node.inputs())[1:]]
            scatter = SCATTERS[view_node.kind()]
            updated = ir.Operation.create(scatter, results=[self.type_of(source)],
                                          operands=[self.operand(source), updated, *args]).result
            self.bind([source], [updated])

    def view_chain(self, value: torch._C.Value) -> list[tuple[torch._C.Value, torch._C.Node]]:
        chain = []
        while (view_node := self.views.get(value.unique())) is not None:
            chain.append((value, view_node))
            value = view_node.inputsAt(0)
        return chain

    def mutation_hazard(self, node: torch._C.Node, root: torch._C.Value,
                        chain: list[tuple[torch._C.Value, torch._C.Node]]) -> str | None:
        """Why updating `root` through `chain` at `node` would differ from eager, or None."""
        producer = root.node()
        if producer.kind() == "prim::Param":
            return "the tensor is an input of the model (Kiln never writes its inputs)"
        if producer.kind() in ("prim::Constant", "prim::GetAttr"):
            return "the tensor is a weight or constant of the model"
        block = node.owningBlock()
        if any(n.owningBlock() != block for n in [producer, *(v for _, v in chain)]):
            return "the tensor comes from outside the loop or branch that updates it"
        chain_nodes = {n for _, n in chain} | {node}
        for alias in _aliases(root):  # made before the update, read after it: stale
            if alias.node() in chain_nodes or not alias.node().isBefore(node):
                continue
            if any(use.user.isAfter(node) for use in alias.uses()):
                return (f"another alias of it ('{alias.debugName()}', made by "
                        f"{alias.node().kind()}) is read afterwards")
        return None

    def aliased(self, schema: torch._C.FunctionSchema) -> torch._C.FunctionSchema:
        """The schema of the op torch-mlir lowers where `schema`'s op is an alias of it
        (`aten::__and__.Tensor` -> `aten::bitwise_and.Tensor`: torch-mlir has the first op
        but lowers only the second), else `schema`."""
        if (alias := OPERATOR_ALIASES.get(schema.name)) is None:
            return schema
        for candidate in torch._C._jit_get_schemas_for_operator(alias):
            if (candidate.overload_name == schema.overload_name
                    and self.ctx.is_registered_operation(torch_op_name(candidate))):
                return candidate
        return schema

    def decompose(self, node: torch._C.Node, schema: torch._C.FunctionSchema) -> None:
        """An op the torch dialect lacks: a `kiln.decompose` placeholder that `decompositions`
        replaces by its decomposition once its operands' types are refined."""
        if decompositions.find_overload(schema) is None:
            raise self.unsupported(node, "the torch dialect has no op for it")
        op = ir.Operation.create(decompositions.PLACEHOLDER,
                                 attributes={"schema": ir.StringAttr.get(str(schema))},
                                 results=[self.type_of(v) for v in node.outputs()],
                                 operands=[self.operand(v) for v in node.inputs()])
        self.bind(node.outputs(), op.results)

    def scalar_overload(self, schema: torch._C.FunctionSchema,
                        operands: list[ir.Value]) -> tuple[str, list[ir.Value]]:
        """The op for a node whose Tensor arguments receive Python scalars, and its operands.

        A traced graph records `x * 2` as `aten::mul.Tensor(x, 2)`, the 2 a wrapped number;
        the torch dialect's `.Tensor` ops take tensors only. The overload of the same operator
        that takes a Scalar there (`aten::mul.Scalar`) keeps PyTorch's promotion of a Python
        scalar; where no such overload exists, the scalar becomes a 0-d tensor.
        """
        scalar_at = [_is_scalar(v) for v in operands]
        for candidate in torch._C._jit_get_schemas_for_operator(schema.name):
            name = torch_op_name(candidate)
            if (len(candidate.arguments) == len(schema.arguments)
                    and self.ctx.is_registered_operation(name)
                    and all(_accepts(new.type, old.type, scalar)
                            for new, old, scalar in zip(candidate.arguments, schema.arguments,
                                                        scalar_at))):
                return name, operands
        tensors = [torch_scalar_to_tensor(v) if scalar and arg.type.kind() == "TensorType" else v
                   for v, arg, scalar in zip(operands, schema.arguments, scalar_at)]
        return torch_op_name(schema), tensors

    def emit(self, name: str, node: torch._C.Node,
             operands: list[ir.Value] | None = None) -> ir.Operation:
        """Create op `name` with `node`'s inputs (or `operands`) and its outputs' types; bind them."""
        if operands is None:
            operands = [self.operand(v) for v in node.inputs()]
        op = ir.Operation.create(name, results=[self.type_of(v) for v in node.outputs()],
                                 operands=operands)
        self.bind(node.outputs(), op.results)
        return op

    def schema(self, node: torch._C.Node) -> torch._C.FunctionSchema:
        try:
            return torch._C.parse_schema(node.schema())
        except RuntimeError:
            raise self.unsupported(node, "it has no operator schema") from None

    def unsupported(self, node: torch._C.Node, why: str = "") -> UnsupportedOpError:
        """The error for `node`, naming its kind and its source line."""
        return UnsupportedOpError(node.kind(), where=source_line(node), hint=why)

    # Values -----------------------------------------------------------------------------------

    def type_of(self, value: torch._C.Value) -> ir.Type:
        text = self.hints.get(value.unique()) or mlir_type_text(value.type())
        return ir.Type.parse(text)

    def bind(self, ts_values: Iterable[torch._C.Value], values: Iterable[object]) -> None:
        for ts_value, value in zip(ts_values, values, strict=True):
            self.values[ts_value.unique()] = value

    def lookup(self, value: torch._C.Value) -> object:
        return self.values[value.unique()]

    def operand(self, value: torch._C.Value) -> ir.Value:
        """The MLIR value for `value`, materializing a tracked list as a ListConstruct."""
        found = self.lookup(value)
        if isinstance(found, _TrackedList):
            op = ir.Operation.create("torch.prim.ListConstruct", results=[self.type_of(value)],
                                     operands=found.items)
            return op.result
        if isinstance(found, _ModuleRef):
            raise FrontendError(f"the module '{found.path or 'self'}' is used as a value; Kiln "
                                "imports frozen modules whose methods are inlined")
        return found

    def coerce(self, value: ir.Value, to: ir.Type) -> ir.Value:
        """`value` as type `to`: a static-info cast between tensor types, a derefine to Optional."""
        if value.type == to:
            return value
        text = str(to)
        if text.startswith("!torch.tuple<"):  # element by element
            targets = [ir.Type.parse(f"!torch.{t}") for t in _tuple_elements(text)]
            items = ir.Operation.create("torch.prim.TupleUnpack", operands=[value],
                                        results=_tuple_types(value.type, len(targets))).results
            coerced = [self.coerce(item, t) for item, t in zip(items, targets, strict=True)]
            return ir.Operation.create("torch.prim.TupleConstruct", results=[to],
                                       operands=coerced).result
        name = "torch.derefine" if text.startswith("!torch.optional") else \
            "torch.tensor_static_info_cast"
        return ir.Operation.create(name, results=[to], operands=[value]).result

    def output_tree(self, value: torch._C.Value, leaves: list[ir.Value]) -> object:
        """The pytree of a graph output, appending its tensor leaves to `leaves`."""
        producer, found = value.node(), self.lookup(value)
        if isinstance(found, _TrackedList):
            leaves.extend(found.items)
            return list(range(len(leaves) - len(found.items), len(leaves)))
        if producer.kind() == "prim::TupleConstruct":
            return tuple(self.output_tree(v, leaves) for v in producer.inputs())
        if producer.kind() == "prim::DictConstruct":
            inputs = list(producer.inputs())
            return {k.toIValue(): self.output_tree(v, leaves)
                    for k, v in zip(inputs[::2], inputs[1::2])}
        kind = value.type().kind()
        if kind == "NoneType":
            return None
        if kind in _SCALAR_OUTPUTS:  # returned as a 0-d tensor, handed back as a Python scalar
            self.scalar_outputs.append((len(leaves), _SCALAR_OUTPUTS[kind]))
            leaves.append(_scalar_as_tensor(self.operand(value)))
            return len(leaves) - 1
        if kind != "TensorType":
            raise FrontendError(f"output '{value.debugName()}' is a {value.type()}; compiled "
                                "modules return tensors and int, float or bool scalars (in "
                                "tuples, lists or dicts) only")
        leaves.append(self.operand(value))
        return len(leaves) - 1

    # Regions ----------------------------------------------------------------------------------

    def import_region(self, region: ir.Region, block: torch._C.Block, arg_types: list[ir.Type],
                      yield_types: list[ir.Type], terminator: str,
                      results: Sequence[torch._C.Value | None]) -> None:
        """Fill `region` with `block`'s nodes, ending in `terminator` of `yield_types`, which
        type the If/Loop `results` (None for a loop's condition)."""
        body = region.blocks.append(*arg_types)
        self.bind(block.inputs(), body.arguments)
        self.scope += 1
        try:
            with ir.InsertionPoint(body):
                self.import_nodes(block.nodes())
                outs = [self.yielded(self.operand(v), t, r)
                        for v, t, r in zip(block.outputs(), yield_types, results, strict=True)]
                ir.Operation.create(terminator, operands=outs)
        finally:
            self.scope -= 1

    def yielded(self, value: ir.Value, to: ir.Type, result: torch._C.Value | None) -> ir.Value:
        """`value` as the type `to` of the If/Loop `result` it becomes.

        A hint from an earlier round may be more precise than this branch allows (one branch
        `[2,8,32]`, the other, refined only now, `[8,2,32]`): the result's type is widened to
        their join for the next round (`widened`), and this round casts through an open type.
        """
        if result is None or _cast_compatible(value.type, to):
            return self.coerce(value, to)
        self.widened[result.unique()] = join_types([str(value.type), str(to)]) or "!torch.vtensor"
        return self.coerce(self.coerce(value, ir.Type.parse("!torch.vtensor")), to)


_SCALAR_TYPES = ("!torch.int", "!torch.float", "!torch.bool", "!torch.number")


def _is_scalar(value: ir.Value) -> bool:
    return str(value.type) in _SCALAR_TYPES


def _tensor_arguments(schema: torch._C.FunctionSchema, operands: list[ir.Value]) -> list[ir.Value]:
    return [v for a, v in zip(schema.arguments, operands) if a.type.kind() == "TensorType"]


def _cast_compatible(source: ir.Type, target: ir.Type) -> bool:
    """Whether `tensor_static_info_cast` may take `source` to `target`: no rank, size or dtype
    that both know differs (non-tensor types are left to `coerce`)."""
    shapes = [vtensor_shape(t) for t in (source, target)]
    dtypes = [str(t).rpartition(",")[2].rstrip(">") for t in (source, target)]
    if None in shapes:
        return True
    if len(shapes[0]) != len(shapes[1]):
        return False
    if "unk" not in dtypes and dtypes[0] != dtypes[1]:
        return False
    return all(a == b or -1 in (a, b) for a, b in zip(*shapes))


# View ops whose writes Kiln can put back: the op that writes a view into its base.
SCATTERS = {"aten::slice": "torch.aten.slice_scatter", "aten::select": "torch.aten.select_scatter"}
_CONTAINERS = frozenset({"prim::ListConstruct", "prim::TupleConstruct", "prim::DictConstruct"})


def _functional_schema(schema: torch._C.FunctionSchema,
                       ctx: ir.Context) -> torch._C.FunctionSchema | None:
    """`aten::masked_fill_.Scalar` -> `aten::masked_fill.Scalar`, where the torch dialect has it."""
    name = schema.name.removesuffix("_")
    for candidate in torch._C._jit_get_schemas_for_operator(name):
        if (candidate.overload_name == schema.overload_name
                and len(candidate.arguments) == len(schema.arguments)
                and ctx.is_registered_operation(torch_op_name(candidate))):
            return candidate
    return None


def _aliases(value: torch._C.Value) -> list[torch._C.Value]:
    """Values that may share `value`'s memory: the outputs of view ops (a returned alias in
    their schema), containers and non-aten ops reading it, transitively."""
    found, pending = [], [value]
    while pending:
        current = pending.pop()
        for use in current.uses():
            user = use.user
            if user.kind() in _CONTAINERS or not user.kind().startswith("aten::"):
                new = list(user.outputs())
            else:
                try:
                    returns = torch._C.parse_schema(user.schema()).returns
                except RuntimeError:
                    returns = []
                new = [out for out, ret in zip(user.outputs(), returns)
                       if ret.alias_info is not None and not ret.alias_info.is_write]
            for out in new:
                if out not in found:
                    found.append(out)
                    pending.append(out)
    return found


def _tuple_elements(text: str) -> list[str]:
    """'!torch.tuple<vtensor<[2],f32>, int>' -> ['vtensor<[2],f32>', 'int']."""
    inner, items, depth, start = text[len("!torch.tuple<"):-1], [], 0, 0
    for index, char in enumerate(inner):
        depth += {"<": 1, "[": 1, ">": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(inner[start:index].strip())
            start = index + 1
    return [*items, inner[start:].strip()] if inner else items


def _tuple_types(tuple_type: ir.Type, count: int) -> list[ir.Type]:
    text = str(tuple_type)
    if not text.startswith("!torch.tuple<"):
        return [ir.Type.parse("!torch.vtensor")] * count
    return [ir.Type.parse(f"!torch.{t}") for t in _tuple_elements(text)]


def _accepts(new: torch._C.Type, old: torch._C.Type, scalar: bool) -> bool:
    """Whether an argument of type `new` takes what `old` took (a Python scalar if `scalar`)."""
    if scalar and old.kind() == "TensorType":
        return new.kind() == "NumberType"
    return str(new) == str(old)


_SCALAR_OUTPUTS = {"IntType": "int", "FloatType": "float", "BoolType": "bool"}


def _scalar_as_tensor(value: ir.Value) -> ir.Value:
    """An int, float or bool result as a 0-d tensor (a bool through int: 0 or 1)."""
    if str(value.type) == "!torch.bool":
        value = ir.Operation.create("torch.aten.Int.bool", results=[ir.Type.parse("!torch.int")],
                                    operands=[value]).result
    return torch_scalar_to_tensor(value)


def torch_scalar_to_tensor(value: ir.Value) -> ir.Value:
    """A Python scalar as a 0-d tensor (si64 for int and bool, f64 for float)."""
    dtype = "f64" if str(value.type) == "!torch.float" else "si64"
    return ir.Operation.create("torch.prim.NumToTensor.Scalar",
                               results=[ir.Type.parse(f"!torch.vtensor<[],{dtype}>")],
                               operands=[value]).result


STRUCTURE_OPS = frozenset({"torch.prim.TupleConstruct", "torch.prim.ListConstruct",
                           "torch.prim.DictConstruct"})


def _erase_unused_structures(root: ir.Operation) -> None:
    """Drop tuple/list/dict constructions nothing reads (outputs are flattened statically);
    torch-mlir has no lowering for a dead DictConstruct and canonicalize keeps it."""
    for op in reversed([op for op in walk(root) if op.name in STRUCTURE_OPS]):
        if all(next(iter(r.uses), None) is None for r in op.results):
            op.erase()



# ---------------------------------------------------------------------------------------------
# Special forms: control flow


@special_form("prim::If")
def _import_if(importer: GraphImporter, node: torch._C.Node) -> None:
    """prim::If -> torch.prim.If while types are refined, kiln.if in the end."""
    types = [importer.type_of(v) for v in node.outputs()]
    op = ir.Operation.create("torch.prim.If", results=types, attributes=outputs_attribute(node),
                             operands=[importer.operand(node.input())], regions=2)
    for region, block in zip(op.regions, node.blocks(), strict=True):
        importer.import_region(region, block, [], types, "torch.prim.If.yield",
                               list(node.outputs()))
    importer.bind(node.outputs(), op.results)


@special_form("prim::Loop")
def _import_loop(importer: GraphImporter, node: torch._C.Node) -> None:
    """prim::Loop -> torch.prim.Loop, kiln.loop in the end; or unrolled (see module doc)."""
    if (trips := _unroll_count(node)) is not None:
        return _unroll(importer, node, trips)
    trip, condition, *carried = node.inputs()
    types = [importer.type_of(v) for v in node.outputs()]
    operands = [importer.operand(trip), importer.operand(condition)]
    operands += [importer.coerce(importer.operand(v), t) for v, t in zip(carried, types)]
    op = ir.Operation.create("torch.prim.Loop", results=types, operands=operands, regions=1,
                             attributes=outputs_attribute(node))
    int_type, bool_type = ir.Type.parse("!torch.int"), ir.Type.parse("!torch.bool")
    importer.import_region(op.regions[0], next(node.blocks()), [int_type, *types],
                           [bool_type, *types], "torch.prim.Loop.condition",
                           [None, *node.outputs()])
    importer.bind(node.outputs(), op.results)
    return None


def _unroll_count(node: torch._C.Node) -> int | None:
    """The trip count of a `for` loop that appends to lists and has a constant trip count."""
    body = next(node.blocks())
    if not any(inner.kind() == "aten::append" for inner in _nodes_within(body)):
        return None
    trip, condition = list(node.inputs())[:2]
    constants = [_constant(v) for v in (trip, condition, next(iter(body.outputs())))]
    if constants[1:] != [True, True] or not isinstance(constants[0], int):
        return None
    return constants[0] if constants[0] <= MAX_UNROLL else None


def _unroll(importer: GraphImporter, node: torch._C.Node, trips: int) -> None:
    body = next(node.blocks())
    carried = [importer.lookup(v) for v in list(node.inputs())[2:]]
    for index in range(trips):
        counter = torch_int(index)
        importer.bind(body.inputs(), [counter, *carried])
        importer.import_nodes(body.nodes())
        carried = [importer.lookup(v) for v in list(body.outputs())[1:]]
    importer.bind(node.outputs(), carried)


def _nodes_within(block: torch._C.Block) -> Iterable[torch._C.Node]:
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _nodes_within(inner)


def _constant(value: torch._C.Value) -> object:
    return value.toIValue() if value.node().kind() == "prim::Constant" else None


# ---------------------------------------------------------------------------------------------
# Special forms: constants and attributes


def _i64(value: int) -> ir.Attribute:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def _scalar_constant(value: object) -> ir.Value:
    """A torch.constant.* op for a Python scalar, None, string or device."""
    if value is None:
        return ir.Operation.create("torch.constant.none", results=[ir.Type.parse("!torch.none")]).result
    rows = {bool: ("bool", "!torch.bool", ir.BoolAttr.get),
            int: ("int", "!torch.int", _i64),
            float: ("float", "!torch.float", lambda v: ir.FloatAttr.get_f64(v)),
            str: ("str", "!torch.str", ir.StringAttr.get),
            torch.device: ("device", "!torch.Device", lambda v: ir.StringAttr.get(str(v)))}
    if (row := rows.get(type(value))) is None:
        raise FrontendError(f"Kiln cannot import the constant {value!r} ({type(value).__name__})")
    kind, type_text, attribute = row
    return ir.Operation.create(f"torch.constant.{kind}", results=[ir.Type.parse(type_text)],
                               attributes={"value": attribute(value)}).result


def _tensor_constant(importer: GraphImporter, tensor: torch.Tensor, name: str) -> ir.Value:
    """A one-element tensor as a literal; anything larger as a kiln.param holding it aside."""
    dims = ",".join(str(d) for d in tensor.shape)
    dtype = SCALAR_TYPE_TO_MLIR[TORCH_DTYPE_TO_SCALAR[tensor.dtype]]
    result = ir.Type.parse(f"!torch.vtensor<[{dims}],{dtype}>")
    if tensor.numel() == 1 and tensor.dtype in LITERAL_DTYPES:
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        return ir.Operation.create("torch.vtensor.literal", results=[result],
                                   attributes={"value": ir.DenseElementsAttr.get(
                                       array, shape=list(tensor.shape))}).result
    qualname = _unique(importer.params, name)
    importer.params[qualname] = tensor.detach()
    return ir.Operation.create("kiln.param", results=[result],
                               attributes={"qualname": ir.StringAttr.get(qualname)}).result




def _param_name(value: torch._C.Value, count: int) -> str:
    """'self.linear.weight' -> 'linear.weight'; a bare number -> 'const<count>'."""
    name = value.debugName().removeprefix("self.")
    return f"const{count}" if not name or name.isdigit() else name


def _unique(taken: dict, name: str) -> str:
    candidate, suffix = name, 1
    while candidate in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


@special_form("prim::Constant")
def _import_constant(importer: GraphImporter, node: torch._C.Node) -> None:
    """Tensors -> literal or kiln.param; scalars, None, str, device and lists -> torch constants."""
    value = node.output()
    ivalue = value.toIValue()
    importer.bind([value], [_constant_value(importer, value, ivalue)])


def _constant_value(importer: GraphImporter, value: torch._C.Value, ivalue: object) -> object:
    if isinstance(ivalue, torch.Tensor):
        return _tensor_constant(importer, ivalue, _param_name(value, len(importer.params)))
    if isinstance(ivalue, (list, tuple)):
        items = [_constant_value(importer, value, item) for item in ivalue]
        if isinstance(ivalue, list):
            return _TrackedList(importer.scope, items)
        return ir.Operation.create("torch.prim.TupleConstruct", results=[importer.type_of(value)],
                                   operands=items).result
    return _scalar_constant(ivalue)


@special_form("prim::GetAttr")
def _import_get_attr(importer: GraphImporter, node: torch._C.Node) -> None:
    """An attribute of the (frozen) module: a submodule, a tensor (kiln.param) or a scalar."""
    owner = importer.lookup(node.input())
    name = node.s("name")
    if not isinstance(owner, _ModuleRef):
        raise importer.unsupported(node, "attributes are read from modules only")
    attribute = getattr(owner.obj, name)
    path = f"{owner.path}.{name}" if owner.path else name
    if isinstance(attribute, (torch.jit.ScriptModule, torch._C.ScriptObject)):
        importer.bind([node.output()], [_ModuleRef(attribute, path)])
    elif isinstance(attribute, torch.Tensor):
        importer.bind([node.output()], [_tensor_constant(importer, attribute, path)])
    else:
        importer.bind([node.output()], [_constant_value(importer, node.output(), attribute)])


@special_form("prim::RaiseException")
def _import_raise(importer: GraphImporter, node: torch._C.Node) -> None:
    """`raise` as torch.prim.RaiseException: on a path the refined shapes prove dead (the
    input checks of torch.nn's modules), kiln-fold-constant-branches removes it."""
    message = _constant(node.inputsAt(0))
    if not isinstance(message, str):
        message = f"the model raised an exception at {source_line(node) or 'unknown line'}"
    ir.Operation.create("torch.prim.RaiseException",
                        operands=[_scalar_constant(message), _scalar_constant(None)])


@special_form("prim::Uninitialized")
def _import_uninitialized(importer: GraphImporter, node: torch._C.Node) -> None:
    """A placeholder TorchScript puts on paths that never read it (after break/return)."""
    importer.emit("torch.prim.Uninitialized", node)


@special_form("prim::unchecked_cast")
def _import_unchecked_cast(importer: GraphImporter, node: torch._C.Node) -> None:
    """Optional[T] -> T after an `is None` check: torch.prim.unchecked_cast, or the value itself."""
    source = importer.operand(node.input())
    if str(source.type).startswith("!torch.optional"):
        importer.emit("torch.prim.unchecked_cast", node)
    else:
        importer.bind([node.output()], [importer.coerce(source, importer.type_of(node.output()))])


# ---------------------------------------------------------------------------------------------
# Special forms: lists, tuples, dicts


@special_form("prim::ListConstruct")
def _import_list(importer: GraphImporter, node: torch._C.Node) -> None:
    """A list is tracked element by element; it is materialized where it is read."""
    items = [importer.operand(v) for v in node.inputs()]
    importer.bind([node.output()], [_TrackedList(importer.scope, items)])


@special_form("aten::append")
def _import_append(importer: GraphImporter, node: torch._C.Node) -> None:
    """list.append(x) on a tracked list in the same region: the element joins the list."""
    target, item = node.inputs()
    tracked = importer.lookup(target)
    if not isinstance(tracked, _TrackedList) or tracked.scope != importer.scope:
        raise importer.unsupported(node, "a list appended to inside a loop or branch must be "
                                         "built in a `for` loop with a constant trip count")
    tracked.items.append(importer.operand(item))
    importer.bind([node.output()], [tracked])


@special_form("prim::ListUnpack")
def _import_list_unpack(importer: GraphImporter, node: torch._C.Node) -> None:
    """Unpack a tracked list statically; any other list with torch.prim.ListUnpack."""
    tracked = importer.lookup(node.input())
    if isinstance(tracked, _TrackedList) and len(tracked.items) == len(list(node.outputs())):
        importer.bind(node.outputs(), list(tracked.items))
    else:
        importer.emit("torch.prim.ListUnpack", node)


@special_form("prim::TupleConstruct")
def _import_tuple(importer: GraphImporter, node: torch._C.Node) -> None:
    """torch.prim.TupleConstruct (unpacked statically where its producer is known)."""
    importer.emit("torch.prim.TupleConstruct", node)


@special_form("prim::TupleUnpack")
def _import_tuple_unpack(importer: GraphImporter, node: torch._C.Node) -> None:
    """The elements of a tuple built in this graph, or torch.prim.TupleUnpack."""
    producer = node.input().node()
    if producer.kind() == "prim::TupleConstruct":
        importer.bind(node.outputs(), [importer.lookup(v) for v in producer.inputs()])
    else:
        importer.emit("torch.prim.TupleUnpack", node)


@special_form("prim::TupleIndex")
def _import_tuple_index(importer: GraphImporter, node: torch._C.Node) -> None:
    """tuple[i] with a constant i on a tuple built in this graph, or torch.prim.TupleIndex."""
    source, index = node.inputs()
    producer, position = source.node(), _constant(index)
    if producer.kind() == "prim::TupleConstruct" and isinstance(position, int):
        importer.bind([node.output()], [importer.lookup(list(producer.inputs())[position])])
    else:
        importer.emit("torch.prim.TupleIndex", node)


@special_form("prim::DictConstruct")
def _import_dict(importer: GraphImporter, node: torch._C.Node) -> None:
    """torch.prim.DictConstruct(keys..., values...); a dict output is flattened statically."""
    inputs = list(node.inputs())
    operands = [importer.operand(v) for v in inputs[::2] + inputs[1::2]]
    op = ir.Operation.create("torch.prim.DictConstruct", results=[importer.type_of(node.output())],
                             operands=operands)
    importer.bind([node.output()], op.results)
