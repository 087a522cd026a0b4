"""Kiln's passes by name: a dict filled by the `kiln_pass` decorator.

Python passes are not in MLIR's textual pass registry (STYLE fact 4), so `kiln-opt` and the
pipelines look Kiln passes up here and pass everything else to MLIR by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch_mlir import ir


class PassFailed(Exception):
    """Raised by a pass after it has emitted its diagnostics with `location.emit_error`."""


@dataclass
class PassContext:
    """What passes may read besides the IR: the weights `kiln.param` ops name, the names of
    the targets the IR is compiled for (`runtime/targets.py`), and stats."""

    params: Mapping[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    targets: tuple[str, ...] = ("cpu",)

    @property
    def cpu_only(self) -> bool:
        """Whether the CPU is every target: the linalg module serves all of a compile's
        targets, so passes measured on the CPU alone act only then."""
        return set(self.targets) == {"cpu"}

    def count(self, pass_name: str, what: str, n: int = 1) -> None:
        counts = self.stats.setdefault(pass_name, {})
        counts[what] = counts.get(what, 0) + n


PassFn = Callable[[ir.Operation, PassContext], None]


@dataclass(frozen=True)
class PassInfo:
    """A registered pass: its kebab-case name, the function and its one-line summary."""

    name: str
    run: PassFn
    summary: str


PASSES: dict[str, PassInfo] = {}


def kiln_pass(name: str) -> Callable[[PassFn], PassFn]:
    """Register `fn(module_op, pass_context)` as the pass `name`."""

    def register(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass '{name}' is registered twice")
        PASSES[name] = PassInfo(name, fn, (inspect.getdoc(fn) or "").partition("\n")[0])
        return fn

    return register
