"""Side-by-side latency of one model under eager, TorchScript, Inductor, ONNX Runtime and Kiln.

Used by `kiln bench` (a user's model) and `benchmarks/run.py` (the standard five). All
variants run in one process and are timed interleaved, round-robin, so that a noisy
neighbour or a frequency change hits them alike. Peers that are not installed (onnxruntime)
are reported as skipped, not silently dropped.

Kiln can be timed for several targets side by side (`kiln_variant("vulkan")`); a row that did
not run on this machine's CPU through Kiln's CPU code is labelled with the device it ran on,
e.g. `kiln-vulkan (vulkan: llvmpipe, software, CPU)`: Mesa's software Vulkan driver runs on
the CPU, and its figures are CPU figures.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import re
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils import _pytree as pytree

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes some peers put in their errors

Runner = Callable[..., object]


@dataclass
class Result:
    """One variant of one model: how long it took to get ready and to run, and how right."""

    variant: str
    ready_s: float | None = None       # compile (or export) plus first call
    median_ms: float | None = None
    max_abs_error: float | None = None
    vs_eager: float | None = None      # eager median / this median: > 1 is faster
    percent_of_peak: float | None = None
    note: str = ""
    device: str = ""                   # "driver: device" where not this CPU's Kiln/torch code

    @property
    def label(self) -> str:
        """The row's name in tables: the variant, and the device it ran on where it has one."""
        return f"{self.variant} ({self.device})" if self.device else self.variant

    def to_json(self) -> dict:
        return asdict(self)


PEAK_SIZE = 2048  # square fp32 matmul through torch: the machine's "peak" in % peak
_PEAK = " peak matmul"  # its key among the timed variants, one no variant has


def _peak_matmul(size: int = PEAK_SIZE) -> Runner:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return lambda *_: torch.mm(a, b)


def model_flops(model: Runner, inputs: tuple) -> int:
    """FLOPs of one eager call, counted by torch's FlopCounterMode (matmul/conv dominated)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


@contextlib.contextmanager
def _gc_paused():
    """Collect, then keep Python's garbage collector off while timing (as `timeit` does).

    Interleaved, a collection set off by one variant's allocations (eager's Python loop
    makes thousands of tensors a call) would otherwise land in whichever call comes next.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _synchronize() -> None:
    """Wait for queued CUDA work, where this process has used CUDA: a GPU variant's call
    returns before its kernels finish, so a block's time counts them only after this."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    _synchronize()
    return time.perf_counter() - start


def _max_abs_error(got: object, expected: object) -> float:
    flat_got = [t for t in pytree.tree_leaves(got) if isinstance(t, torch.Tensor)]
    flat_want = [t for t in pytree.tree_leaves(expected) if isinstance(t, torch.Tensor)]
    if len(flat_got) != len(flat_want):
        return float("inf")
    return max((float((a.detach().cpu().float() - b.detach().cpu().float()).abs().max())
                for a, b in zip(flat_got, flat_want) if a.numel()), default=0.0)


def prepare_torchscript(model: Runner, inputs: tuple, script: bool = False) -> Runner:
    """trace (or script) + freeze + optimize_for_inference, the fastest TorchScript setup."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(model, torch.jit.ScriptModule):
            module = model
        else:
            module = torch.jit.script(model) if script else torch.jit.trace(model, inputs,
                                                                           strict=False)
        if isinstance(module, torch.jit.ScriptModule):
            module = torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))
    return module


def prepare_inductor(model: Runner, inputs: tuple) -> Runner:
    torch._dynamo.reset()
    return torch.compile(model)


def prepare_onnxruntime(model: Runner, inputs: tuple) -> Runner:
    """torch.onnx.export (dynamo exporter) then an onnxruntime CPU session."""
    import onnxruntime

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, inputs, dynamo=True, verbose=False)
        program.save(buffer) if hasattr(program, "save") else None
    data = buffer.getvalue() or program.model_proto.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*args):
        feeds = {n: a.numpy() for n, a in zip(names, args)}
        return [torch.from_numpy(o) for o in session.run(None, feeds)]

    return run


def prepare_kiln(model: Runner, inputs: tuple, frontend: str = "auto",
                 target: str = "cpu") -> Runner:
    import kiln

    return kiln.compile(model, inputs, frontend=frontend, target=target)


