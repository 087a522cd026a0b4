"""What one executable for every shape costs: BERT-base and GPT-2 small compiled static (for
1x128) and dynamic (batch and sequence vary), called interleaved at 1x128.

The dynamic compile is also checked against eager at a few other shapes. Not a test:
`python benchmarks/dynamic_shapes.py [--calls N] [--models bert,gpt2]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_checks import interleaved_ms
from models import bert_base, gpt2_small

import kiln

MODELS = {"bert": ("BERT-base", bert_base), "gpt2": ("GPT-2 small", gpt2_small)}
# Batch 1-8, sequence 8-512: what a server of these models sees.
BOUNDS = {0: {0: (1, 8), 1: (8, 512)}}
OTHER_SHAPES = ((2, 8), (3, 77), (1, 512), (8, 64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--models", default="bert,gpt2")
    args = parser.parse_args()
    print("| model | static 1x128 (ms) | dynamic at 1x128 (ms) | ratio | compile static / "
          "dynamic (s) | dynamic max error vs eager |")
    print("|---|---|---|---|---|---|")
    for key in args.models.split(","):
        name, make = MODELS[key]
        case = make()
        vocab = 30522 if key == "bert" else 50257
        with torch.no_grad():
            start = time.perf_counter()
            static = kiln.compile(case.model, case.inputs)
            static_s = time.perf_counter() - start
            start = time.perf_counter()
            dynamic = kiln.compile(case.model, case.inputs, dynamic_dims=BOUNDS)
            dynamic_s = time.perf_counter() - start
            error = 0.0
            for batch, sequence in ((1, 128), *OTHER_SHAPES):
                ids = torch.randint(0, vocab, (batch, sequence))
                error = max(error, (dynamic(ids) - case.model(ids)).abs().max().item())
            ms = interleaved_ms({"static": static, "dynamic": dynamic}, case.inputs, args.calls)
        print(f"| {name} | {ms['static']:.1f} | {ms['dynamic']:.1f} | "
              f"{ms['dynamic'] / ms['static']:.2f} | {static_s:.0f} / {dynamic_s:.0f} | "
              f"{error:.1e} |", flush=True)


if __name__ == "__main__":
    main()
