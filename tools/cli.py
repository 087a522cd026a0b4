"""The `kiln` command line: compile, run, unpack and explain models and `.kiln` artifacts.

    kiln compile path/to/model.py:MLP -o mlp.kiln --input 4x8:f32 [--target cuda ...]
    kiln run mlp.kiln [--input 4x8:f32 | --input @x.npy] [--device cpu | vulkan | cuda]
    kiln unpack mlp.kiln -o mlp/ [--force] # .vmfb per target, params.irpa, manifest.json
    kiln explain path/to/model.py:MLP --input 4x8:f32 [--stage graph | --each-pass]
    kiln bench path/to/model.py:MLP --input 4x8:f32 [--variant eager --variant kiln]
                                                    [--target cpu --target vulkan]
    kiln cache info | clear
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from kiln.errors import KilnError
from kiln.runtime.module import STAGES

FRONTENDS = ("auto", "export", "script", "trace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `kiln` command; returns the exit status (1 with a message on a KilnError)."""
    warnings.filterwarnings("ignore")
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KilnError as e:
        print(f"kiln: error: {e}", file=sys.stderr)
        return 1


def _compile_model(args: argparse.Namespace, options=None):
    import kiln
    from kiln.tools.models import load_model, parse_input

    model = load_model(args.model)
    inputs = tuple(parse_input(spec, seed) for seed, spec in enumerate(args.input))
    return kiln.compile(model, inputs, frontend=args.frontend, target=args.target or ["cpu"],
                        options=options)


def _compile(args: argparse.Namespace) -> int:
    compiled = _compile_model(args)
    compiled.save(args.output)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size} bytes): targets {', '.join(compiled.executables)}; "
          f"inputs {', '.join(s.describe() for s in compiled.signature.inputs)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import kiln
    from kiln.tools.models import describe_outputs, inputs_for

    module = kiln.load(args.artifact, device=args.device)
    inputs = inputs_for(module.signature, args.input or [])
    outputs = module(*inputs)
    print(f"device: {_device_line(module)}")
    for line in describe_outputs(outputs):
        print(line)
    return 0


def _device_line(module) -> str:
    """The driver a module runs on and, off the CPU, the device it names: "local-task",
    "vulkan (llvmpipe, software, CPU)", "cuda (NVIDIA H100 80GB HBM3)"."""
    from kiln.runtime.module import device_description

    session = module.bind()
    if session.target.target.name == "cpu":
        return session.driver
    try:
        return f"{session.driver} ({device_description(session.driver)})"
    except KilnError:
        return session.driver


def _unpack(args: argparse.Namespace) -> int:
    from kiln.runtime.artifact import unpack

    written = unpack(args.artifact, args.output, force=args.force)
    for name, path in written.items():
        print(f"{name}: {path}")
    print("run with IREE's own tool (one --input per model input, e.g. --input=@x.npy):")
    print("  " + iree_run_command(written, next(k for k in written if k not in
                                                  ("manifest", "params"))))
    return 0


def iree_run_command(written: dict[str, Path], key: str, inputs: Sequence[str] = ()) -> str:
    """The `iree-run-module` command line that runs the unpacked module of target `key`."""
    from kiln.runtime.targets import from_key

    command = ["iree-run-module", f"--device={from_key(key).target.driver}",
               f"--module={written[key]}", "--function=main"]
    if "params" in written:
        command.append(f"--parameters=model={written['params']}")
    command += [f"--input={spec}" for spec in inputs] or ["--input=@input0.npy"]
    return shlex.join(command)


def _explain(args: argparse.Namespace) -> int:
    if args.each_pass:
        return _explain_each_pass(args)
    compiled = _compile_model(args)
    if unknown := [s for s in args.stage or () if s not in compiled.stages]:
        raise KilnError(f"unknown stage '{unknown[0]}'; this compile has "
                        f"{', '.join(compiled.stages)}")
    for stage in args.stage or compiled.stages:
        print(f"// ----- IR after '{stage}' -----")
        print(compiled.ir(stage))
    return 0


def _explain_each_pass(args: argparse.Namespace) -> int:
    """Compile with IR dumps into a temporary folder and print them in order."""
    import tempfile

    import kiln

    with tempfile.TemporaryDirectory(prefix="kiln-explain-") as folder:
        _compile_model(args, kiln.CompileOptions(dump_ir=folder))
        for path in sorted(Path(folder).glob("*.mlir")):
            print(f"// ----- IR after {path.stem} -----")
            print(path.read_text())
    return 0


def _bench(args: argparse.Namespace) -> int:
    from kiln.tools import bench
    from kiln.tools.models import load_model, parse_input

    unknown = sorted(set(args.variant or ()) - set(bench.PEERS))
    if unknown:
        raise KilnError(f"unknown --variant {', '.join(unknown)}; known: {', '.join(bench.PEERS)}")
    targets = list(dict.fromkeys(args.target or ["cpu"]))
    if args.target and "kiln" not in (args.variant or bench.PEERS):
        raise KilnError("--target picks the targets Kiln is timed on: add --variant kiln")
    kiln_variants = dict(bench.kiln_variant(target, args.frontend) for target in targets)
    model = load_model(args.model)
    inputs = tuple(parse_input(spec, seed) for seed, spec in enumerate(args.input))
    variants = {}
    for name in args.variant or bench.PEERS:
        variants.update(kiln_variants if name == "kiln" else {name: bench.PEERS[name]})
    results, peak = bench.compare(model, inputs, variants=variants, min_seconds=args.seconds,
                                  rounds=args.rounds)
    name = args.model.rpartition(":")[2] or args.model
    print(bench.markdown({name: results}, {name: peak}))
    return 0


