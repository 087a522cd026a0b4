"""Process-wide settings read from the environment: cache location and versions."""

from __future__ import annotations

import functools
import hashlib
import os
from importlib import metadata
from pathlib import Path


def cache_dir() -> Path:
    """Where Kiln keeps compiled modules and reproducers (`KILN_CACHE_DIR`, else ~/.cache/kiln)."""
    root = os.environ.get("KILN_CACHE_DIR") or Path.home() / ".cache" / "kiln"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def versions() -> dict[str, str]:
    """The versions that decide whether a compiled module is still valid.

    "kiln-source" is a digest of Kiln's own code, so a changed pass invalidates cached
    results even when the version number stays the same (as it does during development).
    """
    names = ("kiln", "torch", "torch-mlir", "iree-base-compiler", "iree-base-runtime")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    found["kiln-source"] = _source_digest()
    return found


def _source_digest() -> str:
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for folder in ("", "frontend", "dialects", "passes", "runtime"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
