"""Device labels off the CPU: `kiln run --device` and `kiln bench --target` name the device
that ran the code ("vulkan: llvmpipe, software, CPU" on Mesa's software Vulkan driver), and
`device_description` says when a device is software. Device tests skip where the driver has
no working device (CI machines without a GPU usually have lavapipe for Vulkan)."""

from __future__ import annotations

import textwrap

import pytest
from conftest import device_problem

import kiln
from kiln.runtime import module as runtime_module
from kiln.runtime.module import device_description
from kiln.runtime.targets import TARGETS
from kiln.tools.cli import main

MODEL = textwrap.dedent("""
    import torch

    def tiny():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())
""")


def _problem(name: str) -> str | None:
    """Why target `name`'s driver has no working device here, or None if it has one."""
    return device_problem(TARGETS[name].driver)


def _needs(name: str):
    """Skip without a `name` device; run last (it opens the device in this process)."""
    problem = _problem(name)
    skip = pytest.mark.skipif(problem is not None,
                              reason=f"no working {name} device on this machine: {problem}")
    return lambda test: pytest.mark.device_tests(skip(test))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "tiny.py"
    path.write_text(MODEL)
    return path


class _Driver:
    def __init__(self, names):
        self.names = names

    def query_available_devices(self):
        return [{"device_id": i, "path": "", "name": n} for i, n in enumerate(self.names)]


@pytest.mark.parametrize("names, expected", [
    (["llvmpipe (LLVM 15.0.6, 256 bits) (llvmpipe Mesa 22.3.6 (LLVM 15.0.6))"],
     "llvmpipe, software, CPU"),
    (["SwiftShader Device (Subzero) (0x0000C0DE)"], "SwiftShader Device, software, CPU"),
    (["Intel(R) Graphics (lavapipe)"], "Intel(R) Graphics, software, CPU"),
    (["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"], "NVIDIA H100 80GB HBM3"),
    (["AMD Radeon RX 7900 XTX (RADV NAVI31)"], "AMD Radeon RX 7900 XTX"),
])
def test_description_is_the_first_device_and_says_software(monkeypatch, names, expected):
    monkeypatch.setattr(runtime_module.ireert, "get_driver", lambda driver: _Driver(names))
    assert device_description("vulkan") == expected


def test_description_of_the_cpu_drivers_and_of_none(monkeypatch):
    assert device_description("local-task") == device_description("local-sync") == "CPU"
    monkeypatch.setattr(runtime_module.ireert, "get_driver", lambda driver: _Driver([]))
    with pytest.raises(kiln.TargetError, match="lists no device"):
        device_description("vulkan")


@pytest.mark.device_tests
@pytest.mark.parametrize("name", ["vulkan", "cuda"])
def test_run_prints_the_device_it_ran_on(name, model_file, tmp_path, capsys):
    if (problem := _problem(name)) is not None:
        pytest.skip(f"no working {name} device on this machine: {problem}")
    artifact = tmp_path / "tiny.kiln"
    assert main(["compile", f"{model_file}:tiny", "-o", str(artifact), "--input", "2x8:f32",
                 "--target", name]) == 0
    capsys.readouterr()
    assert main(["run", str(artifact), "--device", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    driver = TARGETS[name].driver
    assert lines[0] == f"device: {driver} ({device_description(driver)})"
    assert lines[1].startswith("output: 2x4 f32")


@_needs("vulkan")
def test_vulkan_on_lavapipe_says_software(capsys):
    if "pipe" not in device_description("vulkan"):
        pytest.skip(f"the Vulkan device here is {device_description('vulkan')}, not Mesa's")
    assert device_description("vulkan") == "llvmpipe, software, CPU"


def _bench_rows(model_file, capsys, *flags: str) -> list[list[str]]:
    assert main(["bench", f"{model_file}:tiny", "--input", "2x8:f32", *flags,
                 "--seconds", "0.1", "--rounds", "3"]) == 0
    return [[cell.strip() for cell in line.split("|")]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny |")]


@_needs("vulkan")
def test_bench_times_vulkan_beside_the_cpu_and_labels_the_row(model_file, capsys):
    rows = _bench_rows(model_file, capsys, "--variant", "eager", "--variant", "kiln",
                       "--target", "cpu", "--target", "vulkan")
    label = f"kiln-vulkan (vulkan: {device_description('vulkan')})"
    assert [row[2] for row in rows] == ["eager", "kiln", label]
    assert float(rows[2][4]) > 0 and float(rows[2][8]) < 1e-5     # timed, and right
    software = device_description("vulkan").endswith("CPU")
    assert (rows[2][7] != "") == software     # % of this CPU's peak only where it ran on it


_MISSING = next((name for name in ("rocm", "cuda") if _problem(name) is not None), None)


@pytest.mark.skipif(_MISSING is None, reason="this machine has a ROCm and a CUDA device")
def test_bench_reports_a_target_without_a_device_as_a_failed_row(model_file, capsys):
    rows = _bench_rows(model_file, capsys, "--variant", "kiln", "--target", _MISSING)
    assert rows[0][2] == f"kiln-{_MISSING}"
    assert "failed: TargetError: no device here can run this module" in rows[0][-2]


def test_bench_target_needs_the_kiln_variant_and_a_known_target(model_file, capsys):
    assert main(["bench", f"{model_file}:tiny", "--input", "2x8:f32", "--variant", "eager",
                 "--target", "vulkan"]) == 1
    assert "--target picks the targets Kiln is timed on: add --variant kiln" in \
        capsys.readouterr().err
    assert main(["bench", f"{model_file}:tiny", "--input", "2x8:f32", "--target", "tpu"]) == 1
    assert "unknown target 'tpu'" in capsys.readouterr().err
