"""Shared fixtures: a private compile cache and the example models, compiled once per session."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))

_PROBE = """
from kiln.errors import TargetError
from kiln.runtime.module import hal_device
try:
    hal_device({driver!r})
except TargetError as e:
    print(e)
"""


@functools.cache
def device_problem(driver: str) -> str | None:
    """Why `driver` has no working device here (None: it has one), asked in a subprocess.

    Opening Mesa's lavapipe Vulkan device leaves two of its threads spinning for the rest of
    the process (4 s of CPU every 2 s idle): asked in this process, it slowed every test
    after it. Tests that open a device here are `device_tests` and run last.
    """
    out = subprocess.run([sys.executable, "-c", _PROBE.format(driver=driver)],
                         capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0:
        return f"the device probe failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}"
    return out.stdout.strip() or None


def pytest_configure(config):
    config.addinivalue_line("markers", "device_tests: opens a GPU-API device in the test "
                            "process (lavapipe's threads then spin): run after the others")


def pytest_collection_modifyitems(config, items):
    """Tests that open a Vulkan/CUDA/ROCm device run last (see `device_problem`)."""
    items.sort(key=lambda item: item.get_closest_marker("device_tests") is not None)


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
