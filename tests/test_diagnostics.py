"""Diagnostics: IR dumps after every pass, short error lines, stage lines on a terminal."""

from __future__ import annotations

import re

import pytest
import torch
from torch_mlir import ir

import kiln
from kiln.dialects.context import new_context
from kiln.passes.pipelines import expand, run_pipeline
from kiln.runtime.compile import _summarize
from kiln.runtime.targets import resolve_all

MODULE = """
func.func @main(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  %0 = torch.aten.tanh %x : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}
"""


def _module() -> ir.Module:
    with new_context():
        return ir.Module.parse(MODULE)


def test_dump_ir_writes_one_numbered_file_per_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_DUMP_IR", str(tmp_path))
    module = _module()
    run_pipeline(module, ["kiln-graph"], "kiln-graph")
    run_pipeline(module, ["kiln-lower"], "kiln-lower")
    run_pipeline(module, ["kiln-codegen-cpu{tile=8x32}"], "kiln-codegen cpu")
    names = sorted(p.name for p in tmp_path.iterdir())
    graph = [f"01-kiln-graph-{i:02d}-{e}.mlir" for i, e in enumerate(expand(["kiln-graph"]), 1)]
    assert names[:len(graph)] == graph
    assert "01-kiln-graph-01-kiln-fold-constant-branches.mlir" in names
    lower = expand(["kiln-lower"])
    assert f"02-kiln-lower-{len(lower):02d}-kiln-expand-dynamic-reshapes.mlir" in names
    codegen = expand(["kiln-codegen-cpu{tile=8x32}"])
    assert "kiln-pack-matmuls{tile=8x32}" in codegen     # the pipeline's option reaches it
    assert "03-kiln-codegen_cpu-03-kiln-pack-matmuls_tile_8x32_.mlir" in names
    assert names[-1] == f"03-kiln-codegen_cpu-{len(codegen):02d}-kiln-form-mmt4d-dispatches.mlir"
    linalg = lower.index("torch-backend-to-linalg-on-tensors-backend-pipeline") + 1
    assert (f"02-kiln-lower-{linalg:02d}-torch-backend-to-linalg-on-tensors-backend-pipeline.mlir"
            in names)
    with new_context():   # every dump is IR that parses again
        for path in tmp_path.iterdir():
            ir.Module.parse(path.read_text())


def test_no_dumps_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("KILN_DUMP_IR", raising=False)
    monkeypatch.chdir(tmp_path)
    run_pipeline(_module(), ["kiln-graph"], "kiln-graph")
    assert list(tmp_path.iterdir()) == []


def test_iree_diagnostics_are_cut_to_readable_lines():
    giant = "#hal.executable.target<" + "x" * 5000 + ">"
    stderr = f"m.mlir:3:5: error: cannot lower {giant}\nm.mlir:3:5: note: see {giant}\n"
    message = _summarize(stderr, resolve_all("cpu")[0])
    assert all(len(line) < 360 for line in message.splitlines())
    assert "m.mlir:3:5: error: cannot lower #hal.executable.target<xxx" in message
    assert re.search(r"\.\.\. \(\d+ more chars\)", message)


def test_stage_lines_show_when_asked(monkeypatch, capsys):
    monkeypatch.setenv("KILN_PROGRESS", "1")
    run_pipeline(_module(), ["kiln-graph"], "kiln-graph")
    assert re.fullmatch(r"kiln: kiln-graph \.\.\. done in \d+\.\d\d s\n", capsys.readouterr().err)


def test_no_stage_lines_off_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("KILN_PROGRESS", raising=False)   # pytest's stderr is not a TTY
    run_pipeline(_module(), ["kiln-graph"], "kiln-graph")
    assert capsys.readouterr().err == ""


class UsesBessel(torch.nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x) + 1   # the line the error must name


def test_compile_error_names_the_op_and_the_source_line():
    line = UsesBessel.forward.__code__.co_firstlineno + 1
    with pytest.raises(kiln.UnsupportedOpError,
                       match=rf"'aten.special_bessel_j0' \(at .*test_diagnostics.py:{line}:"):
        kiln.compile(UsesBessel(), (torch.randn(4),))
