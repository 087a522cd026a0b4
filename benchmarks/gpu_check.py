"""The GPU check of issue 20: Kiln on one NVIDIA GPU, against eager and Inductor there.

NEEDS an NVIDIA GPU with its driver (libcuda.so) and a CUDA build of torch==2.13.0 in the
Python that runs this. The pinned `.venv` of `make env` has torch's CPU build: install the
CUDA one into it first (benchmarks/gpu_check.sh does, given KILN_CUDA_TORCH_INDEX). Without a
usable GPU this stops at once, before compiling anything, with exit status 2.

    python benchmarks/gpu_check.py [--out DIR] [--budget 460] [--model bert_base ...] [--tf32]
    python benchmarks/gpu_check.py --rehearse   # no GPU needed: every step on the CPU, small
                                                # models, figures meaningless (checks the script)

Steps, each in its own process under a time limit (together within --budget seconds):
  1. `pytest tests/test_targets.py tests/test_device_labels.py -k cuda`: the CUDA tests skip
     without a CUDA device and run with one; counts and each case's outcome are recorded.
  2. BERT-base (1x128, transformers' BertConfig, random weights) and ResNet-50 (1x3x224x224),
     built as benchmarks/models.py builds them: `kiln.compile(model, inputs, target="cuda")`
     (sm_80 code, which Hopper runs) against eager and Inductor (`torch.compile`, default
     mode) on the same GPU. Each call is followed by torch.cuda.synchronize(); the variants
     are timed interleaved in rotating rounds (kiln.tools.bench.median_ms) and the median
     is reported, with the max abs error against eager on the GPU and against fp32 eager
     on the CPU. TF32 is off (all three compute in fp32) unless --tf32.
  3. Writes gpu_check.json and gpu_check.md into --out, else $OUT when set, else
     benchmarks/results (a rehearsal: a temporary folder unless --out).

Exit status: 0 when every step ran, no test failed and Kiln ran every model on the GPU;
1 otherwise (the results are written either way); 2 when there is no usable GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = ("bert_base", "resnet50")
REHEARSAL_MODELS = ("mlp",)
TESTS = ["tests/test_targets.py", "tests/test_device_labels.py", "-k", "cuda"]
TESTS_SECONDS = 150       # the test step's own limit
MODEL_RESERVE = 120       # seconds kept back for each model still to come
TAIL = 4000               # characters of a step's output kept in the JSON


_ACTIVE: list[subprocess.Popen] = []   # the step's process, killed with its group on a limit


def spawn(command: list[str], limit: float, capture: bool) -> tuple[int | str, str]:
    """Run `command` in its own process group for at most `limit` seconds: (its exit status
    or "timed out after N s", its output if captured). On the limit the whole group is
    killed (Inductor's compile workers, pytest's children), not only the process."""
    process = subprocess.Popen(command, cwd=REPO, start_new_session=True, text=True,
                               stdout=subprocess.PIPE if capture else None,
                               stderr=subprocess.STDOUT if capture else None)
    _ACTIVE.append(process)
    try:
        output, _ = process.communicate(timeout=limit)
        return process.returncode, output or ""
    except subprocess.TimeoutExpired:
        _kill(process)
        output, _ = process.communicate()
        return f"timed out after {limit:.0f} s", output or ""
    finally:
        _ACTIVE.remove(process)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _terminated(signum, frame) -> None:
    """SIGTERM (gpu_check.sh's outer `timeout`): take the running step down with this."""
    for process in _ACTIVE:
        _kill(process)
    fail("stopped by SIGTERM (out of time)", 1)


def fail(message: str, status: int = 2) -> None:
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def say(message: str) -> None:
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Step 0: is there a GPU torch and IREE can use? (seconds; nothing compiled yet)

def preflight(rehearse: bool) -> dict:
    """The machine as torch, IREE and nvidia-smi see it; exits 2 where no GPU is usable."""
    warnings.filterwarnings("ignore")
    import torch

    machine = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
               "nvidia_smi": _nvidia_smi(), "cpu_count": os.cpu_count()}
    if rehearse:
        machine["device"] = "cpu (rehearsal: no GPU used, the figures mean nothing)"
        return machine
    if not torch.cuda.is_available():
        why = (f"torch {torch.__version__} is a CPU build (torch.version.cuda is None)"
               if torch.version.cuda is None else
               f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device")
        fail(f"no NVIDIA GPU usable here: torch.cuda.is_available() is False: {why}. Run this "
             "on a machine with an NVIDIA GPU and a CUDA build of torch==2.13.0 (see "
             "benchmarks/gpu_check.sh: KILN_CUDA_TORCH_INDEX, KILN_GPU_PYTHON)")
    from kiln.errors import TargetError
    from kiln.runtime.module import device_description, hal_device

    try:
        hal_device("cuda")
        iree_device = device_description("cuda")
    except TargetError as e:
        fail(f"torch sees {torch.cuda.get_device_name(0)}, but IREE's cuda driver has no "
             f"device: {e}")
    major, minor = torch.cuda.get_device_capability(0)
    machine.update(device=torch.cuda.get_device_name(0), capability=f"sm_{major}{minor}",
                   iree_device=iree_device, gpu_count=torch.cuda.device_count())
    return machine


def _nvidia_smi() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20, check=False)
        return done.stdout.strip() or done.stderr.strip()[:300]
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"not run: {e}"


