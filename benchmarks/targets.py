"""CPU latency of a multi-target artifact against a CPU-only one, and against another
commit's CPU-only artifacts: per-target code generation must cost the CPU nothing.

Not a test. Each row: the model compiled for `cpu` alone, compiled for ["cpu", "vulkan"]
(saved, loaded with device="cpu": what a user of the artifact runs), and, with
`--baseline DIR`, the `.kiln` files another commit saved with `--save DIR`; all loaded in
this one process and called interleaved, the order rotating each round.

    python benchmarks/targets.py --save /tmp/base      # at the other commit
    python benchmarks/targets.py --baseline /tmp/base [--models ...] [--calls 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_checks import interleaved_ms
from models import MODELS

import kiln

DEFAULT_MODELS = "mlp,rnn_loop,resnet50,bert_base,gpt2_small"
SCRIPTED = {"rnn_loop", "lstm_lm"}   # compiled from TorchScript, as `make bench` does


def _compilable(name: str, model):
    return torch.jit.script(model) if name in SCRIPTED else model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--save", type=Path, help="only compile CPU-only artifacts into DIR")
    parser.add_argument("--baseline", type=Path, help="DIR of another commit's --save")
    args = parser.parse_args()
    names = args.models.split(",")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for name in names:
            case = MODELS[name]()
            kiln.compile(_compilable(name, case.model), case.inputs).save(
                args.save / f"{name}.kiln")
            print(f"saved {args.save / f'{name}.kiln'}", flush=True)
        return
    print("| model | cpu (ms) | cpu+vulkan, on the CPU (ms) | ratio | same CPU code |"
          + (" baseline cpu (ms) | ratio |" if args.baseline else ""))
    print("|---|---|---|---|---|" + ("---|---|" if args.baseline else ""))
    folder = Path(tempfile.mkdtemp(prefix="kiln-targets-"))
    for name in names:
        case = MODELS[name]()
        model = _compilable(name, case.model)
        with torch.no_grad():
            alone = kiln.compile(model, case.inputs)
            variants = {"cpu": alone}
            try:
                both = kiln.compile(model, case.inputs, target=["cpu", "vulkan"])
                both.save(folder / f"{name}.kiln")
                variants["both"] = kiln.load(folder / f"{name}.kiln", device="cpu")
            except kiln.CompileError as e:
                both, failed = None, str(e).splitlines()[1].strip()[:120]
            if args.baseline:
                variants["baseline"] = kiln.load(args.baseline / f"{name}.kiln", device="cpu")
            ms = interleaved_ms(variants, case.inputs, args.calls)
        if both is None:
            row = f"| {name} | {ms['cpu']:.3f} | Vulkan failed to compile: {failed} | | |"
        else:
            same = both.executables["cpu"] == alone.executables["cpu"]
            row = (f"| {name} | {ms['cpu']:.3f} | {ms['both']:.3f} | "
                   f"{ms['both'] / ms['cpu']:.3f} | {'yes' if same else 'no'} |")
        if args.baseline:
            row += f" {ms['baseline']:.3f} | {ms['cpu'] / ms['baseline']:.3f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
