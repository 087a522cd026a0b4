"""PyTorch's OpInfo database through `torch.compile(backend="kiln")`: what compiles, what is right.

Every op of `torch.testing._internal.common_methods_invocations.op_db` that supports the dtype
is run on its first N sample inputs (default 2; only samples whose input, args and kwargs are
tensors, Python scalars and lists of them) as `lambda *tensors: op.op(input, *args, **kwargs)`
with the tensors as graph inputs, through `torch.compile(fn, backend="kiln",
options={"strict": True})` (`--mode strict`) or with no options (`--mode default`), and
compared with eager. Each op gets one category:

  compiled   every sample ran in Kiln and matched eager (values, dtypes, shapes; inputs left
             unchanged; no output aliasing an input where eager's does not)
  fallback   strict: a KilnError was raised (UnsupportedOpError, CompileError, ...);
             default: the backend logged a `kiln fallback:` warning (results matched)
  wrong      a silent wrong result: values outside tolerance, wrong dtype, shape or structure,
             an input changed, an output aliasing an input (the category that matters most)
  crash      the worker process died (segfault, abort, out of memory)
  timeout    the op took longer than --timeout seconds (the worker is killed)
  raw-error  strict: an exception that is not a kiln.KilnError; default: any exception at all
             (the default mode promises never to fail what eager runs)
  eager-fails  every sample raised in eager (not counted)
  skipped    no usable sample for the dtype, or no graph reached Kiln (not counted)

An op's category is the worst of its samples' (crash > wrong > raw-error > timeout >
fallback > compiled). "% compiled" is compiled / (total - eager-fails - skipped).

Tolerances: the larger of the OpInfo's own `toleranceOverride`s for the dtype (those of
TestCommon, TestDecomp and TestInductorOpInfo) and the defaults below. float64 is held to
1e-9, tighter than torch's own 1e-7 default, so that a program computed in float32 and cast
back (IREE's f64->f32 demotion) is caught. A wrong op whose values pass at 100x the tolerance
is marked "near-miss" (likely precision, not semantics). Random ops (and `empty*`) are compared
on dtype and shape only.

Each op runs in a worker process (`--jobs`), so a crash is recorded, not fatal; workers are
recycled every 40 ops. Kiln's on-disk cache is a fresh temporary folder (`KILN_CACHE_DIR`),
removed afterwards, unless --cache-dir is given. `torch._dynamo.reset()` before every compile.

    python benchmarks/opinfo_sweep.py --dtype float32 --mode strict --jobs 2
    python benchmarks/opinfo_sweep.py --ops 'softmax|^sum$' --samples 4 --out /tmp/x
    python benchmarks/opinfo_sweep.py --every 2          # ops 0, 2, 4, ... of op_db

Writes benchmarks/results/opinfo_<dtype>_<mode>.json and .md (or --out STEM.json/.md).
Needs `expecttest` (imported by torch's internal test utilities).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

CATEGORIES = ("compiled", "fallback", "wrong", "crash", "timeout", "raw-error", "eager-fails",
              "skipped")
# worst first: an op's category is the worst of its samples'
SEVERITY = ("crash", "wrong", "raw-error", "timeout", "fallback", "compiled")
NOT_COUNTED = ("eager-fails", "skipped")
DTYPES = ("float32", "float64")
MODES = ("strict", "default")
# (rtol, atol) by dtype name; see the module docstring
DEFAULT_TOLERANCE = {"float32": (1e-5, 1e-5), "float64": (1e-9, 1e-9)}
NEAR_MISS = 100.0       # a wrong result within NEAR_MISS x tolerance is marked near-miss
TOLERANCE_SOURCES = ("TestCommon", "TestDecomp", "TestInductorOpInfo")
MAX_SAMPLES_SCANNED = 64
# ops whose outputs are random or uninitialized: compared on dtype and shape only
RANDOM_NAME = re.compile(r"(^|[._])(rand\w*|randn\w*|randint\w*|normal|bernoulli|multinomial|"
                         r"cauchy|exponential|geometric|log_normal|uniform|\w*dropout\w*|"
                         r"empty\w*|new_empty\w*)($|[._])")
FALLBACK_PREFIX = "kiln fallback:"


# ---------------------------------------------------------------------------------------------
# Ops and samples


def op_key(op) -> str:
    """`name` or `name.variant`: how the sweep names an OpInfo."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def all_ops() -> list:
    """op_db, in its own order (the same in every process)."""
    from torch.testing._internal.common_methods_invocations import op_db

    return list(op_db)


def select_ops(patterns: list[str] | None = None, every: int = 1, offset: int = 0,
               limit: int | None = None) -> list[tuple[int, str]]:
    """(index in op_db, key) of the ops whose key matches any regex in `patterns` (re.search),
    then every `every`-th from `offset`, then the first `limit`."""
    keys = [op_key(op) for op in all_ops()]
    chosen = [(i, k) for i, k in enumerate(keys)
              if not patterns or any(re.search(p, k) for p in patterns)]
    chosen = chosen[offset::every]
    return chosen[:limit] if limit else chosen


