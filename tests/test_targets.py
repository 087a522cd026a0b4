"""Targets: every one compiles here (no GPU needed); runtime device selection and its errors."""

from __future__ import annotations

import pytest
import torch

import kiln
from kiln.runtime.module import hal_device
from kiln.runtime.targets import TARGETS, from_key, resolve, resolve_all

GPU_TARGETS = ["cuda", "rocm", "vulkan"]


def driver_works(name: str) -> bool:
    try:
        hal_device(TARGETS[name].driver)
    except kiln.TargetError:
        return False
    return True


@pytest.fixture(scope="module")
def mlp(cases):
    return cases["mlp"]


@pytest.fixture(scope="module")
def everywhere(mlp, tmp_path_factory):
    """The MLP compiled for every target into one artifact, saved."""
    model, inputs = mlp
    compiled = kiln.compile(model, inputs, target=["cpu", "cuda", "rocm:gfx942", "vulkan"])
    path = tmp_path_factory.mktemp("targets") / "all.kiln"
    compiled.save(path)
    return compiled, path


@pytest.mark.parametrize("spec, key, flag", [
    ("cpu", "cpu", "--iree-hal-local-target-device-backends=llvm-cpu"),
    ("cuda", "cuda:sm_80", "--iree-cuda-target=sm_80"),
    ("cuda:sm_86", "cuda:sm_86", "--iree-cuda-target=sm_86"),
    ("rocm:gfx1100", "rocm:gfx1100", "--iree-rocm-target=gfx1100"),
    ("vulkan", "vulkan:ampere", "--iree-vulkan-target=ampere"),
])
def test_spec_resolves_to_key_and_flags(spec, key, flag):
    resolved = resolve(spec)
    assert resolved.key == key and flag in resolved.iree_flags()
    assert from_key(key) == resolved


@pytest.mark.parametrize("spec, message", [
    ("tpu", "unknown target 'tpu'; known targets: cpu, cuda, rocm, vulkan"),
    ("cpu:znver4", "target 'cpu' takes no architecture"),
    ([], "the target list is empty"),
    (["cuda", "cuda:sm_80"], "names the same target twice"),
])
def test_bad_target_specs_say_what_is_wrong(spec, message):
    with pytest.raises(kiln.TargetError, match=message):
        resolve_all(spec)


def test_every_target_compiles_into_one_artifact(everywhere):
    compiled, path = everywhere
    assert compiled.targets == ["llvm-cpu", "cuda", "rocm", "vulkan-spirv"]
    assert kiln.load(path).targets == compiled.targets


def test_no_device_picks_the_first_target_that_works(mlp, everywhere):
    model, inputs = mlp
    loaded = kiln.load(everywhere[1])
    working = [name for name in ("cpu", "cuda", "rocm", "vulkan") if driver_works(name)]
    assert loaded.device in (TARGETS[working[0]].driver, *TARGETS[working[0]].other_drivers)
    torch.testing.assert_close(loaded(*inputs), model(*inputs))


def test_device_names_the_target(everywhere):
    cpu_drivers = ("local-task", "local-sync")
    assert kiln.load(everywhere[1], device="cpu").device in cpu_drivers
    assert kiln.load(everywhere[1], device="llvm-cpu").device in cpu_drivers
    assert kiln.load(everywhere[1], device="local-sync").device == "local-sync"


def test_device_the_artifact_lacks_is_a_target_error(mlp, tmp_path):
    model, inputs = mlp
    kiln.compile(model, inputs).save(tmp_path / "cpu.kiln")
    with pytest.raises(kiln.TargetError, match="holds no code for device 'cuda'; it has cpu"):
        kiln.load(tmp_path / "cpu.kiln", device="cuda")


@pytest.mark.skipif(driver_works("cuda"), reason="this machine has CUDA")
def test_cuda_only_artifact_without_cuda_is_a_target_error(mlp, tmp_path):
    model, inputs = mlp
    compiled = kiln.compile(model, inputs, target="cuda")
    compiled.save(tmp_path / "cuda.kiln")              # compiling and saving need no GPU
    with pytest.raises(kiln.TargetError, match=r"(?s)no device here can run.*cuda:sm_80.*'cuda'"):
        kiln.load(tmp_path / "cuda.kiln")
    with pytest.raises(kiln.TargetError):
        compiled(*inputs)


def test_sm_90_is_missing_in_iree_3_13(mlp):
    """Why sm_80 is the CUDA default: when this starts failing, IREE gained sm_90."""
    model, inputs = mlp
    with pytest.raises(kiln.CompileError, match="cuda:sm_90"):
        kiln.compile(model, inputs, target="cuda:sm_90")


@pytest.mark.parametrize("name", GPU_TARGETS)
def test_gpu_runs_match_eager(name, mlp, everywhere):
    if not driver_works(name):
        pytest.skip(f"no working '{TARGETS[name].driver}' driver on this machine "
                    f"(the {name} code was compiled and loaded above)")
    model, inputs = mlp
    loaded = kiln.load(everywhere[1], device=name)
    torch_device = TARGETS[name].torch_device
    device_inputs = [x.to(torch_device) for x in inputs]
    out = loaded(*device_inputs)                     # DLPack in and out on CUDA/ROCm
    torch.testing.assert_close(out.cpu(), model(*inputs), rtol=1e-4, atol=1e-4)
