"""Which register tile kiln-codegen-cpu should use for a CPU: BERT-base, GPT-2 small and
ResNet-50 compiled with each `CompileOptions(cpu_tile=...)`, called interleaved.

Not a test. `tile_for` (passes/cpu/tiles.py) reads its choices from what this measures:
    python benchmarks/cpu_tiles.py [--tiles 6x16,8x32,16x16] [--arch x86-64-v3] [--calls 30]
`--arch` compiles for a class of CPUs (`cpu:<arch>`) rather than this machine's own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_checks import interleaved_ms
from models import bert_base, gpt2_small, resnet50

import kiln
from kiln.runtime.cpu_features import this_machine

MODELS = {"bert": ("BERT-base 1x128", bert_base), "gpt2": ("GPT-2 small 1x128", gpt2_small),
          "resnet50": ("ResNet-50 1x3x224x224", resnet50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", default="6x16,8x32,12x32,16x16")
    parser.add_argument("--models", default="bert,gpt2,resnet50")
    parser.add_argument("--arch", default=None, help="cpu:<arch> instead of this machine's cpu")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    tiles = args.tiles.split(",")
    target = f"cpu:{args.arch}" if args.arch else "cpu"
    avx512 = "avx512f" in (this_machine().features or ())
    print(f"target {target}; this CPU {'has' if avx512 else 'lacks'} AVX-512\n")
    print("| model | " + " | ".join(f"{t} (ms)" for t in tiles) + " |")
    print("|---|" + "---|" * len(tiles))
    for name in args.models.split(","):
        title, make = MODELS[name]
        case = make()
        with torch.no_grad():
            expected = case.model(*case.inputs)
            variants = {}
            for tile in tiles:
                start = time.perf_counter()
                compiled = kiln.compile(case.model, case.inputs, target=target,
                                        options=kiln.CompileOptions(cpu_tile=tile))
                got = compiled(*case.inputs)
                error = max((g - e).abs().max().item() for g, e in zip(_flat(got), _flat(expected)))
                print(f"<!-- {title} {tile}: compiled in {time.perf_counter() - start:.0f} s, "
                      f"max error {error:.1e} -->", flush=True)
                variants[tile] = compiled
            ms = interleaved_ms(variants, case.inputs, args.calls)
        best = min(ms.values())
        print(f"| {title} | " + " | ".join(
            f"**{ms[t]:.1f}**" if ms[t] == best else f"{ms[t]:.1f}" for t in tiles) + " |",
            flush=True)


def _flat(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "values"):
        value = list(value.values())
    return [t for item in value for t in _flat(item)]


if __name__ == "__main__":
    main()
