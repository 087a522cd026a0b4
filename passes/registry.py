"""Kiln's passes by name: a dict filled by the `kiln_pass` decorator.

Python passes are not in MLIR's textual pass registry (STYLE fact 4), so `kiln-opt` and the
pipelines look Kiln passes up here and pass everything else to MLIR by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch


class PassFailed(Exception):
    """Raised by a pass after it has emitted its diagnostics with `location.emit_error`."""


@dataclass
class PassContext:
    """What passes may read besides the IR: the weights `kiln.param` ops name, and stats.

    What a pass does for one target only (the CPU's tile sizes) is a pass option, not
    context: it shows in the pipeline text, in IR dumps and in reproducers."""

    params: Mapping[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, pass_name: str, what: str, n: int = 1) -> None:
        counts = self.stats.setdefault(pass_name, {})
        counts[what] = counts.get(what, 0) + n


# fn(module_op, pass_context, **options): options are keyword-only string parameters
# with defaults, set in pipeline text as `kiln-pass{name=value}`.
PassFn = Callable[..., None]


@dataclass(frozen=True)
class PassInfo:
    """A registered pass: its kebab-case name, the function, its one-line summary and its
    options with their defaults (the function's keyword-only parameters)."""

    name: str
    run: PassFn
    summary: str
    options: Mapping[str, str] = field(default_factory=dict)


PASSES: dict[str, PassInfo] = {}


def kiln_pass(name: str) -> Callable[[PassFn], PassFn]:
    """Register `fn(module_op, pass_context, *, option="default", ...)` as the pass `name`."""

    def register(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass '{name}' is registered twice")
        options = {p.name.replace("_", "-"): p.default
                   for p in inspect.signature(fn).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
        if not all(isinstance(default, str) for default in options.values()):
            raise ValueError(f"pass '{name}': options are strings with a default")
        PASSES[name] = PassInfo(name, fn, (inspect.getdoc(fn) or "").partition("\n")[0],
                                options)
        return fn

    return register
