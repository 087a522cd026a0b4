"""`kiln compile | run | unpack`, driven through `main([...])`: outputs and error texts."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
import torch

from kiln.tools.cli import main
from kiln.tools.models import load_model

MODEL = textwrap.dedent("""
    import torch

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())

    def pair(x, y):
        return {"sum": x + y, "prod": (x * y,)}
""")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.py"
    path.write_text(MODEL)
    return path


@pytest.fixture(scope="module")
def artifact(model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-out") / "tiny.kiln"
    assert main(["compile", f"{model_file}:make", "-o", str(out), "--input", "2x8:f32"]) == 0
    return out


def test_compile_writes_an_artifact_and_says_so(model_file, tmp_path, capsys):
    out = tmp_path / "two.kiln"
    code = main(["compile", f"{model_file}:make", "-o", str(out), "--input", "2x8:f32",
                 "--target", "cpu", "--target", "cuda:sm_86"])
    assert code == 0 and out.exists()
    stdout = capsys.readouterr().out
    assert f"wrote {out}" in stdout and "targets cpu, cuda:sm_86; inputs 2x8:f32" in stdout


def test_run_prints_device_and_outputs(artifact, capsys):
    assert main(["run", str(artifact)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] in ("device: local-task", "device: local-sync")
    assert re.fullmatch(r"output: 2x4 f32 min \S+ max \S+ \[(\S+ ){5}\S+ \.\.\.\]", lines[1])


def test_run_with_an_npy_input_matches_eager(artifact, model_file, tmp_path, capsys):
    x = torch.randn(2, 8)
    np.save(tmp_path / "x.npy", x.numpy())
    assert main(["run", str(artifact), "--input", f"@{tmp_path / 'x.npy'}"]) == 0
    printed = capsys.readouterr().out.splitlines()[1].split("[")[1].rstrip(" .]").split()
    eager = load_model(f"{model_file}:make")(x).detach().reshape(-1)[:6]
    np.testing.assert_allclose([float(v) for v in printed], eager.numpy(), rtol=1e-5, atol=1e-6)


def test_run_names_tree_paths(model_file, tmp_path, capsys):
    out = tmp_path / "pair.kiln"
    assert main(["compile", f"{model_file}:pair", "-o", str(out),
                 "--input", "3:f32", "--input", "3:f32"]) == 0
    assert main(["run", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "['sum']: 3 f32" in stdout and "['prod'][0]: 3 f32" in stdout


def test_unpack_writes_files_and_the_iree_command(artifact, tmp_path, capsys):
    assert main(["unpack", str(artifact), "-o", str(tmp_path / "u")]) == 0
    stdout = capsys.readouterr().out
    assert (tmp_path / "u" / "cpu.vmfb").exists() and (tmp_path / "u" / "manifest.json").exists()
    assert (f"iree-run-module --device=local-task --module={tmp_path / 'u' / 'cpu.vmfb'} "
            "--function=main --input=@input0.npy") in stdout


@pytest.mark.parametrize("argv, message", [
    (["run", "{bad}"], "is damaged: its SHA-256 checksum does not match"),
    (["run", "{artifact}", "--device", "cuda"], "holds no code for device 'cuda'"),
    (["run", "{artifact}", "--input", "3x3:f32"], "input 0 must have shape 2x8:f32"),
    (["run", "{artifact}", "--input", "@{missing}"], "cannot read --input"),
    (["compile", "{model}", "-o", "{out}", "--input", "2x8:f32", "--target", "tpu"],
     "unknown target 'tpu'"),
    (["compile", "{model}", "-o", "{out}", "--input", "2x8:q4"], "unknown dtype 'q4'"),
    (["unpack", "{missing}", "-o", "{out}"], "cannot read artifact"),
])
def test_errors_are_one_line_with_advice(argv, message, artifact, model_file, tmp_path, capsys):
    bad = tmp_path / "bad.kiln"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    names = {"bad": bad, "artifact": artifact, "model": f"{model_file}:make",
             "out": tmp_path / "o.kiln", "missing": tmp_path / "missing"}
    assert main([a.format(**names) for a in argv]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("kiln: error: ") and message in stderr


def test_explain_each_pass_prints_the_ir_after_every_pass_in_order(model_file, capsys):
    from kiln.passes.pipelines import expand

    assert main(["explain", f"{model_file}:make", "--input", "2x8:f32", "--each-pass"]) == 0
    headers = re.findall(r"^// ----- IR after (\S+) -----$", capsys.readouterr().out, re.MULTILINE)
    graph = [h.split("-", 4)[4] for h in headers if h.startswith("02-kiln-graph-")]
    assert headers[0] == "01-import" and "05-linalg" in headers
    # Then the target's own pipeline, its options in the names, and its result.
    assert any(re.fullmatch(r"06-kiln-codegen_cpu-\d\d-kiln-pack-matmuls_tile_\d+x\d+_", h)
               for h in headers)
    assert headers[-1] == "07-codegen-cpu"
    assert graph == expand(["kiln-import-cleanup", "kiln-graph"])


def test_explain_names_each_targets_pipeline(model_file, capsys):
    argv = ["explain", f"{model_file}:make", "--input", "2x8:f32", "--target", "cpu",
            "--target", "vulkan"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    headers = re.findall(r"^// ----- IR after '(\S+)' -----$", out, re.MULTILINE)
    assert headers == ["import", "graph", "linalg", "codegen:cpu",
                       "codegen:vulkan:vp_android_baseline_2022"]
    assert re.search(r"'codegen:cpu' -----\n// kiln-codegen-cpu\{tile=\d+x\d+\}\n", out)
    assert "'codegen:vulkan:vp_android_baseline_2022' -----\n// kiln-codegen-vulkan\n" in out
    assert main([*argv, "--stage", "codegen:cuda"]) == 1
    assert "unknown stage 'codegen:cuda'" in capsys.readouterr().err
