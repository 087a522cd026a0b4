"""On-disk cache of compiled IREE modules, keyed by IR hash + flags + versions; atomic writes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from kiln.config import cache_dir, versions

log = logging.getLogger(__name__)


def cache_key(ir_text: str, flags: list[str]) -> str:
    """The hash naming a compile of `ir_text` with `flags` under the installed versions."""
    digest = hashlib.sha256()
    digest.update(json.dumps([flags, versions()], sort_keys=True).encode())
    digest.update(ir_text.encode())
    return digest.hexdigest()


def _path(key: str) -> Path:
    folder = cache_dir() / "modules"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.vmfb"


def lookup(key: str) -> bytes | None:
    """The cached module for `key`, or None."""
    path = _path(key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    log.debug("compile cache hit %s", key[:12])
    return data


def store(key: str, data: bytes) -> None:
    """Write the module for `key`; readers see the whole file or none of it."""
    write_atomically(_path(key), data)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", delete=False) as tmp:
        try:
            tmp.write(data)
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)
