"""`kiln-opt`: parse MLIR with the torch and kiln dialects, run passes, print the result.

    kiln-opt FILE.mlir --kiln-inline-params --params weights.pt
    kiln-opt FILE.mlir --pass-pipeline='kiln-import-cleanup,kiln-graph'
    kiln-opt FILE.mlir --kiln-lower --kiln-codegen-cpu
    kiln-opt FILE.mlir --pass-pipeline='kiln-codegen-cpu{tile=16x16}'

Each registered Kiln pass and pipeline is also a flag; flags run in the order given. A
target's own code generation is its pipeline (kiln-codegen-cpu, -cuda, -rocm, -vulkan);
options are written as in MLIR, `name{option=value}`, in --pass-pipeline.
Diagnostics print as `FILE:LINE:COL: error: MESSAGE` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch_mlir import ir

from kiln.dialects.context import new_context
from kiln.errors import KilnError, first_line
from kiln.passes.pipelines import (
    PIPELINES,
    expand,
    render_location,
    run_pipeline,
    verify_kiln_ops,
)
from kiln.passes.registry import PASSES, PassContext

SPLIT_MARKER = "// -----"
# Deeper nesting overflows the stack: MLIR's recursive parser segfaulted at about 4,500
# nested regions (8 MiB stack), and Kiln's op walk hits Python's recursion limit at 1,000.
MAX_NESTING = 256
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|//[^\n]*|[][{}()]')


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = _read_text(args.file)
        params = _load_params(args.params) if args.params else {}
    except KilnError as e:
        print(f"kiln-opt: error: {e}", file=sys.stderr)
        return 1
    chunks = _split(text) if args.split_input_file else [text]
    elements = [*_split_pipeline(args.pass_pipeline or ""), *(args.elements or [])]
    if not params and "kiln-fold-params" in expand(elements) and "kiln.param" in text:
        print("kiln-opt: warning: kiln-fold-params folds what it can compute from weights, "
              "and no --params gives them: kiln.param ops stay as they are; pass "
              "--params WEIGHTS.pt", file=sys.stderr)
    ctx = PassContext(params=params)
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


def _read_text(file: str) -> str:
    """The MLIR text of `file` (- for stdin); KilnError if it cannot be read or is not text."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise KilnError(f"cannot read '{file}': {e.strerror or e}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise KilnError(f"'{file}' is not MLIR text (byte {e.start} is not UTF-8)") from None
    if "\0" in text:
        raise KilnError(f"'{file}' is not MLIR text (it holds a NUL byte)")
    if (depth := _nesting(text)) > MAX_NESTING:
        raise KilnError(f"'{file}' nests regions and brackets {depth} levels deep, more than "
                        f"kiln-opt's {MAX_NESTING}: MLIR's parser would run out of stack")
    return text


def _nesting(text: str) -> int:
    """How deep `{`, `[` and `(` nest in `text`, outside strings and comments."""
    depth = deepest = 0
    for token in _BRACKETS.finditer(text):
        if (char := token[0]) in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}])":
            depth -= 1
    return deepest


def _load_params(file: str) -> dict[str, torch.Tensor]:
    """The `{qualname: tensor}` dict saved in `file` by `torch.save`; KilnError otherwise."""
    try:
        params = torch.load(file, map_location="cpu")
    # torch.load fails with many types on a file that is not a torch.save file (pickle's
    # UnpicklingError, RuntimeError, EOFError, OSError...): each means "no weights here".
    except Exception as e:  # noqa: BLE001
        raise KilnError(f"--params '{file}' is not a torch.save file: {first_line(e)}") from None
    if not (isinstance(params, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in params.items())):
        raise KilnError(f"--params '{file}' holds a {type(params).__name__}, not a "
                        "{qualname: tensor} dict")
    return params


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
    for name in [*PASSES, *PIPELINES]:
        summary = PASSES[name].summary if name in PASSES else "pipeline: " + ", ".join(PIPELINES[name])
        parser.add_argument(f"--{name}", dest="elements", action="append_const", const=name,
                            help=summary)
    return parser


if __name__ == "__main__":
    sys.exit(main())
