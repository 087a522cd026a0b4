"""The tracing frontend: torch.export (or a Dynamo GraphModule) imported with FxImporter.

Parameters and buffers become `kiln.param` ops named by their fully qualified names, so the
weights stay out of the IR; their values travel beside the module in `ImportedProgram`.
Each op keeps the Python file:line of the FX node it came from as its MLIR location.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import inspect
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch._decomp
from torch.export import ExportedProgram
from torch.export._remove_effect_tokens_pass import _remove_effect_tokens
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx.experimental.symbolic_shapes import is_concrete_int
from torch_mlir import ir
from torch_mlir.extras.fx_decomp_util import get_decomposition_table
from torch_mlir.extras.fx_importer import FxImporter, FxImporterHooks, InputInfo

from kiln.dialects.context import new_context
from kiln.errors import FrontendError, first_line
from kiln.frontend.decompositions import KILN_DECOMPOSITIONS
from kiln.frontend.dims import (
    DynamicDims,
    export_shapes,
    parse,
    shape_guards,
    tracing_examples,
)
from kiln.shape_guards import ShapeGuards
from kiln.spec import Signature, TensorSpec


@dataclass
class ImportedProgram:
    """A module in the kiln + torch dialects, the weights it names, and its call signature."""

    module: ir.Module
    params: dict[str, torch.Tensor]
    signature: Signature


class _ParamsAsKilnOps(FxImporterHooks):
    """Import each parameter or buffer as `kiln.param` and remember its value."""

    def __init__(self) -> None:
        self.params: dict[str, torch.Tensor] = {}

    def resolve_input(self, gni, value: object, info: InputInfo) -> ir.Value | None:
        if info.mutable_producer_node_name is not None or not isinstance(value, torch.Tensor):
            return None
        qualname = info.input_spec.target
        self.params[qualname] = value.detach()
        op = ir.Operation.create(
            "kiln.param", results=[info.ir_type],
            attributes={"qualname": ir.StringAttr.get(qualname)},
        )
        return op.result

    def resolve_literal(self, gni, literal: object, info: InputInfo | None) -> ir.Value | None:
        return None


# torch.export warns that tensor attributes were assigned while it traced: nn.LSTM, GRU and
# RNN re-point their `_flat_weights` list at the traced parameters in every forward. That is
# PyTorch's own module, harmless (export restores it), and says nothing the user can act on;
# the same warning about any other attribute (the user's own module) still reaches them.
_RNN_FLAT_WEIGHTS = (r"The tensor attributes? self\.(?:[\w.]+\.)?_flat_weights\[\d+\]"
                     r"(?:, self\.(?:[\w.]+\.)?_flat_weights\[\d+\])* (?:was|were) assigned "
                     r"during export\.")


def export_module(model: torch.nn.Module | Callable, example_inputs: tuple[torch.Tensor, ...],
                  dynamic_dims: DynamicDims | None = None) -> ImportedProgram:
    """torch.export `model` with `example_inputs`, then import it into the kiln + torch dialects."""
    return import_exported(export_program(model, example_inputs, dynamic_dims), dynamic_dims)


def export_program(model: torch.nn.Module | Callable, example_inputs: tuple[torch.Tensor, ...],
                   dynamic_dims: DynamicDims | None = None) -> ExportedProgram:
    """torch.export `model`; FrontendError if it cannot be captured."""
    module = model if isinstance(model, torch.nn.Module) else _FunctionModule(model)
    dynamic_dims = parse(dynamic_dims)
    dynamic_shapes = export_shapes(example_inputs, dynamic_dims)
    if dynamic_shapes is not None and _takes_varargs(module):
        dynamic_shapes = (dynamic_shapes,)  # forward(*args) takes the inputs as one tuple
    try:
        with warnings.catch_warnings():  # nn.LSTM's own cache, not the user's attributes
            warnings.filterwarnings("ignore", category=UserWarning, message=_RNN_FLAT_WEIGHTS)
            program = torch.export.export(module, tracing_examples(example_inputs, dynamic_dims),
                                          dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch.export raises many types; all mean "could not capture"
        raise FrontendError(
            f"torch.export could not capture the model: {first_line(e)}. Try frontend='script' "
            "or 'trace' for models with data-dependent control flow."
        ) from e
    if dynamic_dims and not (guards := shape_guards(program, dynamic_dims)).holds(example_inputs):
        raise FrontendError(
            "torch.export made the program hold for shapes other than the example inputs' "
            f"own ({guards.conditions}): the model treats a size of 1 (or 0) apart. Give "
            "example inputs of size 2 or more along the dynamic dims")
    return program


def fingerprint(program: ExportedProgram, dynamic_dims: DynamicDims | None = None) -> str:
    """A digest of everything the compiled result depends on: graph, signature, input
    shapes and dtypes, dynamic dimensions and the values of all weights and constants."""
    digest = hashlib.sha256()
    placeholders = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"]
    for text in (program.graph_module.code, str(program.graph_signature),
                 repr(sorted((dynamic_dims or {}).items())),
                 repr([(tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else repr(v)
                       for v in placeholders])):
        digest.update(text.encode())
    named = {**program.state_dict, **program.constants}
    for name in sorted(named):
        digest.update(name.encode())
        if isinstance(named[name], torch.Tensor):
            digest.update(tensor_digest(named[name]))
    return digest.hexdigest()


def tensor_digest(tensor: torch.Tensor, chunk: int = 1 << 24) -> bytes:
    """SHA-256 over a tensor's dtype, shape and bytes, hashed in parallel chunks.

    hashlib releases the GIL on large buffers, so the chunks of a 440 MB model hash on all
    cores (0.7 s -> about 0.35 s on two).
    """
    data = tensor.detach().contiguous().cpu()
    raw = memoryview(data.reshape(-1).view(torch.uint8).numpy())
    parts = [raw[i:i + chunk] for i in range(0, len(raw), chunk)] or [raw]
    if len(parts) == 1:
        digests = [hashlib.sha256(parts[0]).digest()]
    else:
        with concurrent.futures.ThreadPoolExecutor() as pool:
            digests = list(pool.map(lambda part: hashlib.sha256(part).digest(), parts))
    header = f"{data.dtype}{tuple(data.shape)}".encode()
    return hashlib.sha256(header + b"".join(digests)).digest()


def import_exported(program: ExportedProgram, dynamic_dims: DynamicDims | None = None,
                    extra: Mapping[torch._ops.OpOverload, Callable] | None = None
                    ) -> ImportedProgram:
    """Import an ExportedProgram (after torch-mlir's decompositions, and the `extra` ones
    `decomposition_for` found) into a new context."""
    guards = shape_guards(program, dynamic_dims) if dynamic_dims else ShapeGuards()
    try:
        with warnings.catch_warnings():  # torch's own deepcopy of its specs, not the user's
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
            program = program.run_decompositions({**decompositions(), **(extra or {})})
    except Exception as e:  # a decomposition's own checks, or a view it cannot take
        raise FrontendError(f"the exported program could not be decomposed into the ops Kiln "
                            f"compiles: {first_line(e)}") from e
    if mutated := program.graph_signature.buffers_to_mutate:
        buffers = ", ".join(sorted(set(mutated.values()))[:4])
        raise FrontendError(
            f"the model updates its buffers ({buffers}) when it runs: a BatchNorm in training "
            "mode does. Kiln compiles for inference: call model.eval() before compiling")
    if any(spec.kind == InputKind.TOKEN for spec in program.graph_signature.input_specs):
        program = _remove_effect_tokens(program)  # linalg.inv's error check: ordering only
    mutated = _mutations_as_outputs(program)
    ctx = new_context()
    hooks = _ParamsAsKilnOps()
    importer = FxImporter(context=ctx, hooks=hooks)
    try:
        importer.import_program(program, func_name="main")
    except Exception as e:  # torch-mlir's importer: a type or op it has no mapping for
        raise FrontendError(f"torch-mlir could not import the exported program: "
                            f"{first_line(e)}") from e
    inputs = _user_input_specs(program, dynamic_dims or {})
    return ImportedProgram(importer.module, hooks.params,
                           Signature(inputs, program.call_spec.out_spec,
                                     mutated_inputs=mutated, shape_guards=guards))


def _mutations_as_outputs(program: ExportedProgram) -> tuple[int, ...]:
    """Turn the program's updates of its own inputs (`x.add_(1)`) into plain results.

    torch-mlir imports a mutated input as a mutable `!torch.tensor` that Kiln's value-tensor
    calling convention cannot take; as a result instead (they come first in the output list),
    the runtime copies each into its input after the call, as eager's in-place op would have
    written it. Returns the user-input positions they belong to, in result order.
    """
    signature = program.graph_signature
    positions = {name: i for i, name in enumerate(signature.user_inputs)}
    mutated = []
    for spec in signature.output_specs:
        if spec.kind == OutputKind.USER_INPUT_MUTATION:
            mutated.append(positions[spec.target])
            spec.kind = OutputKind.USER_OUTPUT
    return tuple(mutated)


# Ops Kiln keeps whole rather than taking torch-mlir's FX decompositions: torch-mlir lowers
# them itself, better. layer_norm decomposed at FX level becomes var_mean, which torch-mlir
# computes in f64 (about 25 f64 reductions per BERT-base call). scaled_dot_product_attention
# is deliberately decomposed: kept whole it becomes IREE's attention op, which ran BERT-base
# at 236 ms against 130 ms for the decomposed matmul/softmax form on this CPU.
KEEP_WHOLE = frozenset({
    torch.ops.aten.layer_norm.default,
    torch.ops.aten.native_layer_norm.default,
})


def decomposition_for(op_name: str) -> tuple[torch._ops.OpOverload, Callable] | None:
    """PyTorch's own decomposition of the op torch-mlir named `op_name` ("aten.lgamma",
    "aten.all.dim"), from torch._decomp or the op's CompositeImplicitAutograd definition;
    None where PyTorch has none. `kiln.compile` retries with it when torch-mlir cannot lower
    the op."""
    namespace, _, rest = op_name.partition(".")
    name, _, overload = rest.partition(".")
    packet = getattr(getattr(torch.ops, namespace, None), name, None)
    op = getattr(packet, overload or "default", None)
    if not isinstance(op, torch._ops.OpOverload):
        return None
    if (fn := torch._decomp.decomposition_table.get(op)) is not None:
        return op, fn
    composite = torch._C.DispatchKey.CompositeImplicitAutograd
    if torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), composite):
        # The C++ kernel itself (`op.decompose` would dispatch back to this table: recursion).
        return op, functools.partial(op._op_dk, composite)
    return None


def decompositions() -> dict:
    """torch-mlir's FX decomposition table without the ops in KEEP_WHOLE, with Kiln's own
    definitions of PyTorch's fused transformer fast paths (which torch.compile meets in
    `nn.TransformerEncoderLayer` and `nn.MultiheadAttention` under no_grad)."""
    table = {op: fn for op, fn in get_decomposition_table().items() if op not in KEEP_WHOLE}
    return {**table, **KILN_DECOMPOSITIONS}


def _user_input_specs(program: ExportedProgram, dynamic_dims: DynamicDims) -> tuple[TensorSpec, ...]:
    """Input specs from the exported placeholders: a dim is dynamic where export kept it so."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    specs = []
    for index, name in enumerate(program.graph_signature.user_inputs):
        fake = placeholders[name].meta["val"]
        if not isinstance(fake, torch.Tensor):
            raise FrontendError(f"input {index} is a {type(fake).__name__}; the export frontend "
                                "takes tensors only (use frontend='script' for scalar inputs)")
        shape = tuple(int(size) if is_concrete_int(size) else None for size in fake.shape)
        for axis in dynamic_dims.get(index, ()):
            if axis >= len(shape) or shape[axis] is not None:
                raise FrontendError(_specialized(index, axis, shape))
        specs.append(TensorSpec(shape, fake.dtype))
    return tuple(specs)


def _specialized(index: int, axis: int, shape: tuple[int | None, ...]) -> str:
    if axis >= len(shape):
        return f"dynamic_dims names dimension {axis} of input {index}, which has rank {len(shape)}"
    return (f"dynamic_dims marks input {index} dimension {axis} as dynamic, but the model fixes "
            f"it to {shape[axis]} (torch.export specialized it: the model's code fixes that "
            "size); drop it from dynamic_dims")


def _takes_varargs(module: torch.nn.Module) -> bool:
    """forward(*args) only: torch.export wants its dynamic_shapes as one tuple."""
    parameters = list(inspect.signature(module.forward).parameters.values())
    return len(parameters) == 1 and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL


class _FunctionModule(torch.nn.Module):
    """Wraps a plain Python function so torch.export can take it.

    Non-strict export keeps only frames of functions named `forward` in FX stack traces,
    so the wrapped function is a copy of `fn` renamed `forward`: ops then carry the
    user's own lines as their locations.
    """

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        code = getattr(fn, "__code__", None)
        self.fn = fn if code is None else types.FunctionType(
            code.replace(co_name="forward"), fn.__globals__, "forward", fn.__defaults__,
            fn.__closure__)

    def forward(self, *args):
        return self.fn(*args)

