"""The compile cache under damage and concurrency, and `kiln cache info | clear`, `kiln bench`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from kiln.runtime import cache
from kiln.tools.cli import main

LINALG = textwrap.dedent("""
    func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
      %0 = arith.addf %a, %a : tensor<4xf32>
      return %0 : tensor<4xf32>
    }
""")

# Compiles LINALG through Kiln's cache; prints how often IREE ran and the module's digest.
SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import kiln.runtime.compile as rc
    from kiln.runtime.targets import resolve_all
    calls = []
    real = rc.compile_str
    rc.compile_str = lambda *a, **k: calls.append(1) or real(*a, **k)
    vmfb = rc.compile_linalg(sys.stdin.read(), resolve_all("cpu")[0])
    print(len(calls), hashlib.sha256(vmfb).hexdigest())
""")


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    return tmp_path


def _start(cache_root) -> subprocess.Popen:
    env = {**os.environ, "KILN_CACHE_DIR": str(cache_root), "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdin.write(LINALG)
    process.stdin.close()
    return process


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    assert process.wait(timeout=300) == 0, process.stderr.read()[-2000:]
    calls, digest = process.stdout.read().split()[-2:]
    return int(calls), digest


def _entries(cache_root) -> list:
    return sorted((cache_root / "modules").iterdir())


def test_two_processes_at_once_leave_one_whole_entry(cache_root):
    first, second = _start(cache_root), _start(cache_root)
    (_, digest_a), (_, digest_b) = _finish(first), _finish(second)
    assert digest_a == digest_b
    (entry,) = _entries(cache_root)              # no temporary files left behind
    module = cache.lookup(entry.stem)
    assert module is not None and hashlib.sha256(module).hexdigest() == digest_a
    assert _finish(_start(cache_root)) == (0, digest_a)   # a later process hits it


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_entry_is_detected_and_rebuilt(cache_root, damage, caplog):
    calls, digest = _finish(_start(cache_root))
    assert calls == 1
    (entry,) = _entries(cache_root)
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\0" * len(data))
    assert cache.lookup(entry.stem) is None       # detected, and deleted
    assert not entry.exists()
    assert "damaged" in caplog.text
    assert _finish(_start(cache_root)) == (1, digest)     # compiled again, same module
    assert cache.lookup(entry.stem) is not None


def test_cache_info_and_clear(cache_root, capsys):
    cache.store(cache.cache_key("module {}", []), b"module bytes")
    (cache_root / "repro").mkdir()
    (cache_root / "repro" / f"kiln-graph-{'0' * 16}.mlir").write_text("module {}")
    (cache_root / "unrelated.txt").write_text("not Kiln's")
    assert main(["cache", "info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"location: {cache_root}"
    assert lines[1].startswith("modules: 1 files, 54 bytes")   # 42 bytes of header
    assert lines[-1] == "total: 2 files, 63 bytes"
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 2 files (63 bytes) from {cache_root}"
    assert main(["cache", "info"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "total: 0 files, 0 bytes"
    assert (cache_root / "unrelated.txt").exists()


def test_cache_clear_leaves_files_kiln_did_not_write(cache_root, capsys):
    """KILN_CACHE_DIR may be a folder of the user's: only Kiln's own names go."""
    key = cache.cache_key("module {}", [])
    cache.store(key, b"module bytes")
    mine = [cache_root / "modules" / "notes.txt", cache_root / "programs" / "model.kiln",
            cache_root / "repro" / "keep.mlir", cache_root / "modules" / f"{key[:-1]}.vmfb"]
    for path in mine:
        path.parent.mkdir(exist_ok=True)
        path.write_text("the user's own")
    assert main(["cache", "info"]) == 0
    assert "modules: 1 files, 54 bytes (IREE modules (.vmfb); 2 other files)" in \
        capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"removed 1 files (54 bytes) from {cache_root}", "left 4 files that Kiln did not write"]
    assert all(path.read_text() == "the user's own" for path in mine)
    assert not (cache_root / "modules" / f"{key}.vmfb").exists()


MODEL = textwrap.dedent("""
    import torch

    def tiny():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())
""")


def _bench_rows(tmp_path, capsys, *variants: str) -> list[list[str]]:
    """`kiln bench` of the tiny model under `variants`: its table rows, split into cells."""
    path = tmp_path / "tiny.py"
    path.write_text(MODEL)
    flags = [flag for variant in variants for flag in ("--variant", variant)]
    assert main(["bench", f"{path}:tiny", "--input", "2x8:f32", *flags,
                 "--seconds", "0.1", "--rounds", "5"]) == 0
    return [[cell.strip() for cell in line.split("|")]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny |")]


def test_bench_prints_a_table_for_the_chosen_variants(tmp_path, capsys):
    rows = _bench_rows(tmp_path, capsys, "eager", "kiln")
    assert [row[2] for row in rows] == ["eager", "kiln"]
    assert rows[0][5] == "1.00x"   # eager vs eager


def test_bench_without_eager_leaves_vs_eager_empty(tmp_path, capsys):
    rows = _bench_rows(tmp_path, capsys, "torchscript", "kiln")
    assert [row[2] for row in rows] == ["torchscript", "kiln"]
    assert [row[5] for row in rows] == ["", ""]          # no eager to compare with
    assert rows[0][6] == "1.00x"                         # TorchScript vs the best peer
    assert float(rows[1][8]) < 1e-5                      # Kiln's error against eager


def test_bench_names_an_unknown_variant(tmp_path, capsys):
    path = tmp_path / "tiny.py"
    path.write_text(MODEL)
    assert main(["bench", f"{path}:tiny", "--input", "2x8:f32", "--variant", "tvm"]) == 1
    assert "unknown --variant tvm; known: eager, torchscript" in capsys.readouterr().err