def _cache_info(args: argparse.Namespace) -> int:
    from kiln.runtime import cache

    folders = cache.info()
    print(f"location: {cache.root()}")
    for folder in folders:
        others = f"; {folder.others} other files" if folder.others else ""
        print(f"{folder.name}: {folder.entries} files, {_size(folder.size)} ({folder.what}"
              f"{others})")
    total = sum(f.size for f in folders)
    print(f"total: {sum(f.entries for f in folders)} files, {_size(total)}")
    return 0


def _cache_clear(args: argparse.Namespace) -> int:
    from kiln.runtime import cache

    files, size, others = cache.clear()
    print(f"removed {files} files ({_size(size)}) from {cache.root()}")
    if others:
        print(f"left {others} files that Kiln did not write")
    return 0


def _size(size: float) -> str:
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def _bench_parser(commands) -> None:
    bench = commands.add_parser("bench", help="time a model under eager, TorchScript, Inductor, "
                                "ONNX Runtime and Kiln, and print a markdown table")
    _model_arguments(bench, target_help="a target to time Kiln on (repeatable: one kiln row "
                     "each, e.g. --target cpu --target vulkan); default cpu. Rows off the CPU "
                     "name the device they ran on")
    bench.add_argument("--variant", action="append",
                       help="only this variant (repeatable): eager, torchscript, inductor, "
                            "onnxruntime, kiln")
    bench.add_argument("--seconds", type=float, default=3.0,
                       help="time at least this long (default 3)")
    bench.add_argument("--rounds", type=int, default=30, help="and at least this many rounds")
    bench.set_defaults(run=_bench)


def _cache_parser(commands) -> None:
    cache = commands.add_parser("cache", help="show or clear the compile cache "
                                "(KILN_CACHE_DIR, default ~/.cache/kiln)")
    actions = cache.add_subparsers(required=True, metavar="ACTION")
    actions.add_parser("info", help="entries, size and location").set_defaults(run=_cache_info)
    actions.add_parser("clear", help="delete every cached module, program and reproducer "
                       "(files Kiln did not write stay)").set_defaults(run=_cache_clear)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="Compile PyTorch models with Kiln.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    compile_ = commands.add_parser("compile", help="compile a model into a .kiln artifact")
    _model_arguments(compile_)
    compile_.add_argument("-o", "--output", required=True, help="the .kiln file to write")
    compile_.set_defaults(run=_compile)
    run = commands.add_parser("run", help="run a .kiln artifact and summarize its outputs")
    run.add_argument("artifact")
    run.add_argument("--input", action="append",
                     help="SIZExSIZE...:DTYPE (random) or @file.npy; default: random inputs "
                          "of the artifact's signature")
    run.add_argument("--device", help="cpu, cuda, rocm, vulkan (default: the first that works); "
                     "off the CPU the device's name is printed, e.g. 'vulkan (llvmpipe, software, "
                     "CPU)' for Mesa's software Vulkan")
    run.set_defaults(run=_run)
    unpack = commands.add_parser("unpack", help="write an artifact's modules, parameters and "
                                 "manifest as files for IREE's tools")
    unpack.add_argument("artifact")
    unpack.add_argument("-o", "--output", required=True,
                        help="folder to write into: new or empty, unless --force")
    unpack.add_argument("--force", action="store_true",
                        help="overwrite files of the same names in a folder that is not empty")
    unpack.set_defaults(run=_unpack)
    explain = commands.add_parser("explain", help="print the IR after each layer")
    _model_arguments(explain)
    explain.add_argument("--stage", action="append",
                         help=f"only this stage (repeatable): {', '.join(STAGES)}, or "
                              "codegen:TARGET (e.g. codegen:cpu), a target's own code")
    explain.add_argument("--each-pass", action="store_true",
                         help="print the IR after every pass, not only after each layer")
    explain.set_defaults(run=_explain)
    _bench_parser(commands)
    _cache_parser(commands)
    return parser


def _model_arguments(parser: argparse.ArgumentParser, target_help: str | None = None) -> None:
    parser.add_argument("model", help="path/to/file.py:ClassOrFactory, or a TorchScript .pt")
    parser.add_argument("--input", action="append", required=True,
                        help="one per input: SIZExSIZE...:DTYPE, e.g. 1x3x224x224:f32")
    parser.add_argument("--frontend", default="auto", choices=FRONTENDS)
    parser.add_argument("--target", action="append",
                        help=target_help or "cpu (default), cuda[:sm_XX], rocm[:gfxNNN], "
                             "vulkan[:arch]; repeat for one artifact holding several targets")


if __name__ == "__main__":
    sys.exit(main())
