"""Every code block of README.md runs as written (issue 25, "a newcomer's first hour").

Each ```python and ```sh block runs in a fresh temporary folder, as a user would run it from
the repository root: the folder gets links to `examples/` and `.venv/` (the names the blocks
use), PATH starts with this venv's bin (`kiln`, `kiln-opt`, `python`, `iree-run-module`), and
KILN_CACHE_DIR is one folder shared by this module. Python blocks run with this venv's
Python in a subprocess; sh blocks run command by command (a line ending in `\\` continues
the command) with `bash -e`, so a failure names its README line. A block without a language
(the architecture diagram under "How it is built") is not code and is skipped; a block in any
other language fails, so a new one cannot go untested by accident.

The only adaptation is of file names: `FILE.mlir` and `w.pt` in the kiln-opt lines are the
reader's own files, which the test supplies (a lit case and its weights). `make` lines run in
the repository root, where the Makefile is. Lines that cannot run here are in EXCLUDED with
the reason; every other line must run and exit with status 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BIN = Path(sys.executable).parent
VENV = Path(sys.prefix)
TIMEOUT_S = 300

# Exact sh commands (comments included) that are not run, with the reason. `make demo` runs
# (35-45 s with this module's cold cache on a loaded 2-core VM, Vulkan rows included);
# `make gpu-check` and the apt-get line are in the prose, not in a block.
EXCLUDED = {
    "make test   # set up .venv, run the lit suite and pytest (what CI runs: .ci/run)":
        "make test is what runs this test (and the whole suite, for many minutes)",
}

# The reader's own files the README names: created in the block's folder before it runs.
FOLD_PARAMS_CASE = REPO / "lit" / "graph" / "kiln-fold-params.mlir"
FOLD_PARAMS_WEIGHTS = ("import torch; torch.save({'fc.weight': torch.ones(2, 3), "
                       "'fc.bias': torch.ones(2), 'scale': torch.ones(3)}, 'w.pt')")


@dataclass(frozen=True)
class Block:
    language: str
    line: int           # the README line of its first code line
    text: str


def readme_blocks() -> list[Block]:
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            if language is None:
                language, start, lines = line[3:].strip(), number + 1, []
            else:
                blocks.append(Block(language, start, "\n".join(lines) + "\n"))
                language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"README.md: the block opened at line {start - 1} is not closed"
    return blocks


def commands(block: Block) -> list[tuple[int, str]]:
    """(README line, command) for each command of an sh block; `\\` continues a line."""
    found, pending, first = [], "", 0
    for offset, line in enumerate(block.text.splitlines()):
        if not pending:
            first = block.line + offset
        if line.endswith("\\"):
            pending += line + "\n"
            continue
        command, pending = pending + line, ""
        if command.strip() and not command.lstrip().startswith("#"):
            found.append((first, command))
    assert not pending, f"README.md:{first}: a command ends in a line continuation"
    return found


BLOCKS = readme_blocks()
# Blocks with no language are diagrams and output, not code: nothing to run.
CODE = [b for b in BLOCKS if b.language]


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["KILN_CACHE_DIR"] = str(tmp_path_factory.mktemp("readme-cache"))
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def workdir(tmp_path: Path, readme_env: dict[str, str]) -> Path:
    """A fresh folder that looks like the repository root to the blocks."""
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    return tmp_path


def _run(argv: list[str], cwd: Path, env: dict[str, str], where: str) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, (f"{where} exited with status {done.returncode}\n"
                                  f"--- stdout:\n{done.stdout[-4000:]}\n"
                                  f"--- stderr:\n{done.stderr[-4000:]}")


def _venv_is_current() -> bool:
    """Whether `make` would use this venv as it is (and not install packages first)."""
    if VENV.resolve() != (REPO / ".venv").resolve() or shutil.which("make") is None:
        return False
    return subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO,
                          capture_output=True, check=False).returncode == 0


def test_readme_blocks_are_known():
    """Every block is python, sh or plain text; the exclusions name lines that exist."""
    unknown = [f"README.md:{b.line - 1}: ```{b.language}" for b in BLOCKS
               if b.language not in ("", "python", "sh")]
    assert not unknown, f"blocks this test cannot run: {unknown}"
    lines = {command for b in CODE if b.language == "sh" for _, command in commands(b)}
    stale = sorted(set(EXCLUDED) - lines)
    assert not stale, f"EXCLUDED names lines the README no longer has: {stale}"


@pytest.mark.parametrize("block", CODE, ids=[f"{b.language}-L{b.line}" for b in CODE])
def test_readme_block_runs(block: Block, workdir: Path, readme_env: dict[str, str]):
    if block.language == "python":
        script = workdir / "readme_snippet.py"
        script.write_text(block.text)
        _run([sys.executable, script.name], workdir, readme_env, f"README.md:{block.line}")
        return
    if "FILE.mlir" in block.text:
        shutil.copy(FOLD_PARAMS_CASE, workdir / "FILE.mlir")
        _run([sys.executable, "-c", FOLD_PARAMS_WEIGHTS], workdir, readme_env, "w.pt")
    for line, command in commands(block):
        if command in EXCLUDED:
            continue
        cwd = workdir
        if command.startswith("make "):
            if not _venv_is_current():
                pytest.skip(f"README.md:{line}: `make` would set up .venv first (this test "
                            f"runs in {VENV}, or .venv is older than pyproject.toml)")
            cwd = REPO
        _run(["bash", "-e", "-c", command], cwd, readme_env, f"README.md:{line}: {command}")
