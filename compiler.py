"""`kiln.compile`: frontend -> kiln-import-cleanup -> kiln-graph -> kiln-lower -> IREE."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch_mlir import ir

from kiln import progress
from kiln.errors import FrontendError, TargetError, UnsupportedOpError
from kiln.frontend import dims
from kiln.frontend.dims import DynamicDims
from kiln.frontend.export import (
    ImportedProgram,
    decomposition_for,
    export_program,
    fingerprint,
    import_exported,
)
from kiln.frontend.torchscript import import_model
from kiln.passes import external_params
from kiln.passes.cpu.tiles import tile_for
from kiln.passes.gpu.loops import longest_reduction
from kiln.passes.graph_values import vtensor_dtype
from kiln.passes.pipelines import (
    check_supported,
    dump_folder,
    dump_ir,
    render_element,
    run_pipeline,
    verify_kiln_ops,
)
from kiln.passes.registry import PassContext
from kiln.passes.written_inputs import entry_function, written_arguments
from kiln.runtime import program_cache
from kiln.runtime.compile import compile_linalg
from kiln.runtime.module import CODEGEN_STAGE, CompiledModule
from kiln.runtime.params import external_weights
from kiln.runtime.targets import ResolvedTarget, resolve_all
from kiln.spec import DTYPE_NAMES

log = logging.getLogger(__name__)

Frontend = Literal["auto", "export", "script", "trace"]
# How many ops torch-mlir cannot lower one compile decomposes with PyTorch's definitions
# (a retry each) before it reports the op.
MAX_DECOMPOSED = 8
ModelLike = torch.nn.Module | Callable | torch.jit.ScriptModule | str | os.PathLike
InputsLike = torch.Tensor | Sequence[object]
FRONTENDS = ("auto", "export", "script", "trace")


@dataclass(frozen=True)
class TargetCode:
    """What `generate_code` made for one target."""

    linalg: str                  # the linalg text IREE compiles, with the weights
    shown: str                   # the same for people: the pipeline named, constants elided
    longest_loop: int | None     # its longest reduction (None: unknown, or not a target
                                 # whose software drivers limit loops)


@dataclass(frozen=True)
class CompileOptions:
    """Knobs beyond the contract's keywords; the defaults are what users should get."""

    graph_passes: bool = True            # run kiln-graph (off: measure what it buys)
    graph_pipeline: str = "kiln-graph"   # or "kiln-graph-all": also the passes without a gain
    iree_flags: tuple[str, ...] = ()     # appended to the target's own flags
    tune_driver: bool = True             # time the example inputs on each CPU driver, keep the best
    cpu_tile: str | None = None          # kiln-codegen-cpu's register tile, e.g. "6x16" (None:
                                         # chosen from the CPU's features, passes/cpu/tiles.py)
    dump_ir: str | None = field(default=None, compare=False)  # folder for IR after every pass
    stats: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)

    def cache_key(self) -> dict[str, object]:
        """The options that change the compiled result (stats do not)."""
        return {"graph_passes": self.graph_passes, "graph_pipeline": self.graph_pipeline,
                "iree_flags": list(self.iree_flags),
                "tune_driver": self.tune_driver, "cpu_tile": self.cpu_tile,
                "external_params_min_bytes": external_params.min_bytes()}


def compile(model: ModelLike, example_inputs: InputsLike, *, frontend: Frontend = "auto",
            target: str | Sequence[str] = "cpu", dynamic_dims: DynamicDims | None = None,
            options: CompileOptions | None = None) -> CompiledModule:
    """Compile a PyTorch model into an IREE executable for one or more targets.

    Args:
        model: An `nn.Module`, a function, a TorchScript module/function, or the path of a
            `torch.jit.save` archive.
        example_inputs: Tensors (a tuple, or one tensor) that fix input shapes and dtypes.
        frontend: "auto", "export", "script" or "trace" (see README, Frontends).
        target: "cpu", "cuda[:sm_XX]", "rocm[:gfxNNN]", "vulkan", or a list of them.
        dynamic_dims: Dimensions that may vary per call: {input index: [dimension, ...]}, or
            with bounds, {input index: {dimension: (low, high)}} (None: no bound; or a
            torch.export.Dim). Calls outside the bounds, or outside the shapes torch.export
            specialized the model to, raise InputError.
        options: A `CompileOptions`.

    Returns:
        A `CompiledModule` callable with tensors, like the model.

    Raises:
        FrontendError: the model could not be captured.
        UnsupportedOpError: an op has no lowering; the message names it and its source line.
        CompileError: a pass or IREE failed; the message says where and how to reproduce.
    """
    options = options or CompileOptions()
    if not isinstance(options, CompileOptions):
        raise FrontendError(f"options must be a kiln.CompileOptions, got {type(options).__name__}"
                            " (torch.compile's options={...} dict is for backend='kiln')")
    dynamic_dims = dims.parse(dynamic_dims)
    inputs = _as_tuple(example_inputs)
    targets = resolve_all(target)
    with progress.compiling(_model_name(model)):
        return _compile(model, inputs, frontend, targets, dynamic_dims, options)


