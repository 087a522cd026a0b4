"""`kiln-opt`: parse MLIR with the torch and kiln dialects, run passes, print the result.

    kiln-opt FILE.mlir --kiln-inline-params --params weights.pt
    kiln-opt FILE.mlir --pass-pipeline='kiln-import-cleanup,kiln-graph'
    kiln-opt FILE.mlir --kiln-lower --target cpu --target cuda

Each registered Kiln pass and pipeline is also a flag; flags run in the order given.
`--target` names the targets the IR is compiled for (default: cpu), which some passes read.
Diagnostics print as `FILE:LINE:COL: error: MESSAGE` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch_mlir import ir

from kiln.dialects.context import new_context
from kiln.errors import KilnError
from kiln.passes.pipelines import PIPELINES, render_location, run_pipeline, verify_kiln_ops
from kiln.passes.registry import PASSES, PassContext
from kiln.runtime.targets import TARGETS

SPLIT_MARKER = "// -----"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    chunks = _split(text) if args.split_input_file else [text]
    elements = [*_split_pipeline(args.pass_pipeline or ""), *(args.elements or [])]
    ctx = PassContext(params=torch.load(args.params) if args.params else {},
                      targets=tuple(args.target or ("cpu",)))
    failed = False
    for index, chunk in enumerate(chunks):
        if index:
            print(SPLIT_MARKER)
        failed |= not _process(chunk, args.file, elements, ctx)
    if args.stats:
        for name, counts in ctx.stats.items():
            for what, n in counts.items():
                print(f"// {name}: {n} {what}", file=sys.stderr)
    return 1 if failed else 0


def _process(text: str, filename: str, elements: list[str], ctx: PassContext) -> bool:
    with new_context():
        try:
            module = ir.Module.parse(text)
            verify_kiln_ops(module, "parse")
            if elements:
                run_pipeline(module, elements, "kiln-opt", ctx)
        except ir.MLIRError as e:
            _report([f"{render_location(d.location)}: error: {d.message}"
                     for d in e.error_diagnostics], filename)
            return False
        except KilnError as e:
            _report(_diagnostic_lines(str(e)), filename)
            return False
        print(module.operation.get_asm(assume_verified=True))
    return True


def _report(lines: Sequence[str], filename: str) -> None:
    """Print diagnostics, naming `filename` where the parser only knew "-" (split chunks)."""
    for line in lines:
        print(f"{filename}:{line[2:]}" if line.startswith("-:") else line, file=sys.stderr)


def _diagnostic_lines(message: str) -> list[str]:
    """A KilnError's diagnostics, one per line, without its 'stage failed:' header."""
    lines = message.splitlines()
    if len(lines) > 1 and lines[0].endswith(":"):
        return [line.strip() for line in lines[1:]]
    return lines


def _split(text: str) -> list[str]:
    """Chunks between `// -----` lines, each padded so line numbers match the file."""
    chunks, start, lines = [], 0, text.splitlines(keepends=True)
    for number, line in enumerate([*lines, SPLIT_MARKER]):
        if line.strip() == SPLIT_MARKER:
            chunks.append("\n" * start + "".join(lines[start:number]))
            start = number + 1
    return chunks


def _split_pipeline(spec: str) -> list[str]:
    """Top-level comma split of a pipeline string ("a,func.func(b,c),d" -> 3 elements)."""
    spec = spec.strip()
    if spec.startswith("builtin.module(") and spec.endswith(")"):
        spec = spec[len("builtin.module("):-1]
    elements, depth, current = [], 0, ""
    for char in spec:
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            elements.append(current.strip())
            current = ""
        else:
            current += char
    return [e for e in [*elements, current.strip()] if e]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln-opt", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default="-", help="MLIR file, or - for stdin")
    parser.add_argument("--pass-pipeline", help="comma-separated passes and pipelines")
    parser.add_argument("--params", help="torch.save'd {qualname: tensor} for kiln.param")
    parser.add_argument("--split-input-file", action="store_true",
                        help=f"process each '{SPLIT_MARKER}' chunk on its own")
    parser.add_argument("--stats", action="store_true", help="print what each pass did")
    parser.add_argument("--target", action="append", choices=list(TARGETS),
                        help="a target the IR is compiled for (repeatable; default cpu)")
    for name in [*PASSES, *PIPELINES]:
        summary = PASSES[name].summary if name in PASSES else "pipeline: " + ", ".join(PIPELINES[name])
        parser.add_argument(f"--{name}", dest="elements", action="append_const", const=name,
                            help=summary)
    return parser


if __name__ == "__main__":
    sys.exit(main())
