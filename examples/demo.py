"""`make demo`: compile the example models and compare Kiln with eager PyTorch.

Every model runs on the CPU; where a Vulkan device works, each is also compiled for
`target="vulkan"` and its row names the device it ran on. Mesa's lavapipe (llvmpipe) is a
software Vulkan driver: its rows say "software, CPU", and their figures are CPU figures.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import example_cases

import kiln
from kiln.runtime.module import device_description, hal_device
from kiln.runtime.targets import TARGETS

ROW = "{:<12} {:>9} {:>9} {:>9} {:>8} {:>12}  {}"
ROUNDS = {"cpu": 15, "vulkan": 9}  # timed rounds per row
WARMUP_S = 0.1        # warm-up calls of both, alternated, for at least this long (and 5 each)
BLOCK_S = 0.010       # each round times a block of calls this long (one call at least)
NOISY = 0.2           # rounds that spread more than this (interquartile range / median): noise
BUSY = 0.25           # so are all figures of a row while other programs used this share of
                      # the machine's CPU time
MEASURED = (f"eager ms, kiln ms: per-call medians of {ROUNDS['cpu']} rounds (vulkan: "
            f"{ROUNDS['vulkan']}) alternating eager and Kiln, after warm-up calls of both; noisy: "
            f"rounds differ by >{NOISY:.0%} or other programs use >{BUSY:.0%} of the CPUs")


@dataclass(frozen=True)
class Timing:
    """Per-call times, round by round, and how much of the machine other programs used."""

    eager: list[float]
    kiln: list[float]
    others: float | None   # their share of all CPUs' time while timing (None: unknown)

    def ms(self, side: str) -> str:
        """The median of a side in ms, or "noisy"."""
        times = getattr(self, side)
        return "noisy" if self.busy or spread(times) > NOISY else f"{1e3 * median(times):.3f}"

    def speedup(self) -> str:
        ratios = [e / k for e, k in zip(self.eager, self.kiln)]
        noisy = self.busy or any(spread(t) > NOISY for t in (self.eager, self.kiln, ratios))
        if noisy:
            return "noisy"
        ratio = median(ratios)
        return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.1g}x"

    @property
    def busy(self) -> bool:
        return self.others is not None and self.others > BUSY


def spread(values: list[float]) -> float:
    """Interquartile range over the median: 0.2 means the middle half spans 20%."""
    q1, middle, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / middle if middle > 0 else math.inf


def cpu_seconds() -> tuple[float, int] | None:
    """(seconds all CPUs of this machine were busy since boot, how many CPUs), from Linux's
    /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
        ticks = [int(v) for v in lines[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # less idle, iowait
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return busy / os.sysconf("SC_CLK_TCK"), max(1, cpus)


def interleaved(eager: Callable[[], object], ours: Callable[[], object], rounds: int) -> Timing:
    """Time `eager()` against `ours()` in rounds that alternate them (eager first in even
    rounds, Kiln first in odd ones), each a block of calls after one untimed call, after
    warm-up calls of both; and how much CPU other programs took meanwhile."""
    warm: dict[Callable, list[float]] = {eager: [], ours: []}
    start = time.perf_counter()
    while time.perf_counter() - start < WARMUP_S or len(warm[ours]) < 5:
        for fn in (eager, ours):
            began = time.perf_counter()
            fn()
            warm[fn].append(time.perf_counter() - began)
    # One block size for both, from the slower one's recent calls: the same work per round.
    slowest = max(median(times[-5:]) for times in warm.values())
    calls = max(1, min(1000, round(BLOCK_S / max(slowest, 1e-9))))
    per_call: dict[Callable, list[float]] = {eager: [], ours: []}
    machine, mine, began_all = cpu_seconds(), time.process_time(), time.perf_counter()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for index in range(rounds):
            for fn in (eager, ours) if index % 2 == 0 else (ours, eager):
                fn()  # the first call after the other side's is not timed
                began = time.perf_counter()
                for _ in range(calls):
                    fn()
                per_call[fn].append((time.perf_counter() - began) / calls)
    finally:
        if enabled:
            gc.enable()
    wall, mine = time.perf_counter() - began_all, time.process_time() - mine
    others = None
    if machine is not None and (now := cpu_seconds()) is not None:
        others = max(0.0, now[0] - machine[0] - mine) / (wall * now[1])
    return Timing(per_call[eager], per_call[ours], others)


def max_abs_error(got, expected) -> float:
    flat_got, _ = torch.utils._pytree.tree_flatten(got)
    flat_expected, _ = torch.utils._pytree.tree_flatten(expected)
    return max(float((a - b).abs().max()) for a, b in zip(flat_got, flat_expected))


def vulkan_device() -> tuple[str | None, str]:
    """(the label of the Vulkan device Kiln would run on, "") or (None, why there is none)."""
    driver = TARGETS["vulkan"].driver
    try:
        hal_device(driver)
        return f"{driver}: {device_description(driver)}", ""
    except kiln.TargetError as e:
        return None, str(e)


def compile_case(model, inputs, target: str) -> tuple[object, float] | kiln.KilnError:
    """(the compiled model, its compile seconds), or the KilnError that stopped it."""
    start = time.perf_counter()
    try:
        return kiln.compile(model, inputs, target=target), time.perf_counter() - start
    except kiln.KilnError as e:
        return e


def run(name: str, model, inputs, target: str, compiled: tuple[object, float] | kiln.KilnError
        ) -> Timing | None:
    """Time the compiled model against eager, print one row; its Timing (None: failed)."""
    if isinstance(compiled, kiln.KilnError):
        print(ROW.format(name, "", "", "", "", "", f"{target}: failed: {_reason(compiled)}"))
        return None
    module, compile_s = compiled
    try:
        with torch.no_grad():
            error = max_abs_error(module(*inputs), model(*inputs))
            timing = interleaved(lambda: model(*inputs), lambda: module(*inputs),
                                 ROUNDS[target])
    except kiln.KilnError as e:
        print(ROW.format(name, "", "", "", "", "", f"{target}: failed: {_reason(e)}"))
        return None
    driver = module.device
    where = driver if target == "cpu" else f"{driver}: {device_description(driver)}"
    print(ROW.format(name, f"{compile_s:.2f}", timing.ms("eager"), timing.ms("kiln"),
                     timing.speedup(), f"{error:.2e}", where))
    return timing


def _reason(error: Exception, width: int = 140) -> str:
    """One short line: the first compiler diagnostic of a CompileError, else its first line."""
    lines = [line.strip() for line in str(error).strip().splitlines()] or [""]
    found = next((line.split("error:", 1)[1].strip() for line in lines if "error:" in line),
                 lines[0])
    return f"{type(error).__name__}: {found}"[:width]


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cases = example_cases()
    print(MEASURED)
    print(ROW.format("model", "compile s", "eager ms", "kiln ms", "speedup", "max abs err",
                     "kiln ran on"))
    timings = []
    # The CPU rows come first, before anything opens the Vulkan device: with Mesa's lavapipe,
    # an open device keeps two threads of this process busy even while idle, which would
    # slow down every CPU figure. Each target's models are all compiled before any is timed,
    # so a cold run (compiling) and a warm one (from the cache) time the same thing.
    for target in ("cpu", "vulkan"):
        if target == "vulkan":
            vulkan, why_not = vulkan_device()
            if vulkan is None:
                print(f"vulkan: skipped, no working Vulkan device here ({why_not})")
                break
        compiled = {name: compile_case(model, inputs, target)
                    for name, (model, inputs) in cases.items()}
        timings += [run(name, model, inputs, target, compiled[name])
                    for name, (model, inputs) in cases.items()]
        if target == "vulkan" and vulkan.endswith("software, CPU"):
            print(f"{vulkan.split(': ')[1].split(',')[0]} is a software Vulkan driver: the "
                  "vulkan rows ran on this CPU, not on a GPU.")
    if noisy := [t for t in timings if t is not None and t.speedup() == "noisy"]:
        busy = max((t.others for t in noisy if t.others is not None), default=None)
        print(f"noisy: the timings of {len(noisy)} rows varied by more than {NOISY:.0%} between "
              f"rounds, or other programs used more than {BUSY:.0%} of the CPUs while they ran"
              + ("" if busy is None else f" (at most {busy:.0%} here)")
              + "; they show no figures. Run again on an idle machine.")
    print("compile s: capture, lowering, IREE and driver tuning; compiled programs are cached "
          "(KILN_CACHE_DIR), so a second run is faster.")


if __name__ == "__main__":
    main()
