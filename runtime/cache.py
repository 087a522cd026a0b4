"""On-disk cache of compiled IREE modules, keyed by IR hash + flags + versions.

Writes are atomic (a temporary file in the same folder, then a rename), and every entry
carries the SHA-256 of its module: a truncated or overwritten file is detected on lookup,
deleted and compiled again. Two processes compiling the same program at once both
compile; each rename installs a whole, identical entry, so neither sees half of one. A
KILN_CACHE_DIR that cannot be used (a file, a read-only folder) costs the cache, with one
warning, never the compile. `info` and `clear` back `kiln cache info | clear`; `clear`
deletes only files named as Kiln names them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from kiln.config import cache_dir, versions
from kiln.errors import KilnError

log = logging.getLogger(__name__)

MAGIC = b"KILNVMFB1\n"          # then the 32-byte SHA-256 of the module, then the module
_TEMPORARY = r"\.[A-Za-z0-9_]+"  # write_atomically's suffix, left by a process that died


@dataclass(frozen=True)
class Folder:
    """One of Kiln's folders under the cache root, and the names of the files Kiln writes
    there: `clear` removes those and leaves anything else (KILN_CACHE_DIR may point at a
    folder that holds the user's own files)."""

    name: str
    what: str
    files: re.Pattern


FOLDERS = (
    Folder("modules", "IREE modules (.vmfb)",
           re.compile(rf"[0-9a-f]{{64}}\.vmfb({_TEMPORARY})?")),
    Folder("programs", "whole compiled programs (.kiln + IR)",
           re.compile(rf"[0-9a-f]{{64}}\.(kiln|ir\.json)({_TEMPORARY})?")),
    # passes/pipelines.py: `<stage>-<16 hex digits>.mlir`, written through `.tmp`.
    Folder("repro", "reproducers of failed pipelines (.mlir)",
           re.compile(r"[\w.-]+-[0-9a-f]{16}\.(mlir|tmp)")),
)
_warned: set[str | None] = set()   # KILN_CACHE_DIR values already reported unusable


def cache_key(ir_text: str, flags: list[str]) -> str:
    """The hash naming a compile of `ir_text` with `flags` under the installed versions."""
    digest = hashlib.sha256()
    digest.update(json.dumps([flags, versions()], sort_keys=True).encode())
    digest.update(ir_text.encode())
    return digest.hexdigest()


def folder(name: str) -> Path | None:
    """Kiln's cache folder `name`, created if missing; None, with one warning per process,
    where KILN_CACHE_DIR cannot hold it (a file, say): Kiln then compiles without a cache."""
    try:
        path = cache_dir() / name
        path.mkdir(exist_ok=True)
    except OSError as e:
        without_cache(e)
        return None
    return path


def without_cache(error: Exception) -> None:
    """Warn, once per KILN_CACHE_DIR, that `error` keeps Kiln from using its cache."""
    setting = os.environ.get("KILN_CACHE_DIR")
    if setting in _warned:
        return
    _warned.add(setting)
    log.warning("compiling without the cache (%s); point KILN_CACHE_DIR at a writable folder",
                error)


def lookup(key: str) -> bytes | None:
    """The cached module for `key`, or None; a damaged entry is deleted (and so rebuilt)."""
    if (modules := folder("modules")) is None:
        return None
    path = modules / f"{key}.vmfb"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        drop(path, why=e.strerror or str(e))
        return None
    if (module := _unsealed(data)) is None:
        drop(path, why="checksum mismatch")
        return None
    log.debug("compile cache hit %s", key[:12])
    return module


def store(key: str, data: bytes) -> None:
    """Write the module for `key` with its checksum; readers see the whole file or none."""
    if (modules := folder("modules")) is None:
        return
    try:
        write_atomically(modules / f"{key}.vmfb", _sealed(data))
    except OSError as e:
        without_cache(e)


def _sealed(data: bytes) -> bytes:
    """`data` behind MAGIC and its SHA-256, as cache entries are kept."""
    return MAGIC + hashlib.sha256(data).digest() + data


def _unsealed(entry: bytes) -> bytes | None:
    """The data of a `_sealed` entry, or None if the entry is not whole."""
    header = len(MAGIC) + 32
    if len(entry) < header or not entry.startswith(MAGIC):
        return None
    data = entry[header:]
    return data if hashlib.sha256(data).digest() == entry[len(MAGIC):header] else None


def drop(*paths: Path, why: str) -> None:
    """Delete a damaged entry's files, saying why; a file that cannot be deleted is looked
    at again next time."""
    log.warning("cache entry %s is damaged (%s); compiling again", paths[0], why)
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            log.warning("cannot delete damaged cache file %s: %s", path, e.strerror or e)


def write_atomically(path: Path, data: bytes | memoryview) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename:
    readers see the old file or the new one, never half of one, and a failed write leaves
    nothing behind. The file gets mode 0666 less the umask, as `open` gives (tempfile's
    0600 would make every saved artifact private to its owner)."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FolderInfo:
    """One cache folder: what it holds, how many of Kiln's files and bytes, and how many
    other files (which `clear` leaves)."""

    name: str
    path: Path
    what: str
    entries: int
    size: int
    others: int


def root() -> Path:
    """The cache root (created if missing); KilnError if KILN_CACHE_DIR cannot be one."""
    try:
        return cache_dir()
    except OSError as e:
        raise KilnError(f"cannot use the cache folder '{os.environ.get('KILN_CACHE_DIR')}': "
                        f"{e.strerror or e}; point KILN_CACHE_DIR at a folder") from None


def info() -> list[FolderInfo]:
    """Kiln's entries, their bytes, and other files in each of Kiln's cache folders."""
    return [_folder_info(spec) for spec in FOLDERS]


def _folder_info(spec: Folder) -> FolderInfo:
    path = root() / spec.name
    files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else []
    ours = [p for p in files if spec.files.fullmatch(p.name)]
    return FolderInfo(spec.name, path, spec.what, len(ours), sum(p.stat().st_size for p in ours),
                      len(files) - len(ours))


def clear() -> tuple[int, int, int]:
    """Delete the files Kiln wrote in its cache folders, and each folder left empty; the
    number of files and bytes removed, and of other files left where they are."""
    found = info()
    try:
        for spec, folder_info in zip(FOLDERS, found):
            _clear(folder_info.path, spec.files)
    except OSError as e:
        raise KilnError(f"cannot clear the cache: {e}") from None
    return (sum(f.entries for f in found), sum(f.size for f in found),
            sum(f.others for f in found))


def _clear(path: Path, files: re.Pattern) -> None:
    if not path.is_dir():
        return
    for file in path.iterdir():
        if file.is_file() and files.fullmatch(file.name):
            file.unlink(missing_ok=True)
    if not any(path.iterdir()):
        path.rmdir()
