"""`.kiln` artifacts: save/load round trips, fresh processes, damage, IREE's own tools."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import kiln
from kiln.runtime import artifact, module as runtime_module, params as runtime_params

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def mlp(cases):
    model, inputs = cases["mlp"]
    return model, inputs, kiln.compile(model, inputs)


@pytest.fixture(scope="module")
def saved(mlp, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("artifact") / "mlp.kiln"
    mlp[2].save(path)
    return path


def test_load_gives_the_same_outputs(mlp, saved):
    model, inputs, compiled = mlp
    loaded = kiln.load(saved)
    assert loaded.targets == ["llvm-cpu"]
    assert loaded.device == compiled.device, "the tuned driver choice travels in the artifact"
    assert torch.equal(loaded(*inputs), compiled(*inputs))
    torch.testing.assert_close(loaded(*inputs), model(*inputs))


def test_output_structure_survives_the_file(cases, tmp_path):
    fn, inputs = cases["elementwise"]
    kiln.compile(fn, inputs).save(tmp_path / "e.kiln")
    out = kiln.load(tmp_path / "e.kiln")(*inputs)
    assert isinstance(out, dict) and sorted(out) == ["gated", "norm"]
    torch.testing.assert_close(out, fn(*inputs))


FRESH = textwrap.dedent("""
    import sys
    sys.modules["torch_mlir"] = None          # any import of torch-mlir now fails
    import numpy as np, torch, kiln
    x = torch.from_numpy(np.load(sys.argv[2]))
    out = kiln.load(sys.argv[1])(x)
    np.save(sys.argv[3], out.numpy())
    print("compiler loaded:", "kiln.compiler" in sys.modules)
