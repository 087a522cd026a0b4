"""On-disk cache of compiled IREE modules, keyed by IR hash + flags + versions.

Writes are atomic (a temporary file in the same folder, then a rename), and every entry
carries the SHA-256 of its module: a truncated or overwritten file is detected on lookup,
deleted and compiled again. Two processes compiling the same program at once both
compile; each rename installs a whole, identical entry, so neither sees half of one.
`info` and `clear` back `kiln cache info | clear`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kiln.config import cache_dir, versions

log = logging.getLogger(__name__)

MAGIC = b"KILNVMFB1\n"          # then the 32-byte SHA-256 of the module, then the module
# What `kiln cache` reports and clears: Kiln's own folders under the cache root, never
# the root itself (KILN_CACHE_DIR may point anywhere).
FOLDERS = {
    "modules": "IREE modules (.vmfb)",
    "programs": "whole compiled programs (.kiln + IR)",
    "repro": "reproducers of failed pipelines (.mlir)",
}


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
    """The cached module for `key`, or None; a damaged entry is deleted (and so rebuilt)."""
    path = _path(key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if (module := _verified(data)) is None:
        log.warning("compile cache entry %s is damaged (checksum mismatch); compiling again",
                    path)
        path.unlink(missing_ok=True)
        return None
    log.debug("compile cache hit %s", key[:12])
    return module


def store(key: str, data: bytes) -> None:
    """Write the module for `key` with its checksum; readers see the whole file or none."""
    write_atomically(_path(key), MAGIC + hashlib.sha256(data).digest() + data)


def _verified(entry: bytes) -> bytes | None:
    header = len(MAGIC) + 32
    if len(entry) < header or not entry.startswith(MAGIC):
        return None
    module = entry[header:]
    return module if hashlib.sha256(module).digest() == entry[len(MAGIC):header] else None


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", delete=False) as tmp:
        try:
            tmp.write(data)
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)


@dataclass(frozen=True)
class FolderInfo:
    """One cache folder: what it holds, how many files and bytes."""

    name: str
    path: Path
    what: str
    entries: int
    size: int


def info() -> list[FolderInfo]:
    """Entries and bytes in each of Kiln's cache folders."""
    found = []
    for name, what in FOLDERS.items():
        path = cache_dir() / name
        files = [p for p in path.glob("*") if p.is_file()] if path.is_dir() else []
        found.append(FolderInfo(name, path, what, len(files), sum(p.stat().st_size for p in files)))
    return found


def clear() -> tuple[int, int]:
    """Delete Kiln's cache folders; the number of files and bytes removed."""
    removed = info()
    for folder in removed:
        shutil.rmtree(folder.path, ignore_errors=True)
    return sum(f.entries for f in removed), sum(f.size for f in removed)