def find_op(key: str):
    """The OpInfo named `key` (see op_key)."""
    for op in all_ops():
        if op_key(op) == key:
            return op
    raise KeyError(f"no OpInfo named {key!r}")


class _Slot:
    """Where a graph input goes when the sample's structure is rebuilt."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _constant_leaf(value: object) -> bool:
    import torch

    return value is None or value is Ellipsis or isinstance(
        value, (bool, int, float, complex, str, slice, torch.dtype, torch.device,
                torch.memory_format, torch.layout))


def split_sample(sample) -> tuple[list, object]:
    """The sample's tensors (graph inputs; none for a factory such as `arange(5)`) and a
    template of (input, args, kwargs) with each tensor replaced by a _Slot. Raises ValueError
    naming what makes the sample unusable."""
    import torch

    tensors: list = []

    def walk(value: object) -> object:
        if isinstance(value, torch.Tensor):
            if value.layout != torch.strided or value.device.type != "cpu" or \
                    type(value) is not torch.Tensor:
                raise ValueError(f"a {value.layout} {type(value).__name__} on {value.device}")
            tensors.append(value)
            return _Slot(len(tensors) - 1)
        if isinstance(value, torch.Size):
            return value
        if isinstance(value, (list, tuple)):
            items = [walk(v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if _constant_leaf(value):
            return value
        raise ValueError(f"an argument of type {type(value).__name__}")

    template = (walk(sample.input), walk(tuple(sample.args)), walk(dict(sample.kwargs)))
    return tensors, template


def _fill(template: object, tensors: tuple) -> object:
    if isinstance(template, _Slot):
        return tensors[template.index]
    if isinstance(template, list):
        return [_fill(v, tensors) for v in template]
    if isinstance(template, tuple):
        return tuple(_fill(v, tensors) for v in template)
    if isinstance(template, dict):
        return {k: _fill(v, tensors) for k, v in template.items()}
    return template


def sample_function(op, template: object):
    """`lambda *tensors: op.op(input, *args, **kwargs)` for a split_sample template."""
    call = op.op

    def fn(*tensors):
        first, args, kwargs = _fill(template, tensors)
        return call(first, *args, **kwargs)

    return fn


def usable_samples(op, dtype, limit: int = MAX_SAMPLES_SCANNED):
    """Yield (sample index, tensors, template) for the op's first `limit` samples; for a sample
    split_sample refuses, (sample index, None, the reason)."""
    import torch

    torch.manual_seed(0)
    for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=False)):
        if i >= limit:
            return
        try:
            tensors, template = split_sample(sample)
        except ValueError as e:
            yield i, None, str(e)
            continue
        yield i, tensors, template


def tolerance(op, dtype_name: str) -> tuple[float, float]:
    """(rtol, atol): the larger of the defaults and the OpInfo's overrides for the dtype."""
    import torch
    from torch.testing._internal.common_device_type import toleranceOverride

    dtype = getattr(torch, dtype_name)
    rtol, atol = DEFAULT_TOLERANCE[dtype_name]
    for info in getattr(op, "decorators", ()) or ():
        if getattr(info, "cls_name", None) not in TOLERANCE_SOURCES:
            continue
        if getattr(info, "device_type", None) not in (None, "cpu"):
            continue
        if getattr(info, "dtypes", None) and dtype not in info.dtypes:
            continue
        for decorator in getattr(info, "decorators", ()):
            if isinstance(decorator, toleranceOverride) and dtype in decorator.d:
                rtol = max(rtol, decorator.d[dtype].rtol)
                atol = max(atol, decorator.d[dtype].atol)
    return rtol, atol


def is_random(op) -> bool:
    """Ops whose values cannot match eager by name (random or uninitialized outputs); others
    are found random when two eager runs under different seeds differ (run_sample)."""
    return bool(RANDOM_NAME.search(op.name))


class PlainSeedWrapper:
    """Replaces OpInfo's `wrapper_set_seed(op, *args, **kwargs)` (which Dynamo does not trace:
    it would hand Kiln no graph at all) by a plain call, while installed. Random ops are then
    random in eager too, found so by run_sample and compared on dtype and shape only; the
    others (scaled_dot_product_attention without dropout, ...) are compared in full."""

    def __enter__(self) -> Self:
        self._saved = []
        for name, module in list(sys.modules.items()):
            if name.startswith("torch.testing") and hasattr(module, "wrapper_set_seed"):
                self._saved.append((module, module.wrapper_set_seed))
                module.wrapper_set_seed = _plain_call
        return self

    def __exit__(self, *exc: object) -> None:
        for module, original in self._saved:
            module.wrapper_set_seed = original