# ---------------------------------------------------------------------------------------------
# Step 1: the CUDA tests

def run_tests(limit: float, scratch: Path) -> dict:
    """pytest over the CUDA tests in a child process; counts and outcomes from its JUnit XML."""
    junit = scratch / "tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *TESTS]
    report = {"command": " ".join(["pytest", *TESTS]), "limit_s": round(limit)}
    start = time.perf_counter()
    report["exit_status"], output = spawn(command, limit, capture=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["output_tail"] = output[-TAIL:]
    report.update(_junit_counts(junit))
    return report


def _junit_counts(path: Path) -> dict:
    if not path.exists():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "cases": []}
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "errors"}.get(tag, tag)
                message = (found.get("message") or "").strip().splitlines()[:1]
                message = message[0][:300] if message else ""
                break
        cases.append({"test": f"{case.get('classname', '')}::{case.get('name', '')}",
                      "outcome": outcome, "message": message})
    counts = {k: sum(c["outcome"] == k for c in cases)
              for k in ("passed", "failed", "errors", "skipped")}
    return {**counts, "cases": cases}


# ---------------------------------------------------------------------------------------------
# Step 2: one model on the GPU, in a child process (`--child NAME --result FILE`)

def build(name: str):
    """The model and CPU inputs as benchmarks/models.py builds them (seeded weights)."""
    sys.path.insert(0, str(HERE))
    import torch
    from models import MODELS as BENCH_MODELS

    torch.manual_seed(0)
    case = BENCH_MODELS[name]()
    return case.model, case.inputs


def child(args: argparse.Namespace) -> None:
    """Prepare eager, Kiln and Inductor on the device, check them, time them; the record is
    rewritten after each stage, so a parent that kills this on its time limit keeps what was
    done."""
    warnings.filterwarnings("ignore")
    import torch

    import kiln
    from kiln.runtime.module import device_description
    from kiln.tools.bench import _max_abs_error, median_ms

    device = "cpu" if args.rehearse else "cuda"
    if not args.rehearse:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    record = {"model": args.child, "stage": "building", "variants": []}
    def save() -> None:  # atomically: the parent may read it after killing this mid-write
        partial = Path(f"{args.result}.part")
        partial.write_text(json.dumps(record, indent=2))
        partial.replace(args.result)

    save()
    model, cpu_inputs = build(args.child)
    record["inputs"] = ", ".join(f"{'x'.join(map(str, x.shape))}:{str(x.dtype)[6:]}"
                                 for x in cpu_inputs)
    with torch.no_grad():
        reference_cpu = model(*cpu_inputs)
    device_model = copy.deepcopy(model).to(device)
    inputs = tuple(x.to(device) for x in cpu_inputs)
    with torch.no_grad():
        reference = device_model(*inputs)
    sync()
    where = (f"cuda: {torch.cuda.get_device_name(0)}" if device == "cuda" else "cpu")

    def prepare_kiln():
        compiled = kiln.compile(model, cpu_inputs, target="cpu" if args.rehearse else "cuda")
        driver = compiled.device
        label = f"{driver}: {device_description(driver)}"
        try:
            compiled(*inputs)
            return compiled, label, ""
        except Exception as e:  # noqa: BLE001 -- untested path: device tensors through DLPack
            note = (f"calls with {device} tensors failed ({type(e).__name__}: "
                    f"{str(e).strip().splitlines()[0][:200]}); timed with CPU tensors copied in")
            return (lambda *xs: compiled(*(x.cpu() for x in xs))), label, note

    def prepare_inductor():
        torch._dynamo.reset()
        return torch.compile(device_model), where, ""

    preparers = {"eager": lambda: (device_model, where, ""), "kiln": prepare_kiln,
                 "inductor": prepare_inductor}
    ready = {}
    for name in args.variants.split(","):
        row = {"variant": name}
        record["variants"].append(row)
        record["stage"] = f"preparing {name}"
        save()
        start = time.perf_counter()
        try:
            runner, row["ran_on"], row["note"] = preparers[name]()
            with torch.no_grad():
                got = runner(*inputs)
            sync()
            row["ready_s"] = round(time.perf_counter() - start, 2)
            row["max_abs_error_vs_eager"] = _max_abs_error(got, reference)
            row["max_abs_error_vs_cpu_fp32"] = _max_abs_error(got, reference_cpu)
            ready[name] = runner
        except Exception as e:  # noqa: BLE001 -- a variant failing is a result, not a crash
            lines = str(e).strip().splitlines() or [""]
            row["note"] = f"failed: {type(e).__name__}: {lines[0][:300]}"
            row["error_tail"] = "\n".join(lines[:40])[-TAIL:]
            say(f"{args.child}: {name} {row['note']}")
    record["stage"] = "timing"
    save()

    def synced(fn):
        def call(*xs):
            out = fn(*xs)
            sync()
            return out
        return call

    medians = median_ms({n: synced(r) for n, r in ready.items()}, inputs,
                        rounds=args.rounds, min_seconds=args.seconds)
    record["timing"] = {"rounds_at_least": args.rounds, "seconds_at_least": args.seconds,
                        "tf32": bool(args.tf32) and not args.rehearse,
                        "method": "kiln.tools.bench.median_ms: interleaved rotating rounds, "
                                  "each call followed by torch.cuda.synchronize(), median"}
    eager, inductor = medians.get("eager"), medians.get("inductor")
    for row in record["variants"]:
        if (median := medians.get(row["variant"])) is not None:
            row["median_ms"] = round(median, 4)
            row["vs_eager"] = round(eager / median, 3) if eager else None
            row["vs_inductor"] = round(inductor / median, 3) if inductor else None
    record["stage"] = "done"
    save()