def kiln_variant(target: str, frontend: str = "auto") -> tuple[str, Callable[[Runner, tuple],
                                                                            Runner]]:
    """The variant that times Kiln compiled for `target` ("cpu", "vulkan", "cuda:sm_86"):
    its name ("kiln" for the CPU, else "kiln-<target>") and how to prepare it."""
    from kiln.runtime.targets import resolve

    resolve(target)  # an unknown target fails here, before anything is compiled
    name = "kiln" if target == "cpu" else f"kiln-{target}"
    return name, lambda model, inputs: prepare_kiln(model, inputs, frontend, target)


def device_label(runner: Runner) -> str:
    """Where a prepared variant's calls run, for its row: "" for torch's peers and Kiln on the
    CPU target; "driver: device" for Kiln on any other ("vulkan: llvmpipe, software, CPU",
    "cuda: NVIDIA H100 80GB HBM3"): the device it is bound to, not the one asked for."""
    from kiln.errors import TargetError
    from kiln.runtime.module import CompiledModule, device_description

    if not isinstance(runner, CompiledModule):
        return ""
    session = runner.bind()
    if session.target.target.name == "cpu":
        return ""
    try:
        return f"{session.driver}: {device_description(session.driver)}"
    except TargetError:  # it ran, so the driver works: only its device list is unreadable
        return session.driver


def runs_on_cpu(result: Result) -> bool:
    """Whether a row's work ran on this machine's CPU (its % peak then means something)."""
    return not result.device or result.device.endswith("CPU")


PEERS: dict[str, Callable[[Runner, tuple], Runner]] = {
    "eager": lambda model, inputs: model,
    "torchscript": prepare_torchscript,
    "inductor": prepare_inductor,
    "onnxruntime": prepare_onnxruntime,
    "kiln": prepare_kiln,
}


def compare(model: Runner, inputs: tuple, *, variants: dict[str, Callable] | None = None,
            rounds: int = 30, min_seconds: float = 3.0, peak: bool = True
            ) -> tuple[list[Result], float | None]:
    """Prepare every variant, check it against eager, then time all of them interleaved.

    With `peak`, a 2048x2048 fp32 matmul through torch takes its turn among the variants,
    and its median throughput is the peak that `% peak` divides by. Returns the results
    and that peak in GFLOP/s (None without `peak`).
    """
    variants = variants or PEERS
    torch.manual_seed(0)
    with torch.no_grad():
        expected = model(*inputs)
    ready: dict[str, Runner] = {}
    results: dict[str, Result] = {}
    for name, prepare in variants.items():
        results[name] = result = Result(name)
        try:
            start = time.perf_counter()
            runner = prepare(model, inputs)
            with torch.no_grad():
                got = runner(*inputs)
            result.ready_s = time.perf_counter() - start
            result.max_abs_error = _max_abs_error(got, expected)
            result.device = device_label(runner)
            ready[name] = runner
        except Exception as e:  # noqa: BLE001 -- a peer failing on a model is a result, not a crash
            first_line = _ANSI.sub("", str(e).strip().splitlines()[0])[:160]
            result.note = f"failed: {type(e).__name__}: {first_line}"
            log.warning("%s failed: %s", name, result.note)
    timed = dict(ready)
    if peak:
        timed[_PEAK] = _peak_matmul()
    medians = median_ms(timed, inputs, rounds, min_seconds)
    peak_gf = 2 * PEAK_SIZE**3 / (medians.pop(_PEAK) / 1e3) / 1e9 if peak else None
    for name, median in medians.items():
        results[name].median_ms = median
    _add_ratios(results, model, inputs, peak_gf)
    return list(results.values()), peak_gf


