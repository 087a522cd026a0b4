"""Installation-level promises: the Dynamo backend entry point, console scripts, layering."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.passes.pipelines import PIPELINES
from kiln.passes.registry import PASSES

REPO = Path(__file__).resolve().parent.parent
LIT = REPO / "lit"
ALLOWED = {"dialects": set(), "frontend": {"dialects"}, "passes": {"dialects"}, "runtime": set()}
LEAVES = {"errors", "spec", "shape_guards", "config"}   # import no other layer


def test_backend_is_found_without_importing_kiln():
    code = "import torch; print('kiln' in torch._dynamo.list_backends())"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr[-1000:]


def _kiln_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    return {m.split(".")[1] for m in modules if m.startswith("kiln.") and m.count(".")}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    for path in (REPO / layer).rglob("*.py"):
        extra = _kiln_imports(path) - ALLOWED[layer] - {layer} - LEAVES
        assert not extra, f"{path.relative_to(REPO)} reaches into {sorted(extra)}"


@pytest.mark.parametrize("info", PASSES.values(), ids=lambda i: i.name)
def test_pass_is_named_documented_and_lit_tested(info):
    assert re.fullmatch(r"kiln(-[a-z0-9]+)+", info.name), "passes are named kiln-verb-noun"
    assert inspect.getdoc(info.run), f"{info.name} has no docstring"
    assert list(LIT.rglob(f"{info.name}*.mlir")), f"no lit test for {info.name}"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_elements_resolve(name):
    for element in PIPELINES[name]:
        base = element.partition("{")[0]
        assert not base.startswith("kiln-") or base in PASSES or base in PIPELINES, element


def _module_imports(path: Path, package: str) -> set[str]:
    """The modules of `package` (e.g. "runtime") that `path` imports, anywhere in it."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == f"kiln.{package}":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith(f"kiln.{package}."):
                found.add(node.module.split(".")[2])
    return found


@pytest.mark.parametrize("package", ["runtime", "frontend", "passes", "dialects"])
def test_modules_of_a_layer_import_each_other_one_way(package):
    """No import cycle inside a layer (runtime/artifact.py and module.py had one, broken by a
    function-level import)."""
    graph = {p.stem: _module_imports(p, package) - {p.stem}
             for p in (REPO / package).glob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == goal or (name not in seen and reaches(name, goal, seen | {name})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"{package}/: {', '.join(cycles)} import themselves through others"