def run_model(name: str, limit: float, scratch: Path, args: argparse.Namespace) -> dict:
    """One model in a child process under `limit` seconds; its record, partial if cut off."""
    result = scratch / f"{name}.json"
    command = [sys.executable, __file__, "--child", name, "--result", str(result),
               "--variants", args.variants, "--rounds", str(args.rounds),
               "--seconds", str(args.seconds)]
    command += ["--rehearse"] * args.rehearse + ["--tf32"] * args.tf32
    start = time.perf_counter()
    say(f"{name}: compiling and timing (limit {limit:.0f} s)")
    status, _ = spawn(command, limit, capture=False)
    try:
        record = json.loads(result.read_text())
    except (OSError, ValueError):
        record = {"model": name, "variants": [], "stage": "start"}
    record.update(seconds=round(time.perf_counter() - start, 1), exit_status=status)
    return record


# ---------------------------------------------------------------------------------------------
# Step 3: the report

def markdown(report: dict) -> str:
    m, tests = report["machine"], report["tests"]
    details = "; ".join(f"{k}: {m[k]}" for k in ("capability", "iree_device", "nvidia_smi")
                        if m.get(k))
    lines = [f"# Kiln GPU check ({report['date']})", "",
             f"- device: {m.get('device')}" + (f" ({details})" if details else ""),
             (f"- torch {m.get('torch')} (CUDA {m.get('torch_cuda')}); Kiln compiled for "
              + ("the CPU (rehearsal)" if report["rehearsal"] else
                 "target cuda (sm_80 code, which Hopper runs)")),
             (f"- tests (`{tests['command']}`): {tests['passed']} passed, {tests['failed']} "
              f"failed, {tests['errors']} errors, {tests['skipped']} skipped; exit status "
              f"{tests['exit_status']} in {tests['seconds']} s") if tests else
             "- tests: not run (--skip-tests)"]
    for case in tests.get("cases", []):
        if case["outcome"] != "passed":
            lines.append(f"  - {case['outcome']}: {case['test']}: {case['message']}")
    lines += ["", ("| model | variant | ran on | ready s | median ms | vs eager | vs Inductor | "
                   "max abs err vs eager | vs fp32 CPU eager | note |"),
              "|---|---|---|---|---|---|---|---|---|---|"]
    for record in report["models"]:
        if not record.get("variants"):
            lines.append(f"| {record['model']} | | | | | | | | | stopped at "
                         f"{record.get('stage', 'start')}: {record.get('exit_status')} |")
        for row in record.get("variants", []):
            note = row.get("note", "")
            if "median_ms" not in row and record.get("stage") != "done":
                note = (note + "; " if note else "") + (f"not timed: {record.get('exit_status')}"
                                                        f" at {record.get('stage')}")
            lines.append(
                f"| {record['model']} {record.get('inputs', '')} | {row['variant']} | "
                f"{row.get('ran_on', '')} | {_cell(row.get('ready_s'), '.1f')} | "
                f"{_cell(row.get('median_ms'), '.3f')} | {_cell(row.get('vs_eager'), '.2f', 'x')} | "
                f"{_cell(row.get('vs_inductor'), '.2f', 'x')} | "
                f"{_cell(row.get('max_abs_error_vs_eager'), '.1e')} | "
                f"{_cell(row.get('max_abs_error_vs_cpu_fp32'), '.1e')} | {note} |")
    timing = next((r["timing"] for r in report["models"] if "timing" in r), None)
    lines.append("")
    if timing:
        lines.append(f"Timing: {timing['method']}; at least {timing['rounds_at_least']} rounds "
                     f"and {timing['seconds_at_least']} s; TF32 "
                     f"{'on' if timing['tf32'] else 'off'}.")
    cache = "cold" if report["kiln_cache_cold"] else "the caller's KILN_CACHE_DIR"
    lines.append(f"`ready s`: compile plus first call (Kiln's program cache {cache}). Total "
                 f"{report['seconds']} s; exit status {report['exit_status']}.")
    return "\n".join(lines) + "\n"


