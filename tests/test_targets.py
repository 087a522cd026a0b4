"""Targets: every one compiles here (no GPU needed); runtime device selection and its errors."""

from __future__ import annotations

import pytest
import torch
from conftest import device_problem

import kiln
from kiln.runtime import cpu_features
from kiln.runtime.artifact import read
from kiln.runtime.targets import TARGETS, from_key, resolve, resolve_all

GPU_TARGETS = ["cuda", "rocm", "vulkan"]


def driver_works(name: str) -> bool:
    """Asked in a subprocess (conftest.device_problem): lavapipe's threads spin once opened."""
    return device_problem(TARGETS[name].driver) is None


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
    ("cpu", "cpu", "--iree-llvmcpu-target-cpu=host"),
    ("cpu:x86-64-v3", "cpu:x86-64-v3", "--iree-llvmcpu-target-cpu=x86-64-v3"),
    ("cuda", "cuda:sm_80", "--iree-cuda-target=sm_80"),
    ("cuda:sm_86", "cuda:sm_86", "--iree-cuda-target=sm_86"),
    ("rocm:gfx1100", "rocm:gfx1100", "--iree-rocm-target=gfx1100"),
    ("vulkan", "vulkan:vp_android_baseline_2022", "--iree-vulkan-target=vp_android_baseline_2022"),
    ("vulkan:ampere", "vulkan:ampere", "--iree-vulkan-target=ampere"),
])
def test_spec_resolves_to_key_and_flags(spec, key, flag):
    resolved = resolve(spec)
    assert resolved.key == key and flag in resolved.iree_flags()
    assert from_key(key) == resolved


@pytest.mark.parametrize("spec, message", [
    ("tpu", "unknown target 'tpu'; known targets: cpu, cuda, rocm, vulkan"),
    ("cpu:pentium4", "Kiln knows the cpu architectures x86-64, x86-64-v2, x86-64-v3"),
    ("vulkan:", "unknown target 'vulkan:'"),
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


@pytest.mark.device_tests
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


@pytest.mark.device_tests
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


@pytest.fixture(scope="module")
def cpu_variants(mlp, tmp_path_factory):
    """The MLP for this machine's CPU and for any CPU with AVX2, in one artifact."""
    model, inputs = mlp
    path = tmp_path_factory.mktemp("variants") / "variants.kiln"
    kiln.compile(model, inputs, target=["cpu:x86-64-v3", "cpu"]).save(path)
    return path


def _pretend_cpu(monkeypatch, features):
    """This process sees a CPU with only `features` (the load-time check's view)."""
    fake = cpu_features.CpuArch(cpu_features.this_machine().machine, frozenset(features))
    monkeypatch.setattr(cpu_features, "this_machine", lambda: fake)


needs_x86_64_v3 = pytest.mark.skipif(
    cpu_features.ARCHS["x86-64-v3"] - (cpu_features.this_machine().features or set()),
    reason="this machine cannot run x86-64-v3 code (AVX2)")


@needs_x86_64_v3
def test_artifact_records_the_cpu_features_its_code_needs(cpu_variants):
    manifest = read(cpu_variants).manifest
    needs = {t["key"]: t["cpu"] for t in manifest["targets"]}
    assert set(needs["cpu:x86-64-v3"]["features"]) == cpu_features.ARCHS["x86-64-v3"]
    assert "avx2" in needs["cpu:x86-64-v3"]["features"]
    assert set(needs["cpu"]["features"]) == cpu_features.this_machine().features


@needs_x86_64_v3
def test_load_picks_the_most_specific_cpu_variant_this_machine_runs(mlp, cpu_variants,
                                                                    monkeypatch):
    model, inputs = mlp
    loaded = kiln.load(cpu_variants)
    assert loaded.bind().target.key == "cpu"                # this machine's own code
    torch.testing.assert_close(loaded(*inputs), model(*inputs))
    # On an AVX2 machine without this one's other extensions: the portable variant.
    _pretend_cpu(monkeypatch, cpu_features.ARCHS["x86-64-v3"])
    portable = kiln.load(cpu_variants)
    assert portable.bind().target.key == "cpu:x86-64-v3"
    torch.testing.assert_close(portable(*inputs), model(*inputs))


@needs_x86_64_v3
def test_artifact_needing_features_this_cpu_lacks_is_a_target_error(cpu_variants,
                                                                   monkeypatch):
    """Instead of an illegal-instruction crash: the error names what is missing."""
    _pretend_cpu(monkeypatch, cpu_features.ARCHS["x86-64-v2"])    # no AVX at all
    with pytest.raises(kiln.TargetError, match=r"(?s)cpu:x86-64-v3: its code needs CPU "
                       r"features this machine lacks: abm, avx, avx2, bmi1, bmi2, f16c, fma"):
        kiln.load(cpu_variants)


@pytest.mark.device_tests
@pytest.mark.skipif(not driver_works("vulkan"), reason="no working Vulkan driver here")
def test_code_for_another_gpu_family_is_refused_not_run(mlp):
    """IREE runs vulkan:ampere code on any Vulkan device, to wrong results off NVIDIA."""
    model, inputs = mlp
    compiled = kiln.compile(model, inputs, target="vulkan:ampere")
    from kiln.runtime.module import device_description

    if "nvidia" in device_description("vulkan").lower():
        pytest.skip("this Vulkan device is an NVIDIA GPU: ampere code may run")
    with pytest.raises(kiln.TargetError, match=r"this code is for ampere GPUs \(NVIDIA\)"):
        compiled(*inputs)


def test_multi_target_artifact_holds_each_targets_own_code(mlp):
    """The CPU's code is what a CPU-only compile makes (its packed matmuls), a GPU target
    beside it gets its own (IREE's), and each pipeline is named in `ir`."""
    torch.manual_seed(3)
    model, x = torch.nn.Linear(64, 64).eval(), torch.randn(32, 64)
    alone = kiln.compile(model, (x,), target="cpu")
    both = kiln.compile(model, (x,), target=["cpu", "vulkan"])
    assert both.executables["cpu"] == alone.executables["cpu"]
    assert both.ir("codegen:cpu").startswith("// kiln-codegen-cpu{tile=")
    assert "linalg.mmt4d" in both.ir("codegen:cpu")
    vulkan = both.ir("codegen:vulkan:vp_android_baseline_2022")
    assert vulkan.startswith("// kiln-codegen-vulkan\n") and "linalg.mmt4d" not in vulkan
    assert "linalg.mmt4d" not in both.ir("linalg")        # kiln-lower's: target-independent
