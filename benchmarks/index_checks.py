"""What kiln-check-indices costs: BERT-base and GPT-2 small compiled with and without it.

Each model is compiled twice (each variant in its own empty cache, since the program cache's
key does not see the pipeline table), then both are called interleaved; medians of the
per-call times. Not a test: `python benchmarks/index_checks.py [--calls N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import bert_base, gpt2_small

import kiln
from kiln.passes.pipelines import PIPELINES

PASS = "kiln-check-indices"


@contextlib.contextmanager
def checks(enabled: bool):
    """kiln-lower with or without the index checks, compiled into a cache of its own."""
    saved, cache = PIPELINES["kiln-lower"], os.environ.get("KILN_CACHE_DIR")
    if not enabled:
        PIPELINES["kiln-lower"] = tuple(e for e in saved if e != PASS)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["KILN_CACHE_DIR"] = folder
        try:
            yield
        finally:
            PIPELINES["kiln-lower"] = saved
            if cache is None:
                os.environ.pop("KILN_CACHE_DIR")
            else:
                os.environ["KILN_CACHE_DIR"] = cache


def interleaved_ms(variants: dict, inputs: tuple, calls: int) -> dict[str, float]:
    """Median milliseconds per call of each variant; the order rotates every round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(calls + 5):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            variants[name](*inputs)
            if round_ >= 5:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    print("| model | without checks (ms) | with checks (ms) | cost |")
    print("|---|---|---|---|")
    for name, make in (("BERT-base 1x128", bert_base), ("GPT-2 small 1x128", gpt2_small)):
        case = make()
        with torch.no_grad():
            variants = {}
            for enabled in (False, True):
                with checks(enabled):
                    variants[enabled] = kiln.compile(case.model, case.inputs)
            torch.testing.assert_close(variants[True](*case.inputs),
                                       variants[False](*case.inputs))
            ms = interleaved_ms(variants, case.inputs, args.calls)
        print(f"| {name} | {ms[False]:.1f} | {ms[True]:.1f} | "
              f"{100 * (ms[True] / ms[False] - 1):+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
