"""Kiln: compile PyTorch programs through MLIR and IREE into native executables.

    cm = kiln.compile(model, example_inputs, target="cpu")
    outputs = cm(*tensors)
    cm.save("model.kiln")
    cm = kiln.load("model.kiln")      # needs neither the model source nor torch-mlir

`compile` and `CompileOptions` are imported on first use, so that loading and running an
artifact works on a machine with only torch and the IREE runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln.errors import (
    ArtifactError,
    CompileError,
    FrontendError,
    IndexCheckError,
    InputError,
    KilnError,
    RuntimeCheckError,
    TargetError,
    UnsupportedOpError,
)
from kiln.runtime.module import CompiledModule, load

if TYPE_CHECKING:
    from kiln.compiler import CompileOptions, compile

_COMPILER_NAMES = ("CompileOptions", "compile")

__all__ = [
    "ArtifactError", "CompileError", "CompileOptions", "CompiledModule", "FrontendError",
    "IndexCheckError", "InputError", "KilnError", "RuntimeCheckError", "TargetError",
    "UnsupportedOpError", "compile", "load",
]


def __getattr__(name: str):
    if name in _COMPILER_NAMES:
        from kiln import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'kiln' has no attribute '{name}'")
