"""Whole-program cache: compiled modules keyed by a fingerprint of the captured program.

The IREE cache (`cache.py`) skips IREE but still needs the linalg text, so a warm compile
still pays for import and lowering (about 8 s for BERT-base). This cache is consulted right
after capture: the key is the frontend's fingerprint of the program (graph, input specs,
weight values) plus targets, options and versions, and an entry is a `.kiln` artifact
beside the IR text of each stage. A damaged entry is dropped and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from kiln.config import cache_dir, versions
from kiln.errors import ArtifactError
from kiln.runtime import artifact
from kiln.runtime.cache import write_atomically
from kiln.runtime.module import CompiledModule

log = logging.getLogger(__name__)


def program_key(fingerprint: str, targets: list, options: Mapping[str, object]) -> str:
    """The cache key of one compile: what was captured, for what, how, by which versions."""
    text = json.dumps([fingerprint, targets, options, versions()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "programs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.kiln", folder / f"{key}.ir.json"


def lookup(key: str, stats: dict | None = None) -> CompiledModule | None:
    """The cached module for `key`, with its IR, or None (a damaged entry is removed).

    `stats` receives the pass statistics recorded when the entry was compiled.
    """
    module_path, ir_path = _paths(key)
    if not module_path.exists():
        return None
    try:
        extra = json.loads(ir_path.read_text())
        module = artifact.module_from(artifact.read(module_path), ir=extra["stages"])
        if stats is not None:
            stats.update(extra["stats"])
    except (ArtifactError, ValueError, OSError, KeyError) as e:
        log.warning("dropping damaged program cache entry %s: %s", key[:12], e)
        module_path.unlink(missing_ok=True)
        ir_path.unlink(missing_ok=True)
        return None
    log.info("program cache hit %s", key[:12])
    return module


def store(key: str, module: CompiledModule, stages: Mapping[str, str],
          stats: Mapping[str, Mapping[str, int]]) -> None:
    """Keep `module`, its stage IR and pass statistics under `key`; each file appears
    whole or not at all."""
    module_path, ir_path = _paths(key)
    write_atomically(ir_path, json.dumps({"stages": dict(stages), "stats": dict(stats)}).encode())
    module.save(module_path)
