"""`make demo`: compile the example models and compare Kiln with eager PyTorch.

Every model runs on the CPU; where a Vulkan device works, each is also compiled for
`target="vulkan"` and its row names the device it ran on. Mesa's lavapipe (llvmpipe) is a
software Vulkan driver: its rows say "software, CPU", and their figures are CPU figures.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from models import example_cases

import kiln
from kiln.runtime.module import device_description, hal_device
from kiln.runtime.targets import TARGETS

ROW = "{:<12} {:>9} {:>9} {:>9} {:>8} {:>12}  {}"


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


def vulkan_device() -> tuple[str | None, str]:
    """(the label of the Vulkan device Kiln would run on, "") or (None, why there is none)."""
    driver = TARGETS["vulkan"].driver
    try:
        hal_device(driver)
        return f"{driver}: {device_description(driver)}", ""
    except kiln.TargetError as e:
        return None, str(e)


def run(name: str, model, inputs, target: str, repeats: int) -> None:
    """Compile `model` for `target`, time it against eager, print one row."""
    start = time.perf_counter()
    try:
        compiled = kiln.compile(model, inputs, target=target)
        compile_s = time.perf_counter() - start
        with torch.no_grad():
            eager = median_ms(model, inputs, repeats)
            error = max_abs_error(compiled(*inputs), model(*inputs))
        ours = median_ms(compiled, inputs, repeats)
    except kiln.KilnError as e:
        print(ROW.format(name, "", "", "", "", "", f"{target}: failed: {_reason(e)}"))
        return
    driver = compiled.device
    where = driver if target == "cpu" else f"{driver}: {device_description(driver)}"
    print(ROW.format(name, f"{compile_s:.2f}", f"{eager:.3f}", f"{ours:.3f}",
                     f"{eager / ours:.2f}x", f"{error:.2e}", where))


def _reason(error: Exception, width: int = 140) -> str:
    """One short line: the first compiler diagnostic of a CompileError, else its first line."""
    lines = [line.strip() for line in str(error).strip().splitlines()] or [""]
    found = next((line.split("error:", 1)[1].strip() for line in lines if "error:" in line),
                 lines[0])
    return f"{type(error).__name__}: {found}"[:width]


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(ROW.format("model", "compile s", "eager ms", "kiln ms", "speedup", "max abs err",
                     "kiln ran on"))
    cases = example_cases()
    for name, (model, inputs) in cases.items():
        run(name, model, inputs, "cpu", repeats=50)
    vulkan, why_not = vulkan_device()
    if vulkan is None:
        print(f"vulkan: skipped, no working Vulkan device here ({why_not})")
    else:
        for name, (model, inputs) in cases.items():
            run(name, model, inputs, "vulkan", repeats=20)
        if vulkan.endswith("software, CPU"):
            print(f"{vulkan.split(': ')[1].split(',')[0]} is a software Vulkan driver: the vulkan "
                  "rows ran on this CPU, not on a GPU.")
    print("compile s: capture, lowering, IREE and driver tuning; compiled programs are cached "
          "(KILN_CACHE_DIR), so a second run is faster.")


if __name__ == "__main__":
    main()
