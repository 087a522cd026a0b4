"""Source lines of ops: the user's `path:line:col` out of an MLIR location."""

from __future__ import annotations

import re
from pathlib import Path

from torch_mlir import ir

_LOCATION = re.compile(r'loc\("(?P<path>[^"]*)":(?P<line>\d+):(?P<col>\d+)\)')


def render_location(location: ir.Location) -> str:
    """`path:line:col` of the innermost file location in `location` (the user's frame)."""
    found = _LOCATION.findall(str(location))  # a callsite prints innermost frame first
    if not found:
        return "<unknown>"
    user = [frame for frame in found if not _is_library(frame[0])]
    path, line, col = (user or found)[0]
    return f"{path}:{line}:{col}"


_KILN_ROOT = Path(__file__).resolve().parent.parent
_KILN_CODE = tuple(f"{_KILN_ROOT / part}" for part in (
    "frontend/", "passes/", "runtime/", "dialects/", "tools/", "compiler.py", "backend.py"))


def _is_library(path: str) -> bool:
    """Frames of torch or Kiln itself: never the line a user wants to see."""
    return path.startswith(_KILN_CODE) or any(
        part in path for part in ("/site-packages/torch/", "/torch/nn/", "/torch/_"))