def _cell(value, spec: str, unit: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{unit}"


def out_folder(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if args.rehearse:
        return Path(tempfile.mkdtemp(prefix="kiln-gpu-check-rehearsal-"))
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else HERE / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for gpu_check.json and .md (default: $OUT when "
                        "set, else benchmarks/results)")
    parser.add_argument("--budget", type=float, default=460,
                        help="seconds for all steps together (default 460)")
    parser.add_argument("--model", action="append", help="bert_base, resnet50 (default both; "
                        "any name of benchmarks/models.py)")
    parser.add_argument("--variants", default="eager,kiln,inductor")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tf32", action="store_true", help="let eager and Inductor use TF32")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--rehearse", action="store_true",
                        help="no GPU: every step on the CPU with small models (checks the script)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    signal.signal(signal.SIGTERM, _terminated)
    deadline = time.monotonic() + args.budget
    start = time.perf_counter()
    machine = preflight(args.rehearse)
    say(f"device: {machine['device']}")
    out = out_folder(args)
    own_cache = not os.environ.get("KILN_CACHE_DIR")  # else the caller's, warm or not
    if own_cache:
        os.environ["KILN_CACHE_DIR"] = tempfile.mkdtemp(prefix="kiln-gpu-check-cache-")
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine,
              "rehearsal": args.rehearse, "kiln_cache_cold": own_cache,
              "tests": {}, "models": []}
    models = args.model or (REHEARSAL_MODELS if args.rehearse else MODELS)
    with tempfile.TemporaryDirectory(prefix="kiln-gpu-check-") as folder:
        scratch = Path(folder)
        if not args.skip_tests:
            limit = min(TESTS_SECONDS, deadline - time.monotonic() - MODEL_RESERVE * len(models))
            say(f"tests: {' '.join(TESTS)} (limit {max(limit, 30):.0f} s)")
            report["tests"] = run_tests(max(limit, 30), scratch)
            t = report["tests"]
            say(f"tests: {t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
                f"{t['skipped']} skipped ({t['exit_status']})")
        for index, name in enumerate(models):
            later = len(models) - index - 1
            limit = deadline - time.monotonic() - 5 - MODEL_RESERVE * later
            if limit < 30:
                report["models"].append({"model": name, "variants": [], "stage": "not started",
                                         "exit_status": "no time left in the budget"})
                continue
            report["models"].append(run_model(name, limit, scratch, args))
    tests = report["tests"]
    kiln_ran = all(any(r["variant"] == "kiln" and "median_ms" in r and not r.get("note")
                       for r in m.get("variants", [])) for m in report["models"])
    ok = kiln_ran and (args.skip_tests or (tests.get("exit_status") == 0))
    report["exit_status"] = 0 if ok else 1
    if own_cache:
        shutil.rmtree(os.environ["KILN_CACHE_DIR"], ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    say(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} ({report['seconds']} s)")
    sys.exit(report["exit_status"])


if __name__ == "__main__":
    main()
