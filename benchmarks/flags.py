"""IREE CPU flag study: one model compiled with several flag sets, timed interleaved with eager.

Each variant is the CPU target's own flags (runtime/targets.py) plus the extra flags given
here, or minus some with "-FLAG". Results go to stdout as a markdown table; the figures that
chose the defaults are in benchmarks/flags.md. Not a test.

    python benchmarks/flags.py bert_base [--rounds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import kiln  # noqa: E402
from kiln.runtime import targets  # noqa: E402
from kiln.tools import bench  # noqa: E402
from models import MODELS  # noqa: E402

DEFAULT = targets.TARGETS["cpu"].flags
VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "no data tiling": ("---iree-dispatch-creation-data-tiling",
                       "---iree-llvmcpu-enable-ukernels=mmt4d,pack"),
    "all microkernels": ("---iree-llvmcpu-enable-ukernels=mmt4d,pack",
                         "--iree-llvmcpu-enable-ukernels=all"),
    "no im2col": ("---iree-global-opt-use-im2col-for-convs",),
    "O3": ("--iree-opt-level=O3", "--iree-llvmcpu-stack-allocation-limit=131072"),
    "O3 without aggressive transposes": (
        "--iree-opt-level=O3", "--iree-llvmcpu-stack-allocation-limit=131072",
        "--iree-opt-aggressively-propagate-transposes=false"),
    "global-optimization data tiling": ("---iree-dispatch-creation-data-tiling",
                                        "--iree-opt-data-tiling"),
    "O3 global optimization": ("--iree-global-optimization-opt-level=O3",),
    "O3 dispatch creation": ("--iree-dispatch-creation-opt-level=O3",
                             "--iree-llvmcpu-stack-allocation-limit=131072"),
    "aggressive transposes": ("--iree-opt-aggressively-propagate-transposes",),
    "aggressive fusion": ("--iree-dispatch-creation-enable-aggressive-fusion",
                          "--iree-llvmcpu-stack-allocation-limit=131072"),
    "data-tiled convolutions": (
        "---iree-global-opt-use-im2col-for-convs",
        *(f"--iree-dispatch-creation-experimental-set-data-tiling-ops={family}"
          for family in ("matmul", "scaled_matmul", "convolution"))),
    "channels-last convolutions": (
        ("--iree-preprocessing-pass-pipeline=builtin.module(util.func("
         "iree-preprocessing-convert-conv-to-channels-last))"),),
    **{f"matmul tiles {kib} KiB": (f"--iree-llvmcpu-matmul-tile-bytes={kib * 1024}",)
       for kib in (32, 64, 128, 512, 1024)},
    "2 runtime threads": ("--iree-llvmcpu-number-of-threads=2",),
    **{f"distribution size {n}": (f"--iree-llvmcpu-distribution-size={n}",) for n in (8, 16, 32)},
    "128 KiB + 2 threads": ("--iree-llvmcpu-matmul-tile-bytes=131072",
                            "--iree-llvmcpu-number-of-threads=2"),
    "64 KiB + 2 threads": ("--iree-llvmcpu-matmul-tile-bytes=65536",
                           "--iree-llvmcpu-number-of-threads=2"),
}


def flag_set(change: tuple[str, ...]) -> tuple[str, ...]:
    removed = {flag[1:] for flag in change if flag.startswith("-") and flag[1:].startswith("--")}
    added = tuple(flag for flag in change if not flag[1:].startswith("--"))
    return tuple(flag for flag in DEFAULT if flag not in removed) + added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    args = parser.parse_args()
    torch.manual_seed(0)
    case = MODELS[args.model]()
    with torch.no_grad():
        expected = case.model(*case.inputs)
    runners, rows = {"eager": case.model}, {}
    for name in args.variant or VARIANTS:
        flags = flag_set(VARIANTS[name])
        targets.TARGETS["cpu"] = targets.Target(**{**targets.TARGETS["cpu"].__dict__,
                                                    "flags": flags})
        start = time.perf_counter()
        try:
            module = kiln.compile(case.model, case.inputs)
        except kiln.KilnError as e:
            rows[name] = f"| {name} | failed: {str(e).splitlines()[1][:120]} | | |"
            continue
        error = float((module(*case.inputs) - expected).abs().max())
        rows[name] = (time.perf_counter() - start, error, module.device)
        runners[name] = module
    medians = bench.median_ms(runners, case.inputs, rounds=args.rounds, min_seconds=0)
    print(f"| {args.model} flags | compile s | median ms | vs eager | max abs err |")
    print("|---|---|---|---|---|")
    print(f"| eager | | {medians['eager']:.2f} | 1.00x | |")
    for name, row in rows.items():
        if isinstance(row, str):
            print(row)
            continue
        compile_s, error, driver = row
        print(f"| {name} ({driver}) | {compile_s:.1f} | {medians[name]:.2f} | "
              f"{medians['eager'] / medians[name]:.2f}x | {error:.1e} |")


if __name__ == "__main__":
    main()
