"""Named pipelines (data), the pass manager built from them, and the reporting driver.

An element of a pipeline is a Kiln pass name, a pipeline name, or an upstream MLIR pass or
pipeline in textual form. `kiln-opt` and `kiln.compile` read the same table.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from torch_mlir import ir
from torch_mlir.passmanager import PassManager

# The kiln.passes modules are imported for the side effect of registering their passes.
from kiln import progress
from kiln.config import cache_dir
from kiln.dialects.kiln import kiln_problems, walk
from kiln.errors import CompileError, PassOptionError, UnsupportedOpError
from kiln.passes import adaptive_pool as _adaptive_pool  # noqa: F401
from kiln.passes import attention as _attention  # noqa: F401
from kiln.passes import backend_contract as _backend_contract  # noqa: F401
from kiln.passes import batch_slices as _batch_slices  # noqa: F401
from kiln.passes import control_flow as _control_flow  # noqa: F401
from kiln.passes import control_flow_opt as _control_flow_opt  # noqa: F401
from kiln.passes import conv_bias as _conv_bias  # noqa: F401
from kiln.passes import conv_transpose as _conv_transpose  # noqa: F401
from kiln.passes import dynamic_reshapes as _dynamic_reshapes  # noqa: F401
from kiln.passes import dynamic_views as _dynamic_views  # noqa: F401
from kiln.passes import external_params as _external_params  # noqa: F401
from kiln.passes import fold_batchnorm as _fold_batchnorm  # noqa: F401
from kiln.passes import fold_params as _fold_params  # noqa: F401
from kiln.passes import fuse_elementwise as _fuse_elementwise  # noqa: F401
from kiln.passes import fuse_linears as _fuse_linears  # noqa: F401
from kiln.passes import index_checks as _index_checks  # noqa: F401
from kiln.passes import lower_fused as _lower_fused  # noqa: F401
from kiln.passes import params as _params  # noqa: F401
from kiln.passes import unbatched as _unbatched  # noqa: F401
from kiln.passes import widen_unsigned as _widen_unsigned  # noqa: F401
from kiln.passes.cpu import conv_batch as _conv_batch  # noqa: F401
from kiln.passes.cpu import mmt4d_dispatches as _mmt4d_dispatches  # noqa: F401
from kiln.passes.cpu import pack_matmuls as _pack_matmuls  # noqa: F401
from kiln.passes.cpu import winograd as _winograd  # noqa: F401
from kiln.passes.gpu import element_types as _element_types  # noqa: F401
from kiln.passes.gpu import float64_scalars as _float64_scalars  # noqa: F401
from kiln.passes.locations import render_location
from kiln.passes.registry import PASSES, PassContext, PassFailed, PassInfo

PIPELINES: dict[str, tuple[str, ...]] = {
    # No symbol-dce: it rejects unregistered one-region ops (kiln.loop, kiln.fused) as
    # "potentially unknown symbol table", and Kiln modules hold one function anyway.
    "kiln-import-cleanup": ("canonicalize", "cse"),
    "kiln-graph": (
        # Control flow first: unrolled, if-converted code is what the other passes should see.
        "kiln-fold-constant-branches", "kiln-hoist-loop-invariants", "kiln-unroll-loops",
        "canonicalize", "kiln-fold-constant-branches", "kiln-convert-if-to-select",
        "kiln-batch-slices", "kiln-fold-params", "kiln-fold-batchnorm", "kiln-split-conv-bias",
        "canonicalize",
    ),
    # kiln-graph plus the passes that measured no gain on the CPU, or a loss (BERT-base:
    # fuse-linears 115 -> 124 ms; IREE's attention op 236 ms vs 130 ms decomposed). Kept,
    # tested and selectable: CompileOptions(graph_pipeline="kiln-graph-all").
    "kiln-graph-all": (
        "kiln-graph", "kiln-raise-attention", "kiln-fuse-linears", "kiln-fuse-elementwise",
        "canonicalize",
    ),
    "kiln-lower": (
        "kiln-lower-control-flow",
        "kiln-check-indices",           # before torch-mlir decomposes the indexing ops
        "kiln-widen-unsigned",          # and before it decomposes uint8 arithmetic
        "kiln-conv-transpose-to-conv",   # makes a param: before the params leave the IR
        "kiln-externalize-params",
        "kiln-inline-params",
        "kiln-lower-attention",
        "kiln-lower-fused",
        "kiln-collapse-dynamic-views",
        "kiln-batch-unbatched-ops",
        "kiln-lower-adaptive-pools",
        "func.func(torch-match-quantized-custom-ops)",
        "torchdynamo-export-to-torch-backend-pipeline",
        "kiln-check-backend-contract",  # a type torch-mlir cannot lower: an error, not a crash
        "torch-backend-to-linalg-on-tensors-backend-pipeline",
        "kiln-expand-dynamic-reshapes",  # [B*S, N] -> [B, S, N] as a view IREE fuses across
    ),
    # Per-target code generation: each target's copy of kiln-lower's linalg goes through its
    # own pipeline (`runtime/targets.py` names it) before IREE compiles it. Pipeline options
    # reach the member passes that take them: kiln-codegen-cpu{tile=16x16}.
    "kiln-codegen-cpu": (
        # [1, S, D] epilogues as 2D generics, which kiln-pack-matmuls moves onto its tiles.
        "func.func(linalg-fold-unit-extent-dims)", "canonicalize",
        "kiln-pack-matmuls",            # before the Winograds: their matmuls stay IREE's
        "cse",                          # one pack of an activation that feeds several matmuls
        "kiln-mark-winograd-convs",
        "kiln-winograd-small-convs",
        "kiln-split-conv-batch",        # after both Winograds: they handle batches themselves
        "kiln-form-mmt4d-dispatches",   # last: IREE keeps the regions it is handed
    ),
    # The GPU targets get IREE's own code generation from the target-independent linalg:
    # the CPU rewrites were measured on CPUs only.
    "kiln-codegen-cuda": (),
    "kiln-codegen-rocm": (),
    # IREE's portable Vulkan profile computes 32-bit types only: the Python floats of an
    # f32 model made f32 where that is exact, then whatever is left in f64/f16/bf16 refused.
    "kiln-codegen-vulkan": ("kiln-narrow-float64-scalars",
                            "kiln-check-element-types{refuse=f64,f16,bf16 target=vulkan}"),
}
assert not set(PIPELINES) & set(PASSES), "a pipeline and a pass share a name"

_ILLEGAL_OP = re.compile(r"failed to legalize operation '(?P<op>[\w.]+)'")


_KILN_ELEMENT = re.compile(r"(?P<name>kiln-[\w-]+)(\{(?P<options>[^{}]*)\})?")


def parse_element(element: str) -> tuple[str, dict[str, str]] | None:
    """`kiln-name{a=1 b=2}` -> ("kiln-name", {"a": "1", "b": "2"}); None for an element
    that is not a Kiln pass or pipeline (MLIR's, handed to MLIR as it is)."""
    match = _KILN_ELEMENT.fullmatch(element.strip())
    if match is None:
        return None
    options = {}
    for item in (match["options"] or "").split():
        key, equals, value = item.partition("=")
        if not equals or not key or not value:
            raise PassOptionError(f"'{element}': options are written name=value, got '{item}'")
        options[key] = value
    return match["name"], options


def render_element(name: str, options: dict[str, str]) -> str:
    """The inverse of `parse_element`."""
    return f"{name}{{{' '.join(f'{k}={v}' for k, v in options.items())}}}" if options else name


def pipeline_options(name: str) -> set[str]:
    """The options pipeline `name` takes: those of the Kiln passes it holds."""
    found: set[str] = set()
    for element in PIPELINES[name]:
        if (parsed := parse_element(element)) is not None:
            found |= (pipeline_options(parsed[0]) if parsed[0] in PIPELINES
                      else set(PASSES[parsed[0]].options) if parsed[0] in PASSES else set())
    return found


def expand(elements: Sequence[str], inherited: dict[str, str] | None = None) -> list[str]:
    """Pipeline names replaced, recursively, by their elements; a pipeline's options go to
    the Kiln passes in it that take them (an option the pass itself names wins)."""
    flat: list[str] = []
    for element in elements:
        if (parsed := parse_element(element)) is None:
            flat.append(element)
            continue
        name, options = parsed
        if name in PIPELINES:
            if unknown := set(options) - pipeline_options(name):
                raise PassOptionError(
                    f"pipeline '{name}' takes no option {', '.join(sorted(unknown))}; its "
                    f"options: {', '.join(sorted(pipeline_options(name))) or 'none'}")
            flat.extend(expand(PIPELINES[name], {**(inherited or {}), **options}))
        elif (info := PASSES.get(name)) is not None:
            if unknown := set(options) - set(info.options):
                raise PassOptionError(
                    f"pass '{name}' takes no option {', '.join(sorted(unknown))}; its "
                    f"options: {', '.join(sorted(info.options)) or 'none'}")
            passed = {k: v for k, v in (inherited or {}).items() if k in info.options}
            flat.append(render_element(name, {**passed, **options}))
        else:
            known = ", ".join(sorted([*PASSES, *PIPELINES]))
            raise PassOptionError(f"unknown Kiln pass or pipeline '{name}'; known: {known}")
    return flat


def build_pass_manager(elements: Sequence[str], ctx: PassContext) -> PassManager:
    """A pass manager running `elements` (expanded) in order, Kiln passes bound to `ctx`."""
    pm = PassManager()
    for element in expand(elements):
        if (parsed := parse_element(element)) is not None:
            info = PASSES[parsed[0]]
            pm.add(_external(info, ctx, parsed[1]), name=info.name, argument=info.name,
                   description=info.summary)
            continue
        try:
            pm.add(element)
        except ValueError as e:
            raise PassOptionError(f"MLIR does not know the pass '{element}': {e}") from None
    return pm


def _external(info: PassInfo, ctx: PassContext, options: dict[str, str]):
    """The bindings' callback for `info` with `options`: run it, then verify the kiln ops
    it left."""
    keywords = {name.replace("-", "_"): value for name, value in options.items()}

    def run(op: ir.Operation, pass_) -> None:
        try:
            info.run(op, ctx, **keywords)
        except PassFailed:
            pass_.signal_pass_failure()
            return
        if problems := kiln_problems(op):
            for location, message in problems:
                location.emit_error(message)
            pass_.signal_pass_failure()

    return run


def verify_kiln_ops(module: ir.Module, stage: str) -> None:
    """Raise CompileError listing every kiln op of `module` that its verifier rejects."""
    if problems := kiln_problems(module.operation):
        lines = [f"{render_location(loc)}: error: {message}" for loc, message in problems]
        raise CompileError(f"{stage}: invalid kiln IR:\n  " + "\n  ".join(lines))


def run_pipeline(module: ir.Module, elements: Sequence[str], stage: str,
                 ctx: PassContext | None = None, dump_dir: str | Path | None = None) -> None:
    """Run `elements` on `module` in place; failures become a CompileError with a reproducer.

    With `dump_dir` (default: the `KILN_DUMP_IR` environment variable) the elements run one
    by one and the IR after each is written there as `NN-<stage>-MM-<element>.mlir`.
    """
    ctx = ctx or PassContext()
    with progress.stage(stage):
        if (folder := dump_folder(dump_dir)) is None:
            _run_elements(module, elements, stage, ctx)
            return
        number = _next_dump_number(folder)
        for index, element in enumerate(expand(elements), start=1):
            _run_elements(module, [element], stage, ctx)
            dump_ir(module, f"{stage}-{index:02d}-{element}", folder, number)


def _run_elements(module: ir.Module, elements: Sequence[str], stage: str,
                  ctx: PassContext) -> None:
    with module.context:
        pm = build_pass_manager(elements, ctx)
    before = module.operation.get_asm(large_elements_limit=16, enable_debug_info=True)
    try:
        with module.context:
            pm.run(module.operation)
    except (ir.MLIRError, RuntimeError) as e:
        raise _compile_error(e, before, elements, stage, ctx, module) from None


def dump_folder(dump_dir: str | Path | None = None) -> Path | None:
    """Where IR dumps go: `dump_dir`, else `KILN_DUMP_IR`, else None (no dumps)."""
    folder = dump_dir or os.environ.get("KILN_DUMP_IR")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def dump_ir(module: ir.Module, name: str, folder: Path, number: int | None = None) -> Path:
    """Write `module`'s text to `folder/NN-name.mlir` (NN: the next free number if None)."""
    number = _next_dump_number(folder) if number is None else number
    path = folder / f"{number:02d}-{_DUMP_UNSAFE.sub('_', name)}.mlir"
    path.write_text(module.operation.get_asm(large_elements_limit=16, enable_debug_info=True))
    return path


_DUMP_UNSAFE = re.compile(r"[^\w.+-]+")


def _next_dump_number(folder: Path) -> int:
    numbers = [int(p.name[:2]) for p in folder.glob("[0-9][0-9]-*.mlir")]
    return max(numbers, default=0) + 1


# Ops torch-mlir's conversion reports as illegal when the op really left unlowered is the one
# using them: a constant or a value-semantics marker whose user had no pattern.
_GLUE_OPS = ("torch.constant.", "torch.vtensor.literal", "torch.copy.to_vtensor",
             "torch.copy.to_tensor", "torch.overwrite.tensor.contents",
             "torch.prim.ListConstruct", "torch_c.")


def _unlowered_user(module: ir.Module, illegal: str, location: ir.Location) -> str | None:
    """For a glue op `illegal` at `location`, the name of the first non-glue op its values
    reach (through lists and other glue): what the user wrote and torch-mlir could not lower
    (argmax, amax, view.dtype)."""
    if not illegal.startswith(_GLUE_OPS):
        return None
    where = str(location)
    pending = [op for op in walk(module.operation)
               if op.name == illegal and str(op.location) == where]
    seen = set()
    while pending:
        op = pending.pop(0)
        for result in op.results:
            for use in result.uses:
                user = use.owner.operation
                if user.name in ("func.return", "func.call") or user in seen:
                    continue
                if not user.name.startswith(_GLUE_OPS):
                    return user.name
                seen.add(user)
                pending.append(user)
    return None


def _compile_error(error: Exception, before: str, elements: Sequence[str],
                   stage: str, ctx: PassContext, module: ir.Module) -> CompileError:
    found = list(getattr(error, "error_diagnostics", []))
    for diagnostic in found:
        if (match := _ILLEGAL_OP.search(diagnostic.message)) is not None:
            op = _unlowered_user(module, match["op"], diagnostic.location) or match["op"]
            return UnsupportedOpError(op.removeprefix("torch."),
                                      where=render_location(diagnostic.location),
                                      hint="torch-mlir has no lowering for it to linalg")
    lines = [f"{render_location(d.location)}: error: {d.message}"[:300] for d in found]
    repro = _save_repro(before, stage)
    pipeline = ",".join(elements)
    return CompileError(
        f"{stage} failed:\n  " + "\n  ".join(lines or [str(error).strip()])
        + f"\nreproduce with: kiln-opt {repro} --pass-pipeline='{pipeline}'"
    )


# Ops torch-mlir 20261001 lowers to wrong results, refused as unsupported (a fallback in
# torch.compile's default mode) until it lowers them right; tests/test_safety.py fails once
# they come out right, to take them off this list.
WRONG_LOWERINGS: dict[str, str] = {
    "torch.aten.logcumsumexp": "log(cumsum(exp(x))): inf where eager is finite",
    "torch.aten.embedding_bag.padding_idx": "its per_sample_weights are ignored",
}
# Where only some uses are wrong: the op is refused when this says so (else always).
_WRONG_WHEN: dict[str, Callable[[ir.Operation], bool]] = {
    "torch.aten.embedding_bag.padding_idx":
        lambda op: str(op.operands[6].type) != "!torch.none",  # per_sample_weights given
}


CONDITIONAL_WRONG_LOWERINGS = frozenset(_WRONG_WHEN)


def wrong_lowering(op: ir.Operation) -> str | None:
    """Why torch-mlir's lowering of `op` gives wrong results, or None."""
    reason = WRONG_LOWERINGS.get(op.name)
    if reason is None or not _WRONG_WHEN.get(op.name, lambda _: True)(op):
        return None
    return reason


def check_supported(module: ir.Module) -> None:
    """Raise UnsupportedOpError for every op the torch dialect does not know, and for those
    torch-mlir lowers wrongly (WRONG_LOWERINGS).

    The importers keep such ops as `torch.operator "name"` rather than failing early, so
    that one error can name all of them with their source lines.
    """
    unknown = [(op.attributes["name"].value if op.name == "torch.operator" else op.name,
                render_location(op.location), wrong_lowering(op))
               for op in walk(module.operation)
               if op.name == "torch.operator" or wrong_lowering(op)]
    if not unknown:
        return
    op, where, wrong = unknown[0]
    others = "; ".join(f"'{name.removeprefix('torch.')}' at {at}" for name, at, _ in unknown[1:])
    hint = (f"torch-mlir lowers it to wrong results ({wrong})" if wrong
            else "no lowering exists for it in torch-mlir")
    hint += f" (also unsupported: {others})" if others else ""
    raise UnsupportedOpError(op.removeprefix("torch."), where=where, hint=hint)


def _save_repro(text: str, stage: str) -> str:
    try:
        folder = cache_dir() / "repro"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unusable KILN_CACHE_DIR must not hide the compile error
        folder = Path(tempfile.gettempdir()) / "kiln-repro"
        folder.mkdir(exist_ok=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = folder / f"{stage.replace(' ', '-')}-{digest}.mlir"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)
