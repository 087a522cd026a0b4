"""`torch.compile(model, backend="kiln")`: the Dynamo backend, registered by entry point.

Dynamo hands over a GraphModule whose placeholders are the flat inputs (parameters
included, as Dynamo lifts them, and, under dynamic shapes, the symbolic sizes). Kiln
compiles the whole graph when it can. When it cannot (an op Kiln has no lowering for, a
user's custom op, a partition IREE rejects), the graph is split with torch.fx's
capability-based partitioner: the parts Kiln supports run in IREE, the rest in PyTorch, and
each fallback is logged once at WARNING on the "kiln" logger. `options={"strict": True}`
turns any fallback into the KilnError instead. Dims Dynamo made symbolic stay dynamic, so
one executable serves every size; the Python floats Dynamo passes as inputs under
`dynamic=True` (eps, dropout p, attention scales) are compiled in as constants, each under a
Dynamo guard. Kiln compiles for inference: outputs carry no autograd history.

Dynamo does not trace nn.RNN/GRU/LSTM unless `torch._dynamo.config.allow_rnn` is True: it
runs them (and the code around them in the same function) in eager PyTorch without calling any
backend, so Kiln never sees them. Kiln leaves that process-wide setting alone (it would change
every backend's tracing) and instead tells the user once, at WARNING, from a Dynamo compile
callback (see `_RnnNotice`); with the setting on, Kiln compiles the RNNs like any graph.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from kiln import progress
from kiln.compiler import compile as kiln_compile
from kiln.dialects.context import new_context
from kiln.errors import CompileError, FrontendError, KilnError, first_line
from kiln.frontend.export import decompositions, export_program
from kiln.frontend.graph_inputs import InputPlan, TensorsOnly, fix_python_scalars
from kiln.passes.pipelines import CONDITIONAL_WRONG_LOWERINGS, WRONG_LOWERINGS

log = logging.getLogger("kiln")
OPTIONS = ("strict", "target")


@dataclass(frozen=True)
class BackendOptions:
    """`torch.compile(..., options={...})` as the kiln backend reads it."""

    strict: bool = False    # raise instead of running unsupported parts in PyTorch
    target: str = "cpu"

    @classmethod
    def parse(cls, options: Mapping[str, object] | None) -> BackendOptions:
        options = dict(options or {})
        if unknown := sorted(set(options) - set(OPTIONS)):
            raise FrontendError(f"unknown kiln backend option(s) {', '.join(unknown)}; known: "
                                f"{', '.join(OPTIONS)}")
        return cls(strict=bool(options.get("strict", False)),
                   target=str(options.get("target", "cpu")))


def kiln_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[object],
                 **kwargs: object) -> Callable:
    """Compile the Dynamo graph `gm`; `kwargs["options"]` is `torch.compile(options=...)`."""
    options = BackendOptions.parse(kwargs.get("options"))  # type: ignore[arg-type]
    _RNN_NOTICE.arm()   # again: torch._dynamo.reset() clears Dynamo's callbacks
    log.info("kiln backend: compiling a graph of %d nodes", len(gm.graph.nodes))
    # torch.export inside a backend would otherwise reuse Dynamo's tracing context (its
    # fake mode and shape env), and its guards then name Dynamo's frame (`L['x']`).
    with torch._guards.tracing(None):
        if options.strict:
            return compile_graph(gm, tuple(example_inputs), options.target)
        try:
            compiled = compile_graph(gm, tuple(example_inputs), options.target)
        except Exception as error:  # noqa: BLE001  # the default mode never fails a graph
            return _partitioned(gm, tuple(example_inputs), options.target, _as_kiln(error))
        return _FirstCallChecked(compiled, gm.forward, "the whole graph", len(gm.graph.nodes))


def compile_graph(gm: torch.fx.GraphModule, example_inputs: tuple, target: str,
                  meta_key: str = "example_value") -> Callable:
    """`gm` compiled whole: a callable taking `gm`'s flat inputs (sizes included).

    Dynamo's float inputs (a LayerNorm's eps, an attention scale: `.item()` of a 0-d tensor,
    which torch.export cannot guard on) first become constants under Dynamo guards."""
    fix_python_scalars(gm)
    plan = InputPlan.of(gm, meta_key)
    tensors = plan.examples(example_inputs)
    with progress.compiling("a torch.compile graph"):
        compiled = kiln_compile(TensorsOnly(gm, plan), tensors, frontend="export",
                                target=target, dynamic_dims=plan.dynamic_dims)
    return plan.bind(compiled)


def _partitioned(gm: torch.fx.GraphModule, example_inputs: tuple, target: str,
                 reason: KilnError) -> Callable:
    """Split `gm`: supported partitions compiled by Kiln, the rest run by PyTorch."""
    try:
        plan = InputPlan.of(gm, "example_value")
        program = export_program(TensorsOnly(gm, plan), plan.examples(example_inputs),
                                 plan.dynamic_dims)
        module = program.run_decompositions(decompositions()).module(check_guards=False)
    except Exception as e:  # noqa: BLE001  # the whole graph runs in PyTorch instead
        _warn_fallback("the whole graph", len(gm.graph.nodes), _reason(e))
        return gm.forward
    support = KilnSupport()
    fused = CapabilityBasedPartitioner(module, support, allows_single_node_partition=True
                                       ).partition_and_fuse()
    for op, (count, why) in sorted(support.refused.items()):
        _warn_fallback(op, count, why)
    if not support.refused:   # every op looked supported: the whole-graph error stands
        _warn_fallback("the whole graph", len(gm.graph.nodes), _reason(reason))
        return gm.forward
    _compile_partitions(fused, target)
    return plan.bind(fused)


def _compile_partitions(fused: torch.fx.GraphModule, target: str) -> None:
    """Replace each `fused_N` submodule by its Kiln executable; eager where that fails."""
    for name, submodule in list(fused.named_children()):
        if not name.startswith("fused_") or not isinstance(submodule, torch.fx.GraphModule):
            continue
        examples = tuple(_example(n.meta["val"]) for n in submodule.graph.nodes
                         if n.op == "placeholder")
        try:
            runner = compile_graph(submodule, examples, target, meta_key="val")
        except Exception as e:  # noqa: BLE001  # the partition runs in PyTorch instead
            ops = Counter(str(n.target) for n in submodule.graph.nodes
                          if n.op == "call_function")
            _warn_fallback(f"a partition of {len(ops)} op kinds ({', '.join(sorted(ops)[:4])}"
                           + (", ..." if len(ops) > 4 else "") + ")",
                           sum(ops.values()), _reason(e))
            continue
        what = f"a partition of {len(submodule.graph.nodes)} nodes"
        setattr(fused, name, _Runs(_FirstCallChecked(runner, submodule.forward, what,
                                                      len(submodule.graph.nodes))))


class _FirstCallChecked:
    """A compiled graph whose first call, if it fails, is run by PyTorch instead, and every
    later call too (with the fallback warning): the default mode never fails a graph that
    eager runs. Where eager fails as well, eager's error is the caller's."""

    def __init__(self, compiled: Callable, eager: Callable, what: str, count: int) -> None:
        self.run, self.eager, self.what, self.count = compiled, eager, what, count
        self.checked = False

    def __call__(self, *args):
        if self.checked:
            return self.run(*args)
        try:
            result = self.run(*args)
        except Exception as e:  # noqa: BLE001  # decided below, by what eager does
            failure = e
        else:
            self.checked = True
            return result
        result = self.eager(*args)  # raises eager's own error if eager fails too
        _warn_fallback(self.what, self.count, f"its first compiled call failed: "
                                              f"{first_line(failure)}")
        self.run, self.checked = self.eager, True
        return result


def _as_kiln(error: Exception) -> KilnError:
    """`error` as the KilnError the fallback warning quotes (a bug in Kiln is not a KilnError,
    but the default mode falls back from it all the same)."""
    return error if isinstance(error, KilnError) else CompileError(
        f"internal error ({type(error).__name__}: {first_line(error)})")


class _Runs(torch.nn.Module):
    """A callable as a submodule, so the partitioned GraphModule's call_module reaches it."""

    def __init__(self, runner: Callable) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, *args):
        return self.runner(*args)