def _model_name(model: ModelLike) -> str:
    """What the progress lines name: `kiln: IREE cpu (compiling MLP, 12 s) ...`."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model).name
    if isinstance(model, torch.jit.ScriptModule):
        return model.original_name
    return getattr(model, "__name__", None) or type(model).__name__


def _compile(model: ModelLike, inputs: tuple, frontend: str, targets: list[ResolvedTarget],
             dynamic_dims: DynamicDims | None, options: CompileOptions) -> CompiledModule:
    """`compile` once its arguments are checked."""
    start = time.perf_counter()
    with progress.stage("capture"):
        fingerprint, load_program, decomposes = _capture(model, inputs, frontend, dynamic_dims)
    # A cache hit runs no passes: when IR dumps are asked for, compile for real.
    key = fingerprint and not dump_folder(options.dump_ir) and program_cache.program_key(
        fingerprint, [[t.key, *t.iree_flags(bool(dynamic_dims)), t.cpu and t.cpu.to_json(),
                       codegen_pipeline(t, options)] for t in targets],
        options.cache_key())
    if key and (cached := program_cache.lookup(key, options.stats)) is not None:
        log.info("program cache hit in %.2f s", time.perf_counter() - start)
        return cached
    extra: dict = {}  # PyTorch's decompositions of the ops torch-mlir could not lower
    first: UnsupportedOpError | None = None
    while True:
        with progress.stage("import"):
            program = load_program(extra)
        output_dtypes = _result_dtypes(program.module)
        try:
            stages = lower_to_linalg(program, options)
            codegen = generate_code(program, targets, options)
            break
        except UnsupportedOpError as e:
            first = first or e
            found = decomposes and decomposition_for(e.op)
            if not found or found[0] in extra or len(extra) >= MAX_DECOMPOSED:
                # A primitive a decomposition made is not what the model used: name that.
                raise (first if e.op.startswith("prims.") else e) from None
            log.info("torch-mlir cannot lower %s: compiling again with it decomposed", e.op)
            extra[found[0]] = found[1]
    executables = {}
    for t in targets:
        with progress.stage(f"IREE {t.key}"):
            executables[t.key] = compile_linalg(codegen[t.key].linalg, t, options.iree_flags,
                                                program.signature.dynamic)
    log.info("compiled in %.2f s", time.perf_counter() - start)
    stages.update({CODEGEN_STAGE + key: code.shown for key, code in codegen.items()})
    weights = external_weights("\n".join(code.linalg for code in codegen.values()),
                               program.params)
    signature = dataclasses.replace(program.signature, output_dtypes=output_dtypes,
                                    written_inputs=written_arguments(program.module))
    module = CompiledModule(signature, executables, stages, params=weights,
                            longest_loops={t.key: codegen[t.key].longest_loop for t in targets
                                           if t.target.software_loop_limit is not None})
    if options.tune_driver:
        _tune(module, inputs)
    if key:
        program_cache.store(key, module, stages, options.stats)
    return module


def _result_dtypes(module: ir.Module) -> tuple[torch.dtype | None, ...]:
    """The dtype of each result of the imported program's `main`, from its torch types."""
    main = entry_function(module)
    return tuple(vtensor_dtype(t) for t in ir.FunctionType(
        ir.TypeAttr(main.attributes["function_type"]).value).results)


def _tune(module: CompiledModule, inputs: tuple) -> None:
    """Let the module pick its fastest driver with the example inputs, where it can run here."""
    if len(inputs) != len(module.signature.inputs):
        return  # export took scalars as constants: the module's call takes the tensors only
    try:  # on copies: a program that updates a buffer in place must not touch the caller's
        module.tune(tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in inputs))
    except TargetError:
        log.info("no device here runs %s: driver choice left to load time", list(module.executables))


