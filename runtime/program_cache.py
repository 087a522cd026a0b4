"""Whole-program cache: compiled modules keyed by a fingerprint of the captured program.

The IREE cache (`cache.py`) skips IREE but still needs the linalg text, so a warm compile
still pays for import and lowering (about 8 s for BERT-base). This cache is consulted right
after capture: the key is the frontend's fingerprint of the program (graph, input specs,
weight values) plus targets, options and versions, and an entry is a `.kiln` artifact
beside the IR text of each stage and the pass statistics, with their SHA-256. A damaged
entry is dropped and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from kiln.config import versions
from kiln.errors import ArtifactError, KilnError
from kiln.runtime import artifact, cache
from kiln.runtime.module import CompiledModule, module_from

log = logging.getLogger(__name__)


def program_key(fingerprint: str, targets: list, options: Mapping[str, object]) -> str:
    """The cache key of one compile: what was captured, for what, how, by which versions."""
    text = json.dumps([fingerprint, targets, options, versions()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def lookup(key: str, stats: dict | None = None) -> CompiledModule | None:
    """The cached module for `key`, with its IR, or None (a damaged entry is removed).

    `stats` receives the pass statistics recorded when the entry was compiled.
    """
    if (programs := cache.folder("programs")) is None:
        return None
    module_path, ir_path = _paths(programs, key)
    if not module_path.exists():
        return None
    try:
        stages, recorded = _read_ir(ir_path)
        module = module_from(artifact.read(module_path), ir=stages)
    except (KilnError, ValueError, OSError, RecursionError) as e:
        cache.drop(module_path, ir_path, why=str(e))
        return None
    if stats is not None:
        stats.update(recorded)
    log.info("program cache hit %s", key[:12])
    return module


def store(key: str, module: CompiledModule, stages: Mapping[str, str],
          stats: Mapping[str, Mapping[str, int]]) -> None:
    """Keep `module`, its stage IR and pass statistics under `key`; each file appears
    whole or not at all. A cache that cannot be written is warned about, not raised."""
    if (programs := cache.folder("programs")) is None:
        return
    module_path, ir_path = _paths(programs, key)
    stages = dict(stages)
    stats = {name: dict(counts) for name, counts in stats.items()}
    entry = {"stages": stages, "stats": stats, "sha256": _digest(stages, stats)}
    try:
        cache.write_atomically(ir_path, json.dumps(entry).encode())
        module.save(module_path)
    except (OSError, ArtifactError) as e:
        cache.without_cache(e)


def _paths(programs: Path, key: str) -> tuple[Path, Path]:
    return programs / f"{key}.kiln", programs / f"{key}.ir.json"


def _read_ir(path: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """An entry's stage IR and pass statistics, after checking their form and checksum: the
    file is JSON that anything may have rewritten."""
    entry = json.loads(path.read_bytes())
    stages = entry.get("stages") if isinstance(entry, dict) else None
    stats = entry.get("stats") if isinstance(entry, dict) else None
    if not (_is_map(stages, str) and isinstance(stats, dict)
            and all(_is_map(counts, int) for counts in stats.values())):
        raise ValueError(f"{path.name} is not {{stages: {{stage: IR}}, stats: {{pass: "
                         "{what: count}}}}}")
    if entry.get("sha256") != _digest(stages, stats):
        raise ValueError(f"{path.name} does not match its SHA-256 checksum")
    return stages, stats


def _is_map(value: object, kind: type) -> bool:
    """Whether `value` is a JSON object of `kind` values."""
    return isinstance(value, dict) and all(isinstance(v, kind) for v in value.values())


def _digest(stages: Mapping[str, str], stats: Mapping[str, Mapping[str, int]]) -> str:
    return hashlib.sha256(json.dumps([stages, stats], sort_keys=True).encode()).hexdigest()