class KilnSupport(OperatorSupportBase):
    """Which FX nodes Kiln compiles: aten/prims ops the torch dialect knows, with tensor results.

    A cheap static check: custom ops (any other namespace) and ops torch-mlir has no
    `torch.<ns>.<name>[.<overload>]` op for are refused, with the reason kept in `refused`.
    Host-side size arithmetic (SymInt results) stays in PyTorch without a warning.
    """

    def __init__(self) -> None:
        self.context = new_context()
        self.refused: dict[str, tuple[int, str]] = {}

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        if node.op != "call_function" or not _tensor_valued(node.meta.get("val")):
            return False
        if (why := self._refusal(node.target)) is None:
            return True
        name = str(node.target)
        count, _ = self.refused.get(name, (0, why))
        self.refused[name] = (count + 1, why)
        return False

    def _refusal(self, target: object) -> str | None:
        if not isinstance(target, torch._ops.OpOverload):
            return None if callable(target) and _is_python_arithmetic(target) else (
                f"'{target}' is not a PyTorch op")
        namespace = target.namespace
        if namespace not in ("aten", "prims"):
            return f"custom op of namespace '{namespace}': Kiln has no lowering for it"
        if not self.context.is_registered_operation(mlir_op_name(target)):
            return f"torch-mlir has no '{mlir_op_name(target)}' op"
        if (wrong := WRONG_LOWERINGS.get(mlir_op_name(target))) is not None and (
                mlir_op_name(target) not in CONDITIONAL_WRONG_LOWERINGS):
            return f"torch-mlir lowers it to wrong results ({wrong})"
        return None


def mlir_op_name(op: torch._ops.OpOverload) -> str:
    """The torch-dialect op FxImporter imports `op` as (torch-mlir's own naming rule)."""
    schema = op._schema
    name = "torch." + schema.name.replace("::", ".")
    return f"{name}.{schema.overload_name}" if schema.overload_name else name