def median_ms(ready: dict[str, Runner], inputs: tuple, rounds: int = 30,
              min_seconds: float = 3.0) -> dict[str, float]:
    """Median milliseconds per call of each runner, timed round-robin in blocks.

    Each sample is one block of back-to-back calls: a block repeats a variant's call until
    it lasts about BLOCK_SECONDS (as `timeit` and torch.utils.benchmark's blocked_autorange
    do) and counts its mean per call. With one call per sample, a sub-millisecond variant
    would be timed with caches and allocator state left cold by the variant before it
    (eager's RNN loop frees thousands of small tensors; glibc then consolidates them in the
    next large malloc, whoever makes it), which is the cost of switching variants, not of
    the variant.

    Before each block the process sleeps SETTLE_SECONDS, so that every block starts on a
    quiet machine: ONNX Runtime's worker threads keep spinning for 10-50 ms after its call
    returns, and on 2 cores whoever ran next lost a core to them (ResNet-50 under Kiln:
    139 ms right after ONNX Runtime, 102 ms after itself; eager 148 vs 106). The sleep is not
    timed.
    """
    samples: dict[str, list[float]] = {name: [] for name in ready}
    with torch.no_grad(), _gc_paused():
        calls = {name: _calls_per_block(runner, inputs) for name, runner in ready.items()}
        start, order = time.perf_counter(), list(ready)
        while (len(next(iter(samples.values()), [])) < rounds
               or time.perf_counter() - start < min_seconds) and samples:
            for name in order:
                time.sleep(SETTLE_SECONDS)
                samples[name].append(_block_seconds(ready[name], inputs, calls[name]))
            # Rotate, so that each variant follows each other one equally often: whoever runs
            # right after a peer whose threads still spin-wait (ONNX Runtime, OpenMP) loses
            # part of a core.
            order = order[1:] + order[:1]
            if len(samples[name]) >= 1000:
                break
    return {name: 1e3 * statistics.median(times) for name, times in samples.items()}


BLOCK_SECONDS = 10e-3
SETTLE_SECONDS = 50e-3  # > the 10-50 ms ONNX Runtime's threads spin after a call


def _calls_per_block(runner: Runner, inputs: tuple) -> int:
    """Warm `runner` up, then how many back-to-back calls last about BLOCK_SECONDS."""
    for _ in range(3):
        runner(*inputs)
    one = min(_seconds(lambda: runner(*inputs)) for _ in range(3))
    return max(1, round(BLOCK_SECONDS / max(one, 1e-7)))


def _block_seconds(runner: Runner, inputs: tuple, calls: int) -> float:
    """Mean seconds per call over `calls` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        runner(*inputs)
    _synchronize()
    return (time.perf_counter() - start) / calls


def _add_ratios(results: dict[str, Result], model: Runner, inputs: tuple,
                peak: float | None) -> None:
    eager = results.get("eager")
    flops = model_flops(model, inputs) if peak else 0
    for result in results.values():
        if result.median_ms is None:
            continue
        if eager and eager.median_ms:
            result.vs_eager = eager.median_ms / result.median_ms
        if peak and flops and runs_on_cpu(result):
            result.percent_of_peak = 100 * flops / (result.median_ms / 1e3) / (peak * 1e9)


def markdown(rows: dict[str, list[Result]], peaks: dict[str, float | None]) -> str:
    """A table: one row per model and variant, with the ratio to the best peer."""
    measured = ", ".join(f"{model} {peak:.0f}" for model, peak in peaks.items() if peak)
    header = (f"Peak fp32 matmul ({PEAK_SIZE}x{PEAK_SIZE} through torch, timed interleaved with "
              f"the variants), GFLOP/s: {measured or 'not measured'}.")
    if any(r.device for results in rows.values() for r in results):
        header += (" Rows without a device in brackets ran on this CPU; % peak is left empty "
                   "for rows that ran elsewhere.")
    lines = [header, "",
             "| model | variant | ready s | median ms | vs eager | vs best peer | % peak | max abs err |",
             "|---|---|---|---|---|---|---|---|"]
    for model, results in rows.items():
        peers = [r.median_ms for r in results if r.variant in ("eager", "torchscript", "inductor")
                 and r.median_ms]
        best = min(peers) if peers else None
        for r in results:
            if r.median_ms is None:
                lines.append(f"| {model} | {r.label} | | | | | | {r.note} |")
                continue
            vs_best = f"{best / r.median_ms:.2f}x" if best else ""
            lines.append(f"| {model} | {r.label} | {_shown(r.ready_s, '.1f')} | "
                         f"{r.median_ms:.3f} | {_shown(r.vs_eager, '.2f', 'x')} | {vs_best} | "
                         f"{_shown(r.percent_of_peak, '.0f', '%')} | "
                         f"{_shown(r.max_abs_error, '.1e')} |")
    return "\n".join(lines)


def _shown(value: float | None, spec: str, unit: str = "") -> str:
    """A table cell: `value` formatted, or empty where it was not measured (no eager among
    the variants gives no `vs eager`)."""
    return "" if value is None else f"{value:{spec}}{unit}"