def _plain_call(op, *args, **kwargs):
    return op(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Comparison


def _leaves(value: object) -> tuple[list, str]:
    """The tensors and Python values of an output, and a description of its structure."""
    import torch

    leaves: list = []

    def walk(v: object) -> str:
        if isinstance(v, torch.Tensor):
            leaves.append(v)
            return "T"
        if isinstance(v, (list, tuple)):
            return f"{type(v).__name__}(" + ",".join(walk(x) for x in v) + ")"
        if isinstance(v, dict):
            return "dict(" + ",".join(f"{k}:{walk(x)}" for k, x in sorted(v.items())) + ")"
        leaves.append(v)
        return type(v).__name__

    return leaves, walk(value)


def compare(actual: object, expected: object, rtol: float, atol: float,
            values: bool = True, label: str = "output") -> str | None:
    """None when `actual` matches `expected` (structure, dtypes, shapes, values within
    tolerance, NaNs equal); else the first difference, one line (naming the `label` of the
    leaf that differs: "output 1")."""
    import torch

    got, got_shape = _leaves(actual)
    want, want_shape = _leaves(expected)
    if got_shape != want_shape:
        return f"{label} structure {got_shape[:80]}, eager {want_shape[:80]}"
    for i, (a, e) in enumerate(zip(got, want)):
        where = f"{label} {i}" if len(want) > 1 else label
        if isinstance(e, torch.Tensor):
            if a.dtype != e.dtype:
                return f"{where}: dtype {a.dtype}, eager {e.dtype}"
            if a.shape != e.shape:
                return f"{where}: shape {tuple(a.shape)}, eager {tuple(e.shape)}"
            if not values:
                continue
            try:
                torch.testing.assert_close(a, e, rtol=rtol, atol=atol, equal_nan=True,
                                           check_device=False, check_layout=False)
            except AssertionError as error:
                return f"{where}: {_mismatch_summary(a, e, error)}"
        elif values or not isinstance(e, (int, float, complex)):
            try:
                torch.testing.assert_close(a, e, rtol=rtol, atol=atol, equal_nan=True)
            except (AssertionError, TypeError, ValueError):
                return f"{where}: {a!r:.60}, eager {e!r:.60}"
    return None


def _mismatch_summary(a, e, error: AssertionError) -> str:
    """One line: how many elements differ and the largest differences."""
    import torch

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = "; ".join(line for line in lines
                       if line.startswith(("Mismatched", "Greatest", "Expected")))
    if not detail:
        detail = lines[0] if lines else "values differ"
    if a.is_floating_point() or a.is_complex():
        if count := int(torch.isnan(a).ne(torch.isnan(e)).sum()):
            detail += f"; {count} NaN where eager has none or the reverse"
        if count := int((~torch.isfinite(a) & torch.isfinite(e)).sum()):
            detail += f"; {count} inf where eager is finite"
    return detail


def max_errors(actual: object, expected: object) -> tuple[float, float]:
    """The largest absolute and relative differences over all floating outputs."""
    import torch

    worst_abs = worst_rel = 0.0
    got, _ = _leaves(actual)
    want, _ = _leaves(expected)
    for a, e in zip(got, want):
        if not (isinstance(a, torch.Tensor) and isinstance(e, torch.Tensor)) or \
                a.shape != e.shape or a.numel() == 0:
            continue
        a, e = a.detach().to(torch.complex128 if (a.is_complex() or e.is_complex())
                             else torch.float64), e.detach().to(
            torch.complex128 if (a.is_complex() or e.is_complex()) else torch.float64)
        both = torch.isfinite(a) & torch.isfinite(e)
        if not bool(both.any()):
            continue
        diff = (a - e).abs()[both]
        worst_abs = max(worst_abs, float(diff.max()))
        worst_rel = max(worst_rel, float((diff / e.abs()[both].clamp_min(1e-30)).max()))
    return worst_abs, worst_rel


def _storages(values: list) -> list[int | None]:
    import torch

    out = []
    for v in values:
        if isinstance(v, torch.Tensor) and v.untyped_storage().nbytes() > 0:
            out.append(v.untyped_storage().data_ptr())
        else:
            out.append(None)
    return out


def aliasing(outputs: object, inputs: tuple) -> tuple[set, set]:
    """(outputs sharing storage with an input, pairs of outputs sharing storage)."""
    outs = _storages(_leaves(outputs)[0])
    ins = {p for p in _storages(list(inputs)) if p is not None}
    with_input = {i for i, p in enumerate(outs) if p is not None and p in ins}
    pairs = {(i, j) for i, p in enumerate(outs) for j, q in enumerate(outs)
             if i < j and p is not None and p == q}
    return with_input, pairs


# ---------------------------------------------------------------------------------------------
# Errors and the kiln log


def message_line(error: BaseException) -> str:
    """The first line of `error`'s message; when it ends in ':' (a diagnostics list), with
    the first diagnostic joined on. Cut to 300 characters."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {_strip_location(lines[1])}"
    return text[:300]


def _strip_location(line: str) -> str:
    return re.sub(r"^(<unknown>|loc\(.*?\)|[^:\s]+:\d+:\d+):\s*(error:\s*)?", "", line)


def kiln_error_in(error: BaseException):
    """The kiln.KilnError `error` is or wraps (Dynamo's BackendCompilerFailed keeps it as
    `inner_exception`; `raise ... from`), else None."""
    from kiln.errors import KilnError

    seen = set()
    todo = [error]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, KilnError):
            return e
        todo += [getattr(e, "inner_exception", None), e.__cause__, e.__context__]
    return None


def innermost(error: BaseException) -> BaseException:
    """Dynamo's wrapper's inner exception, or `error` itself."""
    inner = getattr(error, "inner_exception", None)
    return inner if isinstance(inner, BaseException) else error


class KilnLog(logging.Handler):
    """Collects the "kiln" logger's records while installed (a context manager)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception as e:  # noqa: BLE001 - a bad log record must not end the sweep
            message = f"unformattable log record: {e}"
        self.messages.append((record.levelno, message))

    @property
    def fallbacks(self) -> list[str]:
        return [m for level, m in self.messages
                if level >= logging.WARNING and m.startswith(FALLBACK_PREFIX)]

    def __enter__(self) -> Self:
        logger = logging.getLogger("kiln")
        self._level, self._propagate = logger.level, logger.propagate
        logger.addHandler(self)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("kiln")
        logger.removeHandler(self)
        logger.setLevel(self._level)


class IreeCalls:
    """Counts calls of Kiln executables (CompiledModule.__call__) while installed."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> Self:
        from kiln.runtime.module import CompiledModule

        self._real = real = CompiledModule.__call__
        counter = self

        def counted(module, *args):
            counter.count += 1
            return real(module, *args)

        CompiledModule.__call__ = counted
        return self

    def __exit__(self, *exc: object) -> None:
        from kiln.runtime.module import CompiledModule

        CompiledModule.__call__ = self._real


def group_of(message: str) -> str:
    """A key grouping similar error messages: the unsupported op named, or the message with
    torch ops, numbers, shapes, paths and locations masked (the ops are in the examples)."""
    text = message
    if text.startswith(FALLBACK_PREFIX):    # kiln fallback: WHAT xN runs in PyTorch: WHY
        m = re.match(r"kiln fallback: (.*?) x\d+ runs in PyTorch: (.*)", text)
        if m:
            what, why = m.groups()
            if what.startswith(("the whole graph", "a partition")):
                text = why
            else:
                text = f"{why}" if why else what
    m = re.search(r"Kiln cannot compile the PyTorch op '([^']+)'", text)
    if m:
        return f"unsupported op '{m.group(1)}'"
    m = re.search(r"torch-mlir has no '([^']+)' op", text)
    if m:
        return f"torch-mlir has no '{m.group(1)}' op"
    text = re.sub(r"\(at [^)]*\)", "", text)
    text = re.sub(r"'torch\.[\w.]+'", "'torch.OP'", text)   # the same cause, whichever op
    text = re.sub(r"undefined symbol: \w+", "undefined symbol: SYMBOL", text)
    text = re.sub(r"(?<!\w)(/[\w.+-]+){2,}", "PATH", text)
    text = re.sub(r"\b[0-9a-f]{12,}\b", "HASH", text)
    text = re.sub(r"\b(\d+x|\?x)+[a-z]+\d*\b", "SHAPE", text)
    text = re.sub(r"\[[\d, ]*\]|\([\d, ]*\)", "SIZES", text)
    text = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?\b", "N", text)
    return re.sub(r"\s+", " ", text).strip()[:160]


# ---------------------------------------------------------------------------------------------
# One sample, one op


@dataclass
class SampleResult:
    index: int
    category: str                  # a CATEGORY, or "no-graph" / "eager-fails" / "skipped"
    error: str = ""                # first line of the error or difference
    error_type: str = ""
    graphs: int = 0                # graphs Dynamo handed to Kiln
    iree_calls: int = 0            # calls of Kiln executables
    fallbacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_abs: float | None = None
    max_rel: float | None = None


def _clone(tensors) -> tuple:
    return tuple(t.clone() for t in tensors)


def _compile(fn, mode: str, backend: str = "kiln"):
    import torch

    if backend != "kiln":
        return torch.compile(fn, backend=backend)
    if mode == "strict":
        return torch.compile(fn, backend="kiln", options={"strict": True})
    return torch.compile(fn, backend="kiln")


def run_sample(op, index: int, tensors: list, template: object, mode: str,
               rtol: float, atol: float, random: bool = False,
               cached_check: bool = False) -> SampleResult:
    """One sample: eager, then compiled (after torch._dynamo.reset()), compared."""
    import torch

    fn = sample_function(op, template)
    eager_inputs = _clone(tensors)
    try:
        torch.manual_seed(1234)
        expected = fn(*eager_inputs)
    except Exception as e:  # noqa: BLE001 - eager's own failure: the sample is skipped
        return SampleResult(index, "eager-fails", message_line(e), type(e).__name__)
    if not random:   # an op random under another seed is compared on dtype and shape only
        try:
            torch.manual_seed(4321)
            again = fn(*_clone(tensors))
            random = compare(again, expected, 0.0, 0.0) is not None
        except Exception:  # noqa: BLE001
            random = True
    eager_alias, eager_pairs = aliasing(expected, eager_inputs)

    result = SampleResult(index, "compiled")
    if random:
        result.notes.append("random: dtype and shape compared only")
    compiled_inputs = _clone(tensors)
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    counters.clear()
    with KilnLog() as kiln_log, IreeCalls() as calls:
        try:
            torch.manual_seed(1234)
            actual = _compile(fn, mode)(*compiled_inputs)
        except Exception as e:  # noqa: BLE001 - classified below
            actual, error = None, e
        else:
            error = None
    result.graphs = int(counters["stats"].get("unique_graphs", 0))
    result.iree_calls = calls.count
    result.fallbacks = sorted(set(kiln_log.fallbacks))
    breaks = sum(counters["graph_break"].values())
    if breaks:
        result.notes.append(f"{breaks} graph break(s)")
    if error is not None:
        kiln_error = kiln_error_in(error)
        shown = kiln_error if kiln_error is not None else innermost(error)
        result.error, result.error_type = message_line(shown), type(shown).__name__
        if mode == "strict" and kiln_error is not None:
            result.category = "fallback"
        else:
            result.category = "raw-error"
            if kiln_error is None:
                result.notes.append(_eager_backend_note(fn, tensors))
        return result

    difference = compare(actual, expected, rtol, atol, values=not random)
    if difference is None:
        inputs_after = compare(list(compiled_inputs), list(eager_inputs), rtol, atol,
                               values=not random, label="input")
        if inputs_after is not None:
            difference = "an input was changed by the compiled call: " + inputs_after
    if difference is None:
        alias, pairs = aliasing(actual, compiled_inputs)
        if extra := sorted(alias - eager_alias):
            difference = f"output {extra[0]} shares storage with an input (eager's does not)"
        elif extra := sorted(pairs - eager_pairs):
            difference = f"outputs {extra[0][0]} and {extra[0][1]} share storage (eager's do not)"
    if difference is not None:
        result.category, result.error, result.error_type = "wrong", difference, "mismatch"
        if difference.startswith("output") and "Mismatched" in difference:   # values differ
            result.max_abs, result.max_rel = max_errors(actual, expected)
            if compare(actual, expected, rtol * NEAR_MISS, atol * NEAR_MISS) is None:
                result.notes.append(f"near-miss: within {NEAR_MISS:g}x the tolerance")
        if result.graphs == 0:
            result.notes.append("no graph reached Kiln")
        return result
    if result.fallbacks:
        result.category = "fallback"
        result.error = result.fallbacks[0][:300]
        result.error_type = "fallback warning"
        return result
    if result.graphs == 0:
        result.category = "no-graph"
        result.error = "Dynamo handed Kiln no graph"
        return result
    if cached_check:
        again = _cached_recompile(fn, tensors, mode)
        if isinstance(again, BaseException):
            result.category, result.error = "raw-error", "cached compile: " + message_line(again)
            result.error_type = type(innermost(again)).__name__
        elif (difference := compare(again, expected, rtol, atol, values=not random)):
            result.category, result.error = "wrong", "cached compile: " + difference
            result.error_type = "mismatch"
    return result


def _cached_recompile(fn, tensors, mode: str):
    """The same sample compiled a second time (a program-cache hit) and called."""
    import torch

    torch._dynamo.reset()
    try:
        torch.manual_seed(1234)
        return _compile(fn, mode)(*_clone(tensors))
    except Exception as e:  # noqa: BLE001
        return e


def _eager_backend_note(fn, tensors) -> str:
    """Whether Dynamo itself (backend="eager") fails the same sample."""
    import torch

    torch._dynamo.reset()
    try:
        _compile(fn, "default", backend="eager")(*_clone(tensors))
    except Exception as e:  # noqa: BLE001
        return f"also fails with backend='eager': {message_line(innermost(e))[:120]}"
    finally:
        torch._dynamo.reset()
    return "passes with backend='eager'"


def run_op(op, dtype_name: str, mode: str, samples: int = 2,
           cached_check: bool = False) -> dict:
    """The sweep's record for one op: category, first error line, per-sample details."""
    import torch

    start = time.perf_counter()
    dtype = getattr(torch, dtype_name)
    record = {"op": op_key(op), "category": "skipped", "error": "", "error_type": "",
              "group": "", "notes": [], "samples": [], "seconds": 0.0}
    if dtype not in op.supported_dtypes("cpu"):
        record["error"] = f"no {dtype_name} support on cpu"
        return _finish(record, start)
    rtol, atol = tolerance(op, dtype_name)
    random = is_random(op)
    results: list[SampleResult] = []
    refused: list[str] = []
    try:
        with PlainSeedWrapper():
            results = _run_samples(op, dtype, mode, samples, rtol, atol, random, cached_check,
                                   refused)
    except Exception as e:  # noqa: BLE001 - sample generation failed
        record["error"] = f"sample generation failed: {message_line(e)}"
        return _finish(record, start)
    finally:
        torch._dynamo.reset()
    if results and isinstance(results[-1], str):
        record["notes"].append(results.pop())
    record["samples"] = [asdict(r) for r in results]
    record["tolerance"] = [rtol, atol]
    ran = [r for r in results if r.category != "eager-fails"]
    if not results:
        record["error"] = ("no usable sample: " + "; ".join(sorted(set(refused)))[:200]
                           if refused else "no samples")
        return _finish(record, start)
    if not ran:
        record["category"] = "eager-fails"
        record["error"], record["error_type"] = results[0].error, results[0].error_type
        return _finish(record, start)
    counted = [r for r in ran if r.category != "no-graph"]
    if not counted and all(r.category == "no-graph" for r in ran):
        record["error"] = "Dynamo handed Kiln no graph"
        return _finish(record, start)
    worst = min(counted, key=lambda r: SEVERITY.index(r.category))
    record["category"] = worst.category
    record["error"], record["error_type"] = worst.error, worst.error_type
    record["notes"] += sorted({n for r in ran for n in r.notes})
    if record["category"] == "fallback" and mode == "default":
        record["fallbacks"] = sorted({f for r in ran for f in r.fallbacks})
    return _finish(record, start)


def _run_samples(op, dtype, mode: str, samples: int, rtol: float, atol: float, random: bool,
                 cached_check: bool, refused: list[str]) -> list:
    """run_sample over the op's usable samples until `samples` of them ran in eager; a note
    (a str) last when sample generation stopped with an error after some samples."""
    results: list = []
    try:
        for index, tensors, template in usable_samples(op, dtype):
            if tensors is None:
                refused.append(template)
                continue
            results.append(run_sample(op, index, tensors, template, mode, rtol, atol, random,
                                      cached_check))
            if sum(r.category != "eager-fails" for r in results) >= samples:
                break
    except Exception as e:
        if not results:
            raise
        results.append(f"sample generation stopped: {message_line(e)[:100]}")
    return results


def _finish(record: dict, start: float) -> dict:
    record["seconds"] = round(time.perf_counter() - start, 2)
    if record["category"] not in ("compiled", "skipped") and record["error"]:
        record["group"] = group_of(record["error"])
    return record


# ---------------------------------------------------------------------------------------------
# Worker processes


def worker_main(conn, log_path: str, dtype_name: str, mode: str, samples: int,
                cached_check: bool) -> None:
    """A pool worker: reads (index, key) from `conn`, answers with run_op's record."""
    import faulthandler

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    faulthandler.enable(file=log)
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    logging.getLogger("kiln").propagate = False
    ops = all_ops()
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, key = task
        print(f"=== {key}", flush=True)
        sys.stderr.flush()
        op = ops[index]
        if op_key(op) != key:
            record = {"op": key, "category": "raw-error", "error": "op_db order differs",
                      "error_type": "SweepError", "notes": [], "samples": []}
        else:
            try:
                record = run_op(op, dtype_name, mode, samples, cached_check)
            except Exception as e:  # noqa: BLE001 - a sweep bug: recorded, the sweep goes on
                record = {"op": key, "category": "raw-error",
                          "error": f"sweep error: {message_line(e)}",
                          "error_type": type(e).__name__, "notes": [traceback.format_exc()[-500:]],
                          "samples": []}
        conn.send(record)


class _Worker:
    def __init__(self, context, number: int, workdir: Path, args) -> None:
        self.log_path = workdir / f"worker-{number}.log"
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=worker_main, daemon=True,
            args=(child, str(self.log_path), args.dtype, args.mode, args.samples,
                  args.cached_check))
        self.process.start()
        child.close()
        self.task: tuple[int, str] | None = None
        self.started = 0.0
        self.done = 0

    def give(self, task: tuple[int, str]) -> None:
        self.task, self.started = task, time.monotonic()
        self.conn.send(task)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()

    def crash_lines(self) -> str:
        """What the worker wrote after the current op's marker (faulthandler's report)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        marker = f"=== {self.task[1]}" if self.task else "==="
        tail = text[text.rfind(marker):] if marker in text else text[-2000:]
        lines = [ln for ln in tail.splitlines()[1:] if ln.strip()]
        fatal = [ln for ln in lines if "Fatal Python error" in ln or "error" in ln.lower()]
        return (fatal or lines or [""])[0][:200]


def run_pool(tasks: list[tuple[int, str]], args, workdir: Path, progress) -> list[dict]:
    """Runs run_op for every task in `args.jobs` worker processes; a dead or timed-out
    worker is replaced and its op recorded as crash / timeout."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    pending = collections.deque(tasks)
    workers: list[_Worker] = []
    records: list[dict] = []
    spawned = 0
    try:
        while pending or any(w.task for w in workers):
            while len(workers) < args.jobs and pending:
                workers.append(_Worker(context, spawned, workdir, args))
                spawned += 1
            for w in workers:
                if w.task is None and pending:
                    w.give(pending.popleft())
            busy = [w for w in workers if w.task]
            now = time.monotonic()
            wait_for = max(0.1, min(w.started + args.timeout - now for w in busy))
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                         timeout=wait_for)
            for w in list(busy):
                record = None
                if w.conn in ready or w.conn.poll():
                    try:
                        record = w.conn.recv()
                    except (EOFError, OSError):
                        record = None
                if record is not None:
                    record["seconds_wall"] = round(time.monotonic() - w.started, 2)
                    records.append(record)
                    progress(record)
                    w.task = None
                    w.done += 1
                    if w.done >= args.recycle:
                        w.stop()
                        workers.remove(w)
                    continue
                if not w.process.is_alive():
                    code = w.process.exitcode
                    record = _failed(w.task[1], "crash", _exit_text(code), w.crash_lines())
                elif time.monotonic() - w.started > args.timeout:
                    w.stop(kill=True)
                    record = _failed(w.task[1], "timeout",
                                     f"no result after {args.timeout:g} s", "")
                else:
                    continue
                record["seconds_wall"] = round(time.monotonic() - w.started, 2)
                records.append(record)
                progress(record)
                w.task = None
                w.stop(kill=True)
                workers.remove(w)
    finally:
        for w in workers:
            w.stop(kill=bool(w.task))
    return records


