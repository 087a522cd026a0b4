"""Shared fixtures: a private compile cache and the example models, compiled once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point KILN_CACHE_DIR at a fresh folder so tests see cold and warm compiles for real."""
    path = tmp_path_factory.mktemp("kiln-cache")
    os.environ["KILN_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def cases():
    from models import example_cases

    return example_cases()


@pytest.fixture(scope="session")
def compiled(cases):
    """name -> CompiledModule for every example case, compiled once."""
    import kiln

    return {name: kiln.compile(model, inputs) for name, (model, inputs) in cases.items()}


@pytest.fixture
def iree_calls(monkeypatch):
    """How many times a Kiln executable has been called (a list that grows)."""
    from kiln.runtime.module import CompiledModule

    calls = []
    real = CompiledModule.__call__
    monkeypatch.setattr(CompiledModule, "__call__",
                        lambda self, *args: calls.append(1) or real(self, *args))
    return calls
