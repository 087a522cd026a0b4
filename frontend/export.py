"""The tracing frontend: torch.export (or a Dynamo GraphModule) imported with FxImporter.

Parameters and buffers become `kiln.param` ops named by their fully qualified names, so the
weights stay out of the IR; their values travel beside the module in `ImportedProgram`.
Each op keeps the Python file:line of the FX node it came from as its MLIR location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import types
from dataclasses import dataclass

import torch
from torch.export import ExportedProgram
from torch_mlir import ir
from torch_mlir.extras.fx_decomp_util import get_decomposition_table
from torch_mlir.extras.fx_importer import FxImporter, FxImporterHooks, InputInfo

from kiln.dialects.context import new_context
from kiln.errors import FrontendError
from kiln.spec import Signature, TensorSpec

DynamicDims = Mapping[int, list[int]]


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


def export_module(model: torch.nn.Module | Callable, example_inputs: tuple[torch.Tensor, ...],
                  dynamic_dims: DynamicDims | None = None) -> ImportedProgram:
    """torch.export `model` with `example_inputs`, then import it into the kiln + torch dialects."""
    module = model if isinstance(model, torch.nn.Module) else _FunctionModule(model)
    dynamic_shapes = _dynamic_shapes(example_inputs, dynamic_dims)
    if isinstance(module, _FunctionModule) and dynamic_shapes is not None:
        dynamic_shapes = (dynamic_shapes,)  # forward(*args) takes the inputs as one tuple
    try:
        program = torch.export.export(module, example_inputs, dynamic_shapes=dynamic_shapes)
    except Exception as e:  # torch.export raises many types; all mean "could not capture"
        raise FrontendError(
            f"torch.export could not capture the model: {_first_line(e)}. Try frontend='script' "
            "or 'trace' for models with data-dependent control flow."
        ) from e
    return import_exported(program, dynamic_dims)


def import_exported(program: ExportedProgram,
                    dynamic_dims: DynamicDims | None = None) -> ImportedProgram:
    """Import an ExportedProgram (after torch-mlir's decompositions) into a new context."""
    program = program.run_decompositions(decompositions())
    ctx = new_context()
    hooks = _ParamsAsKilnOps()
    importer = FxImporter(context=ctx, hooks=hooks)
    importer.import_program(program, func_name="main")
    inputs = _user_input_specs(program, dynamic_dims or {})
    return ImportedProgram(importer.module, hooks.params,
                           Signature(inputs, program.call_spec.out_spec))


# Ops Kiln keeps whole rather than taking torch-mlir's FX decompositions: torch-mlir lowers
# them itself, better. layer_norm decomposed at FX level becomes var_mean, which torch-mlir
# computes in f64 (about 25 f64 reductions per BERT-base call).
KEEP_WHOLE = frozenset({
    torch.ops.aten.layer_norm.default,
    torch.ops.aten.native_layer_norm.default,
})


def decompositions() -> dict:
    """torch-mlir's FX decomposition table without the ops in KEEP_WHOLE."""
    return {op: fn for op, fn in get_decomposition_table().items() if op not in KEEP_WHOLE}


def _user_input_specs(program: ExportedProgram, dynamic_dims: DynamicDims) -> tuple[TensorSpec, ...]:
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    specs = []
    for index, name in enumerate(program.graph_signature.user_inputs):
        fake = placeholders[name].meta["val"]
        if not isinstance(fake, torch.Tensor):
            raise FrontendError(f"input {index} is a {type(fake).__name__}; the export frontend "
                                "takes tensors only (use frontend='script' for scalar inputs)")
        dynamic = set(dynamic_dims.get(index, ()))
        shape = tuple(None if axis in dynamic else int(size) for axis, size in enumerate(fake.shape))
        specs.append(TensorSpec(shape, fake.dtype))
    return tuple(specs)


def _dynamic_shapes(example_inputs: tuple[torch.Tensor, ...],
                    dynamic_dims: DynamicDims | None) -> tuple | None:
    if not dynamic_dims:
        return None
    for index in dynamic_dims:
        if not 0 <= index < len(example_inputs):
            raise FrontendError(f"dynamic_dims names input {index}, but there are only "
                                f"{len(example_inputs)} inputs")
    return tuple(
        {axis: torch.export.Dim(f"input{index}_dim{axis}") for axis in dynamic_dims.get(index, ())}
        or None
        for index in range(len(example_inputs))
    )


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
