"""Kiln: compile PyTorch programs through MLIR and IREE into native executables.

    cm = kiln.compile(model, example_inputs, target="cpu")
    outputs = cm(*tensors)
"""

from kiln.compiler import CompileOptions, compile
from kiln.errors import (
    ArtifactError,
    CompileError,
    FrontendError,
    InputError,
    KilnError,
    TargetError,
    UnsupportedOpError,
)
from kiln.runtime.module import CompiledModule

__all__ = [
    "ArtifactError", "CompileError", "CompileOptions", "CompiledModule", "FrontendError",
    "InputError", "KilnError", "TargetError", "UnsupportedOpError", "compile",
]
