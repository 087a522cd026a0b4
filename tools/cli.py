"""The `kiln` command line: `kiln explain MODEL --input SPEC ...`."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from kiln.errors import KilnError
from kiln.runtime.module import STAGES


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KilnError as e:
        print(f"kiln: error: {e}", file=sys.stderr)
        return 1


def _explain(args: argparse.Namespace) -> int:
    import kiln
    from kiln.tools.models import load_model, parse_input

    model = load_model(args.model)
    inputs = tuple(parse_input(spec, seed) for seed, spec in enumerate(args.input))
    compiled = kiln.compile(model, inputs, frontend=args.frontend, target=args.target)
    for stage in args.stage or STAGES:
        print(f"// ----- IR after '{stage}' -----")
        print(compiled.ir(stage))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="Compile PyTorch models with Kiln.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    explain = commands.add_parser("explain", help="print the IR after each layer")
    _model_arguments(explain)
    explain.add_argument("--stage", action="append", choices=STAGES,
                         help="only this stage (repeatable)")
    explain.set_defaults(run=_explain)
    return parser


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="path/to/file.py:ClassOrFactory, or a TorchScript .pt")
    parser.add_argument("--input", action="append", required=True,
                        help="one per input: SIZExSIZE...:DTYPE, e.g. 1x3x224x224:f32")
    parser.add_argument("--frontend", default="auto", choices=["auto", "export", "script", "trace"])
    parser.add_argument("--target", default="cpu")


if __name__ == "__main__":
    sys.exit(main())