""")


def test_fresh_process_without_torch_mlir_loads_and_runs(mlp, saved, tmp_path):
    model, inputs, compiled = mlp
    np.save(tmp_path / "x.npy", inputs[0].numpy())
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", FRESH, str(saved),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "compiler loaded: False" in done.stdout
    assert np.array_equal(np.load(tmp_path / "y.npy"), compiled(*inputs).numpy())


def test_the_subprocess_really_blocks_torch_mlir():
    """The check above can fail: with torch_mlir blocked, compiling is impossible."""
    code = "import sys; sys.modules['torch_mlir'] = None; import kiln; kiln.compile"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "torch_mlir" in done.stderr


def test_compiled_modules_keep_ir_loaded_ones_say_they_do_not(mlp, saved):
    assert "linalg.matmul" in mlp[2].ir("linalg")
    with pytest.raises(kiln.ArtifactError, match="artifacts keep no IR"):
        kiln.load(saved).ir("linalg")


def test_manifest_records_signature_targets_versions_and_checksums(saved, tmp_path):
    files = artifact.unpack(saved, tmp_path)
    manifest = json.loads(files["manifest"].read_text())
    assert manifest["signature"]["inputs"] == [{"shape": [4, 8], "dtype": "f32"}]
    assert [t["key"] for t in manifest["targets"]] == ["cpu"]
    assert {"kiln", "torch", "iree-base-compiler"} <= set(manifest["versions"])
    [section] = manifest["sections"]
    assert section["sha256"] == hashlib.sha256(files["cpu"].read_bytes()).hexdigest()


def test_save_is_atomic_and_overwrites(mlp, tmp_path):
    path = tmp_path / "m.kiln"
    path.write_bytes(b"old")
    mlp[2].save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.kiln"]
    assert kiln.load(path).targets == ["llvm-cpu"]
    with pytest.raises(kiln.ArtifactError, match="cannot write"):
        mlp[2].save(tmp_path / "missing-folder" / "m.kiln")


def _damaged(saved: Path, tmp_path: Path, edit) -> Path:
    data = bytearray(saved.read_bytes())
    edit(data)
    path = tmp_path / "bad.kiln"
    path.write_bytes(bytes(data))
    return path


def _flip(position):
    def edit(data):
        data[position % len(data)] ^= 0x40
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.__delitem__(slice(len(d) // 2, None)), "is truncated"),
    (lambda d: d.extend(b"junk"), "longer than its header says"),
    (_flip(3), "is not a Kiln artifact"),
    (_flip(8), "format version 65"),
    (_flip(100), "damaged: its SHA-256 checksum does not match"),      # the manifest
    (_flip(-100), "damaged: its SHA-256 checksum does not match"),     # the module
    (_flip(60), "damaged: its SHA-256 checksum does not match"),       # the checksum itself
    (lambda d: d.__setitem__(slice(0, 4), b"PK\x03\x04"), "is not a Kiln artifact"),
    (lambda d: d.__delitem__(slice(10, None)), "is not a Kiln artifact"),
], ids=["truncated", "extended", "magic", "version", "manifest", "module", "checksum",
        "zip", "stub"])
def test_damaged_file_gives_an_artifact_error(saved, tmp_path, edit, message):
    with pytest.raises(kiln.ArtifactError, match=message):
        kiln.load(_damaged(saved, tmp_path, edit))


def test_every_flipped_byte_is_caught(saved, tmp_path):
    size = saved.stat().st_size
    for position in range(0, size, max(1, size // 97)):
        with pytest.raises(kiln.ArtifactError):
            artifact.read(_damaged(saved, tmp_path, _flip(position)))


def test_missing_file_gives_an_artifact_error(tmp_path):
    with pytest.raises(kiln.ArtifactError, match="cannot read artifact"):
        kiln.load(tmp_path / "nothing.kiln")


def test_inputs_pass_without_a_copy_when_aligned(mlp, monkeypatch):
    """Aligned CPU tensors go in through DLPack; a misaligned view is copied."""
    model, inputs, compiled = mlp
    copies = []
    real = runtime_module._copy_to_device
    monkeypatch.setattr(runtime_module, "_copy_to_device",
                        lambda d, t: copies.append(t.shape) or real(d, t))
    compiled(*inputs)
    assert copies == []
    shifted = torch.cat([torch.zeros(1), inputs[0].reshape(-1)])[1:].reshape(4, 8)
    assert shifted.data_ptr() % runtime_module.ALIGNMENT
    torch.testing.assert_close(compiled(shifted), model(shifted))
    assert copies == [torch.Size([4, 8])]


def _iree_run(files: dict, inputs, tmp_path: Path) -> list[np.ndarray]:
    """Run the unpacked CPU module with iree-run-module; parse its printed results."""
    from kiln.tools.cli import iree_run_command

    specs = []
    for i, tensor in enumerate(inputs):
        np.save(tmp_path / f"input{i}.npy", tensor.numpy())
        specs.append(f"@{tmp_path / f'input{i}.npy'}")
    command = iree_run_command(files, "cpu", specs).split()
    command[0] = str(BIN / "iree-run-module")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = re.findall(r"^([0-9x]+)x(f32)=(.*)$", done.stdout, re.MULTILINE)
    assert results, done.stdout
    return [np.array(re.findall(r"-?[0-9.]+(?:e[-+]?[0-9]+)?", values), dtype=np.float32)
            .reshape([int(d) for d in shape.split("x")]) for shape, _, values in results]


def test_iree_run_module_runs_the_unpacked_artifact(mlp, saved, tmp_path):
    model, inputs, _ = mlp
    files = artifact.unpack(saved, tmp_path / "unpacked")
    [result] = _iree_run(files, inputs, tmp_path)
    np.testing.assert_allclose(result, model(*inputs).detach().numpy(), rtol=1e-4, atol=1e-5)


# ---- external weights (IREE parameter archive) -------------------------------------------

@pytest.fixture(scope="module")
def external(cases, tmp_path_factory):
    model, inputs = cases["mlp"]
    # The weights (2 and 2.5 KiB) go to the archive, the biases stay literals.
    os.environ["KILN_EXTERNAL_PARAMS_MIN_BYTES"] = "1024"
    try:
        compiled = kiln.compile(model, inputs)
    finally:
        del os.environ["KILN_EXTERNAL_PARAMS_MIN_BYTES"]
    path = tmp_path_factory.mktemp("external") / "mlp.kiln"
    compiled.save(path)
    return model, inputs, compiled, path


def test_marker_agrees_between_pass_and_runtime():
    from kiln.passes.external_params import MARKER

    assert MARKER == runtime_params.MARKER


def test_external_weights_leave_the_module(external):
    model, inputs, compiled, path = external
    # kiln-fold-params transposes the weights at compile time; the folded ones go out.
    assert sorted(compiled.params) == ["fc1.weight#0", "fc2.weight#0"]
    torch.testing.assert_close(compiled(*inputs), model(*inputs))
    files = artifact.read(path)
    assert set(files.sections) == {"module/cpu", "params"}
    loaded = kiln.load(path)
    torch.testing.assert_close(loaded(*inputs), model(*inputs))


def test_iree_run_module_reads_the_parameter_archive(external, tmp_path):
    model, inputs, _, path = external
    files = artifact.unpack(path, tmp_path / "unpacked")
    assert files["params"].name == "params.irpa"
    [result] = _iree_run(files, inputs, tmp_path)
    np.testing.assert_allclose(result, model(*inputs).detach().numpy(), rtol=1e-4, atol=1e-5)
    del files["params"]
    with pytest.raises(AssertionError):            # without the archive the module cannot run
        _iree_run(files, inputs, tmp_path)


def test_module_without_its_weights_fails_clearly(external):
    model, inputs, compiled, _ = external
    bare = kiln.CompiledModule(compiled.signature, compiled.executables)
    with pytest.raises(kiln.ArtifactError, match="IREE cannot start the module for cpu"):
        bare(*inputs)
