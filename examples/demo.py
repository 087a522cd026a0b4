"""`make demo`: compile the example models for the CPU and compare Kiln with eager PyTorch."""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import kiln  # noqa: E402
from models import example_cases  # noqa: E402


def median_ms(fn, inputs, repeats: int = 50) -> float:
    """Median wall time of `fn(*inputs)` in milliseconds, after warm-up calls."""
    for _ in range(5):
        fn(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*inputs)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def max_abs_error(got, expected) -> float:
    flat_got, _ = torch.utils._pytree.tree_flatten(got)
    flat_expected, _ = torch.utils._pytree.tree_flatten(expected)
    return max(float((a - b).abs().max()) for a, b in zip(flat_got, flat_expected))


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"{'model':<12} {'compile s':>9} {'eager ms':>9} {'kiln ms':>9} {'speedup':>8} "
          f"{'max abs err':>12}")
    for name, (model, inputs) in example_cases().items():
        start = time.perf_counter()
        compiled = kiln.compile(model, inputs)
        compile_s = time.perf_counter() - start
        with torch.no_grad():
            eager = median_ms(model, inputs)
            error = max_abs_error(compiled(*inputs), model(*inputs))
        ours = median_ms(compiled, inputs)
        print(f"{name:<12} {compile_s:>9.2f} {eager:>9.3f} {ours:>9.3f} {eager / ours:>7.2f}x "
              f"{error:>12.2e}")
    print("compile s: capture, lowering, IREE and driver tuning; compiled programs are cached "
          "(KILN_CACHE_DIR), so a second run is faster.")


if __name__ == "__main__":
    main()