def _is_python_arithmetic(target: Callable) -> bool:
    return getattr(target, "__module__", None) in ("_operator", "operator", "math")


def _tensor_valued(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return bool(value) and all(isinstance(v, torch.Tensor) for v in value)
    return isinstance(value, torch.Tensor)


def _example(value: object) -> object:
    """A real tensor shaped like the fake `value` (sizes at their hints); other values as is."""
    if not isinstance(value, torch.Tensor):
        return value
    shape = [s if isinstance(s, int) else s.node.hint for s in value.shape]
    return torch.zeros(shape, dtype=value.dtype, device="cpu")


def _reason(error: BaseException) -> str:
    """What the fallback warning quotes of `error`: its first line, and where that only says
    which stage failed ("kiln-lower failed:"), the first diagnostic under it too."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"[:300]
    return first_line(error)


def _warn_fallback(what: str, count: int, why: str) -> None:
    log.warning("kiln fallback: %s x%d runs in PyTorch: %s", what, count, why)


class _RnnNotice:
    """Tells the user once per process that Dynamo ran an RNN module in eager PyTorch under
    the kiln backend, and what to do about it.

    Dynamo refuses nn.RNN/GRU/LSTM while `torch._dynamo.config.allow_rnn` is False: a graph
    break (often a skipped frame) with no backend call, so Kiln's backend cannot see it. Kiln
    does not turn the setting on itself: it is global and read at trace time, before any
    backend runs, and torch.compile drops a backend's `backend_ctx_ctor`, so no public hook
    limits it to Kiln's frames. Instead a Dynamo end-of-compile callback compares Dynamo's
    "Attempted to wrap RNN, GRU, or LSTM" graph-break counter before and after the compile
    and, where it grew under the kiln backend, logs one `kiln fallback:` line. The callbacks
    are armed when Dynamo loads this module and at each graph Kiln compiles
    (`torch._dynamo.reset()` clears them)."""

    REFUSAL = "Attempted to wrap RNN, GRU, or LSTM"

    def __init__(self) -> None:
        self.told = False
        self.before: Counter[str] = Counter()

    def arm(self) -> None:
        handler = torch._dynamo.callback_handler
        if self.on_start not in handler.start_callbacks:
            handler.register_start_callback(self.on_start)
        if self.on_end not in handler.end_callbacks:
            handler.register_end_callback(self.on_end)

    def on_start(self, args: object) -> None:
        if not self.told:
            self.before = self.refusals()

    def on_end(self, args: object) -> None:
        if self.told or torch._dynamo.config.allow_rnn:
            return
        new = self.refusals() - self.before
        if not new or not _eager_rnn_under_kiln():
            return
        self.told = True
        modules = sorted({_debug_context(key) for key in new})
        _warn_fallback(", ".join(modules), sum(new.values()),
                       "Dynamo does not trace nn.RNN/nn.GRU/nn.LSTM unless "
                       "torch._dynamo.config.allow_rnn is True: it runs them, and the code "
                       "around them in the same function, in eager PyTorch without calling "
                       "any backend; to compile RNNs with Kiln, "
                       "set `torch._dynamo.config.allow_rnn = True` before the compiled "
                       "model's first call (after it, also call `torch._dynamo.reset()`; the "
                       "setting is process-wide: every backend then traces RNNs), or compile "
                       "ahead of time with `kiln.compile(model, example_inputs)`")

    @classmethod
    def refusals(cls) -> Counter[str]:
        """Dynamo's count of RNN-module graph breaks so far, by message."""
        counts = torch._dynamo.utils.counters.get("unimplemented", {})
        return Counter({key: n for key, n in counts.items() if cls.REFUSAL in key})


def _debug_context(message: str) -> str:
    """The module Dynamo's graph-break message names (`LSTM(8, 16, batch_first=True)`)."""
    found = re.search(r"Developer debug context: (.+)", message)
    return found.group(1).strip() if found else "an nn.RNN/nn.GRU/nn.LSTM module"


def _eager_rnn_under_kiln() -> bool:
    """Whether the Dynamo compile under way, which refused an RNN, is for the kiln backend and
    runs the RNN eagerly (not fullgraph=True, where Dynamo raises its own error instead).

    Read off Dynamo's private `_compile` frame (its `compiler_fn`, unwrapped through Dynamo's
    and torch.compile's wrappers, and `one_graph`); where that frame is not found, True, so
    the user is told rather than not."""
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "_compile" and frame.f_globals.get(
            "__name__") == "torch._dynamo.convert_frame"):
        frame = frame.f_back
    local = frame.f_locals if frame is not None else {}
    if "compiler_fn" not in local:
        return True
    if local.get("one_graph"):
        return False
    backend = local["compiler_fn"]
    for _ in range(8):
        if backend is kiln_backend:
            return True
        backend = (getattr(backend, "_torchdynamo_orig_backend", None)
                   or getattr(backend, "compiler_fn", None) or getattr(backend, "func", None))
    return False


_RNN_NOTICE = _RnnNotice()
_RNN_NOTICE.arm()
