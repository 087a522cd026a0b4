"""Real architectures through the TorchScript frontend, as their users deploy them.

Each model of `zoo.ZOO` is traced (and scripted, where `torch.jit.script` takes it), saved
with `torch.jit.save`, compiled from the archive path, compared with TorchScript's own output,
and checked to run in the IREE executable (PyTorch runs no op during the call).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.profiler import ProfilerActivity, profile
from zoo import SCRIPTABLE, ZOO

import kiln

pytest.importorskip("transformers")
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)

def _archive(model, inputs, mode: str, tmp_path) -> str:
    with torch.no_grad():
        if mode == "trace":
            program = torch.jit.trace(model, inputs, strict=False, check_trace=False)
        else:
            program = torch.jit.script(model)
    path = tmp_path / f"{mode}.pt"
    torch.jit.save(program, str(path))
    return str(path)


def _fresh(inputs: tuple) -> tuple:
    """New values of the same shapes: floats redrawn, integer ids left as they are."""
    torch.manual_seed(1)
    return tuple(torch.randn_like(x) if x.is_floating_point() else x for x in inputs)


CASES = [pytest.param(name, "trace", id=f"{name}-trace") for name in ZOO] + [
    pytest.param(name, "script", id=f"{name}-script") for name in SCRIPTABLE]


@pytest.mark.parametrize("name, mode", CASES)
def test_archive_compiles_and_matches_torchscript(name, mode, tmp_path):
    model, inputs = ZOO[name]()
    path = _archive(model, inputs, mode, tmp_path)
    loaded = torch.jit.load(path)
    compiled = kiln.compile(path, inputs)
    for args in (inputs, _fresh(inputs)):
        with torch.no_grad():
            expected = loaded(*args)
        torch.testing.assert_close(compiled(*args), expected, rtol=1e-4, atol=1e-4)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        compiled(*inputs)
    torch_ops = sorted({e.name for e in prof.events() if e.name.startswith("aten::")})
    assert torch_ops == [], f"PyTorch ran {torch_ops} during the compiled call"


DEPLOY = """
import sys
sys.modules["torch_mlir"] = None          # any import of torch-mlir now fails
import numpy as np, torch, kiln
x = torch.from_numpy(np.load(sys.argv[2]))
np.save(sys.argv[3], kiln.load(sys.argv[1])(x).numpy())
print("compiler loaded:", "kiln.compiler" in sys.modules)
"""


def test_traced_resnet18_archive_deploys_without_torch_mlir(tmp_path):
    """The TorchScript tutorial's flow: trace a ResNet-18, `torch.jit.save` it, compile the
    archive by path, save the `.kiln`, run it in a fresh process that cannot import
    torch-mlir; the result matches TorchScript's."""
    import subprocess
    import sys

    import numpy as np

    model, (x,) = ZOO["resnet18"]()
    path = _archive(model, (x,), "trace", tmp_path)
    kiln.compile(path, (x,)).save(tmp_path / "resnet18.kiln")
    fresh = _fresh((x,))[0]
    np.save(tmp_path / "x.npy", fresh.numpy())
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", DEPLOY,
                           str(tmp_path / "resnet18.kiln"), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "compiler loaded: False" in done.stdout
    with torch.no_grad():
        expected = torch.jit.load(path)(fresh)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "y.npy")), expected,
                               rtol=1e-4, atol=1e-4)


@torch.jit.script
def _scaled_steps(x: torch.Tensor, alpha: float, steps: int) -> torch.Tensor:
    for _ in range(steps):
        x = x * alpha + 1.0
    return x


def test_scripted_function_takes_its_scalar_arguments(tmp_path):
    """A compiled TorchScript function is called like the scripted one; its scalar arguments
    are specialized to the example values, checked on every call, and saved with it."""
    x = torch.randn(4)
    compiled = kiln.compile(_scaled_steps, (x, 0.5, 3))
    torch.testing.assert_close(compiled(x, 0.5, 3), _scaled_steps(x, 0.5, 3))
    with pytest.raises(kiln.InputError, match=r"input 1 was compiled for the value 0.5, got 0.7"):
        compiled(x, 0.7, 3)
    with pytest.raises(kiln.InputError, match="input 2 was compiled for the value 3"):
        compiled(x, 0.5, 3.0)
    compiled.save(tmp_path / "f.kiln")
    torch.testing.assert_close(kiln.load(tmp_path / "f.kiln")(x, 0.5, 3), _scaled_steps(x, 0.5, 3))
