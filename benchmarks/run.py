"""`make bench`: eager, TorchScript, Inductor, ONNX Runtime and Kiln on the benchmark models.

Each model runs in its own process (one model's compile caches and threads never touch the
next); inside it all variants are timed interleaved. Writes benchmarks/results/bench.json,
bench.md and bench.png. Not a test: figures go to the README.

    python benchmarks/run.py [--model NAME ...] [--variant NAME ...] [--out NAME]

The RNN-loop comparison of the TorchScript issue (eager, TorchScript, Kiln side by side):
    python benchmarks/run.py --model rnn_loop --variant eager --variant torchscript \
        --variant kiln --out rnn_loop
The scripted LSTM language model against TorchScript:
    python benchmarks/run.py --model lstm_lm --variant eager --variant torchscript \
        --variant inductor --variant kiln --out lstm_lm
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run_one(name: str, variants: list[str] | None) -> dict:
    """In this process: build model `name`, compare the variants, return JSON-able rows."""
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(HERE))
    import torch
    from models import MODELS

    from kiln.tools.bench import PEERS, compare

    torch.manual_seed(0)  # the same weights in every run, so Kiln's program cache can hit
    case = MODELS[name]()
    chosen = {v: case.overrides.get(v, PEERS[v]) for v in (variants or PEERS)}
    results, peak = compare(case.model, case.inputs, variants=chosen)
    return {"model": name, "peak_gflops": peak, "results": [r.to_json() for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="one of benchmarks/models.py MODELS (repeatable)")
    parser.add_argument("--variant", action="append", help="eager, torchscript, inductor, "
                        "onnxruntime, kiln (repeatable)")
    parser.add_argument("--out", default="bench", help="results/OUT.json, .md, .png")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.variant)))
        return
    sys.path.insert(0, str(HERE))
    from models import MODELS

    rows = []
    for name in args.model or MODELS:
        command = [sys.executable, __file__, "--child", name]
        for variant in args.variant or []:
            command += ["--variant", variant]
        print(f"== {name}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(_table([rows[-1]]), flush=True)
    _write(rows, args.out)


def _table(rows: list[dict]) -> str:
    from kiln.tools.bench import Result, markdown

    by_model = {r["model"]: [Result(**x) for x in r["results"]] for r in rows}
    return markdown(by_model, {r["model"]: r["peak_gflops"] for r in rows})


def _write(rows: list[dict], out: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / f"{out}.md").write_text(_table(rows) + "\n")
    try:
        _chart(rows, RESULTS / f"{out}.png")
    except ImportError:
        print("matplotlib is missing: no chart (pip install -e '.[bench]')", file=sys.stderr)
    print(f"wrote {RESULTS}/{out}.json, {out}.md, {out}.png")


def _chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = ["eager", "torchscript", "inductor", "onnxruntime", "kiln"]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.16
    for i, variant in enumerate(variants):
        speedups = []
        for row in rows:
            found = [r for r in row["results"] if r["variant"] == variant]
            speedups.append(found[0]["vs_eager"] or 0 if found else 0)
        ax.bar([x + i * width for x in range(len(rows))], speedups, width, label=variant)
    ax.set_xticks([x + 2 * width for x in range(len(rows))], [r["model"] for r in rows])
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("speed-up over eager (higher is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
