"""The errors Kiln raises on purpose: one tree, each class composing its own message."""

from __future__ import annotations


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of `error`'s message (its type name if empty), cut to `limit` characters:
    what a KilnError quotes of an exception from torch, torch-mlir or IREE."""
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:limit]


class KilnError(Exception):
    """Base of every error Kiln raises on purpose."""


class UnsupportedOpError(KilnError):
    """A PyTorch op that Kiln cannot import or lower."""

    def __init__(self, op: str, where: str | None = None, hint: str = "") -> None:
        self.op, self.where = op, where
        at = f" (at {where})" if where else ""
        advice = hint or "run `kiln explain` to see the imported IR, or rewrite the op"
        super().__init__(f"Kiln cannot compile the PyTorch op '{op}'{at}: {advice}.")


class FrontendError(KilnError):
    """The model could not be captured (export, script or trace failed)."""


class CompileError(KilnError):
    """A pass pipeline or IREE rejected the program; the message lists the diagnostics."""


class InputError(KilnError):
    """Inputs given to a compiled module do not match what it was compiled for."""


class TargetError(KilnError):
    """An unknown target, or no device able to run the artifact."""


class RuntimeCheckError(KilnError):
    """A check the model makes (TorchScript's `raise` on a path the shapes do not decide)
    failed inside the compiled program, as the model would have raised."""


class IndexCheckError(RuntimeCheckError, IndexError):
    """An index outside the tensor it indexes reached a gather- or scatter-like op in the
    compiled program (eager PyTorch raises IndexError or RuntimeError there)."""

    # How the program's check messages start (passes/index_checks.py writes them).
    MESSAGE_PREFIX = "index out of range"


class ArtifactError(KilnError):
    """A `.kiln` file is missing, damaged or made by an incompatible version."""


class PassOptionError(KilnError):
    """A pass or pipeline was named or configured wrongly."""