def _failed(key: str, category: str, error: str, detail: str) -> dict:
    record = {"op": key, "category": category, "error": error, "error_type": category,
              "notes": [detail] if detail else [], "samples": []}
    record["group"] = group_of(error)
    return record


def _exit_text(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        try:
            return f"worker died: {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"worker died with exit code {code}"


# ---------------------------------------------------------------------------------------------
# Summary


def summarize(records: list[dict]) -> dict:
    counts = collections.Counter(r["category"] for r in records)
    total = len(records)
    counted = total - sum(counts[c] for c in NOT_COUNTED)
    groups: dict[str, dict[str, list[str]]] = {}
    for r in records:
        if r["category"] in ("compiled", "skipped", "eager-fails"):
            continue
        keys = [group_of(r["error"])]
        if r["category"] == "fallback" and r.get("fallbacks"):   # default mode: every cause
            keys = sorted({group_of(f) for f in r["fallbacks"]})
        for key in keys:
            groups.setdefault(r["category"], {}).setdefault(key, []).append(r["op"])
    top = {category: sorted(([k, v] for k, v in by.items()), key=lambda kv: (-len(kv[1]), kv[0]))
           for category, by in groups.items()}
    return {
        "total": total,
        "counts": {c: counts.get(c, 0) for c in CATEGORIES},
        "counted": counted,
        "percent_compiled": round(100.0 * counts["compiled"] / counted, 1) if counted else 0.0,
        "percent_not_failing": round(100.0 * (counts["compiled"] + counts["fallback"]) / counted,
                                     1) if counted else 0.0,
        "groups": top,
        "skipped_reasons": dict(collections.Counter(
            _skip_reason(r["error"]) for r in records if r["category"] == "skipped"
        ).most_common()),
    }


def _skip_reason(error: str) -> str:
    return re.sub(r": .*", "", error) if error.startswith("no usable sample") else error


def write_results(stem: Path, meta: dict, records: list[dict]) -> dict:
    summary = summarize(records)
    stem.parent.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r["op"])
    stem.with_suffix(".json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "ops": records}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(meta, summary, records))
    return summary


def _cell(text: str, limit: int = 200) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


def markdown(meta: dict, summary: dict, records: list[dict]) -> str:
    out = [f"# OpInfo sweep: {meta['dtype']}, {meta['mode']} mode", ""]
    out.append(f"`{meta['command']}`  ")
    out.append(f"torch {meta['torch']}, Kiln {meta['kiln_commit']}"
               + (f" with uncommitted changes (diff sha256 {meta.get('kiln_diff_sha256')})"
                  if meta.get("kiln_dirty") else "") + " "
               f"(`{meta.get('kiln_source', '')}`), {meta['date']}, "
               f"{meta['samples']} sample(s) per op, {meta['ops_selected']} of "
               f"{meta['ops_in_db']} op_db entries{meta['subset']}, {meta['elapsed_s']:.0f} s "
               f"with {meta['jobs']} job(s), per-op timeout {meta['timeout_s']:g} s.")
    out += ["", (f"**{summary['percent_compiled']}% compiled** "
                 f"({summary['counts']['compiled']} of {summary['counted']} ops counted: total "
                 f"{summary['total']} less eager-fails and skipped); compiled or fell back "
                 f"cleanly: {summary['percent_not_failing']}%."), "",
            "| category | ops |", "|---|---|"]
    out += [f"| {c} | {summary['counts'][c]} |" for c in CATEGORIES]
    if summary.get("skipped_reasons"):
        out += ["", "Skipped: " + "; ".join(f"{why} ({n})" for why, n in
                                           summary["skipped_reasons"].items()) + "."]
    by_category = collections.defaultdict(list)
    for r in records:
        by_category[r["category"]].append(r)
    for category in ("wrong", "crash", "timeout", "raw-error"):
        rows = by_category.get(category, [])
        out += ["", f"## {category} ({len(rows)})", ""]
        if not rows:
            out.append("None.")
            continue
        out += ["| op | first error line | notes |", "|---|---|---|"]
        for r in rows:
            notes = "; ".join(n for n in r.get("notes", []) if len(n) < 200)
            errs = ""
            for s in r.get("samples", []):
                if s.get("max_abs") is not None and s.get("category") == "wrong":
                    errs = f" (max abs {s['max_abs']:.3g}, max rel {s['max_rel']:.3g})"
                    break
            out.append(f"| `{r['op']}` | {_cell(r['error'] + errs, 300)} | {_cell(notes, 160)} |")
    for category in ("fallback", "raw-error", "wrong", "crash"):
        groups = summary["groups"].get(category, [])
        if not groups:
            continue
        out += ["", f"## Causes of {category}, grouped ({len(groups)} groups)", "",
                "| ops | cause | examples |", "|---|---|---|"]
        for key, ops in groups[:40]:
            examples = ", ".join(f"`{o}`" for o in ops[:8]) + (", ..." if len(ops) > 8 else "")
            out.append(f"| {len(ops)} | {_cell(key, 160)} | {examples} |")
    out += ["", "## Every op", "", "| op | category | first error line |", "|---|---|---|"]
    for r in records:
        out.append(f"| `{r['op']}` | {r['category']} | {_cell(r['error'], 160)} |")
    return "\n".join(out) + "\n"


def _git(folder: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def kiln_version() -> dict:
    """Which Kiln the workers import (a PYTHONPATH copy can stand in for the checkout) and its
    commit; KILN_SWEEP_COMMIT names the commit of a copy that is no git checkout."""
    import importlib.util

    spec = importlib.util.find_spec("kiln")
    folder = Path(spec.origin).parent if spec and spec.origin else HERE.parent
    commit = _git(folder, "rev-parse", "--short", "HEAD") if (folder / ".git").exists() else ""
    dirty = bool(commit) and bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))
    diff = _git(folder, "diff", "HEAD") if dirty else ""
    return {"kiln_source": str(folder),
            "kiln_commit": commit or os.environ.get("KILN_SWEEP_COMMIT", "unknown"),
            "kiln_dirty": dirty,
            "kiln_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:12] if dirty else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", action="append", default=None,
                        help="regex searched in op keys (name or name.variant); repeatable")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--mode", choices=MODES, default="strict")
    parser.add_argument("--samples", type=int, default=2, help="samples per op (default 2)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per op")
    parser.add_argument("--every", type=int, default=1, help="every K-th selected op")
    parser.add_argument("--offset", type=int, default=0, help="first op of --every")
    parser.add_argument("--limit", type=int, default=None, help="at most N ops")
    parser.add_argument("--out", type=Path, default=None,
                        help="result path stem (.json and .md are written); default "
                             "benchmarks/results/opinfo_<dtype>_<mode>")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="KILN_CACHE_DIR for the sweep (default: a fresh temporary folder)")
    parser.add_argument("--cached-check", action="store_true",
                        help="compile each passing sample a second time (a program-cache hit) "
                             "and compare that too")
    parser.add_argument("--recycle", type=int, default=40, help="ops per worker process")
    parser.add_argument("--list", action="store_true", help="list the selected ops and exit")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="rewrite the .md (and summary) of an earlier run's .json and exit")
    args = parser.parse_args(argv)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        write_results(args.from_json.with_suffix(""), data["meta"], data["ops"])
        return 0
    tasks = select_ops(args.ops, args.every, args.offset, args.limit)
    if args.list:
        print("\n".join(k for _, k in tasks))
        return 0
    stem = args.out or RESULTS / f"opinfo_{args.dtype}_{args.mode}"
    if stem.suffix in (".md", ".json"):
        stem = stem.with_suffix("")
    workdir = Path(tempfile.mkdtemp(prefix="kiln-opinfo-"))
    cache = args.cache_dir or workdir / "cache"
    os.environ["KILN_CACHE_DIR"] = str(cache)
    os.environ["KILN_PROGRESS"] = "0"
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    start = time.monotonic()
    done = collections.Counter()

    def progress(record: dict) -> None:
        done[record["category"]] += 1
        n = sum(done.values())
        line = f"[{n}/{len(tasks)} {time.monotonic() - start:6.0f}s] {record['op']}: " \
               f"{record['category']}"
        if record["category"] not in ("compiled",):
            line += f": {record['error'][:150]}"
        print(line, flush=True)

    subset = ""
    if args.ops:
        subset += f", ops matching {' | '.join(args.ops)}"
    if args.every > 1 or args.offset:
        subset += f", every {args.every}th from {args.offset}"
    if args.limit:
        subset += f", first {args.limit}"
    try:
        records = run_pool(tasks, args, workdir, progress)
    finally:
        if args.cache_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "dtype": args.dtype, "mode": args.mode, "samples": args.samples, "jobs": args.jobs,
        "timeout_s": args.timeout, "ops_in_db": len(op_db), "ops_selected": len(tasks),
        "subset": subset, "torch": torch.__version__, **kiln_version(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - start, 1),
        "command": "python benchmarks/opinfo_sweep.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "tolerance_defaults": DEFAULT_TOLERANCE,
    }
    summary = write_results(stem, meta, records)
    print(f"\n{summary['percent_compiled']}% compiled; " + ", ".join(
        f"{c} {n}" for c, n in summary["counts"].items()))
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