def lower_to_linalg(program: ImportedProgram, options: CompileOptions) -> dict[str, str]:
    """Run the target-independent pass layers on `program.module` in place (import cleanup,
    kiln-graph, kiln-lower); the IR text after each layer, for people (large constants
    elided)."""
    module = program.module
    folder = dump_folder(options.dump_ir)
    verify_kiln_ops(module, "import")
    stages = {"import": _text(module)}
    if folder:
        dump_ir(module, "import", folder)
    ctx = PassContext(params=program.params, stats=options.stats)
    graph = ["kiln-import-cleanup"] + ([options.graph_pipeline] if options.graph_passes else [])
    run_pipeline(module, graph, "kiln-graph", ctx, dump_dir=folder)
    stages["graph"] = _text(module)
    if folder:
        dump_ir(module, "graph", folder)
    check_supported(module)
    run_pipeline(module, ["kiln-lower"], "kiln-lower", ctx, dump_dir=folder)
    stages["linalg"] = _text(module)
    if folder:
        dump_ir(module, "linalg", folder)
    return stages


def generate_code(program: ImportedProgram, targets: Sequence[ResolvedTarget],
                  options: CompileOptions) -> dict[str, TargetCode]:
    """Each target's own copy of kiln-lower's linalg (`program.module`) through its
    `codegen_pipeline`: target key -> its TargetCode."""
    codegen = {}
    folder = dump_folder(options.dump_ir)
    ctx = PassContext(params=program.params, stats=options.stats)
    for index, target in enumerate(targets):
        last = index == len(targets) - 1
        module = program.module if last else program.module.operation.clone()
        pipeline = codegen_pipeline(target, options)
        run_pipeline(module, [pipeline], f"kiln-codegen {target.key}", ctx, dump_dir=folder)
        if folder:
            dump_ir(module, f"codegen-{target.key}", folder)
        limited = target.target.software_loop_limit is not None
        codegen[target.key] = TargetCode(module.operation.get_asm(enable_debug_info=False),
                                         f"// {pipeline}\n{_text(module)}",
                                         longest_reduction(module.operation) if limited
                                         else None)
    return codegen


def codegen_pipeline(target: ResolvedTarget, options: CompileOptions | None = None) -> str:
    """The pipeline that takes kiln-lower's linalg to `target`'s: its `codegen` pipeline,
    with the CPU's register tile chosen from the features of the CPU it is compiled for
    (or `options.cpu_tile`)."""
    if (cpu := target.cpu) is None:
        return target.target.codegen
    tile = (options and options.cpu_tile) or tile_for(cpu.features)
    return render_element(target.target.codegen, {"tile": tile})


def _text(module: ir.Module) -> str:
    return module.operation.get_asm(large_elements_limit=16, enable_debug_info=True)


def _capture(model: ModelLike, inputs: tuple[torch.Tensor, ...], frontend: str,
             dynamic_dims: DynamicDims | None
             ) -> tuple[str | None, Callable[[dict], ImportedProgram], bool]:
    """Capture `model` with its frontend: a fingerprint of what was captured (None where the
    frontend has none), a function that imports it into MLIR (given extra decompositions)
    and whether that function applies them (the export frontend does)."""
    if frontend not in FRONTENDS:
        raise FrontendError(f"unknown frontend '{frontend}'; use one of {', '.join(FRONTENDS)}")
    scripted = _is_torchscript(model)
    if frontend == "export" and scripted:
        raise FrontendError("frontend='export' takes an nn.Module or a function, not a "
                            "TorchScript object or archive; use frontend='auto'")
    if frontend in ("export", "auto") and not scripted:
        program = export_program(model, inputs, dynamic_dims)
        return (fingerprint(program, dynamic_dims),
                lambda extra: import_exported(program, dynamic_dims, extra), True)
    return None, lambda extra: import_model(model, inputs, frontend, dynamic_dims), False


def _is_torchscript(model: ModelLike) -> bool:
    return isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction, str,
                              os.PathLike, Path))


def _as_tuple(example_inputs: InputsLike) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (list, tuple)):
        raise FrontendError(f"example_inputs must be a tensor or a tuple of them, got "
                            f"{type(example_inputs).__name__}")
    for index, x in enumerate(example_inputs):
        if isinstance(x, torch.Tensor) and (x.layout != torch.strided
                                            or x.device.type == "meta"):
            raise FrontendError(f"example input {index} is a {x.layout} tensor on {x.device}: "
                                "compile with dense tensors that hold data")
        if isinstance(x, torch.Tensor) and x.dtype not in DTYPE_NAMES:
            raise FrontendError(
                f"example input {index} has dtype {x.dtype}, which Kiln does not compile; it "
                f"compiles {', '.join(str(d).removeprefix('torch.') for d in DTYPE_NAMES)}")
    return tuple(example_inputs)
