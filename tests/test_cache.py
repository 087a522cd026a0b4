"""The compile cache: a second process compiling the same model skips IREE."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import kiln
from kiln.runtime import cache

SCRIPT = textwrap.dedent("""
    import sys, torch
    import kiln.runtime.compile as rc
    calls = []
    real = rc.compile_str
    rc.compile_str = lambda *a, **k: calls.append(1) or real(*a, **k)
    import kiln
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh()).eval()
    x = torch.randn(3, 6)
    torch.testing.assert_close(kiln.compile(model, (x,))(x), model(x))
    print("iree-compiles", len(calls))
""")


def _run(cache_dir) -> str:
    env = {**os.environ, "KILN_CACHE_DIR": str(cache_dir), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_second_process_hits_the_cache(tmp_path):
    assert _run(tmp_path) == "iree-compiles 1"
    assert _run(tmp_path) == "iree-compiles 0"


def test_cache_key_changes_with_flags_and_ir():
    base = cache.cache_key("module {}", ["--a"])
    assert base == cache.cache_key("module {}", ["--a"])
    assert base != cache.cache_key("module {}", ["--b"])
    assert base != cache.cache_key("module { }", ["--a"])


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "m.vmfb"
    cache.write_atomically(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["m.vmfb"]
    assert kiln.__name__ == "kiln"
