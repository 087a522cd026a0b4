"""CompiledModule: an IREE executable called like the PyTorch model it came from."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import iree.runtime as ireert
import numpy as np
import torch
from torch.utils import _pytree as pytree

from kiln.errors import InputError, TargetError
from kiln.runtime.targets import TARGETS, ResolvedTarget
from kiln.spec import Signature

# IREE objects still referenced at interpreter exit (modules cached by torch.compile, the
# shared VmInstance) make nanobind print a leak report; they are freed by the process exit.
ireert._binding.disable_leak_checker()

ENTRY = "main"
STAGES = ("import", "graph", "linalg")

_LOCK = threading.Lock()
_instance: ireert.VmInstance | None = None
_devices: dict[str, ireert.HalDevice] = {}


def vm_instance() -> ireert.VmInstance:
    """The process's one IREE VM instance."""
    global _instance
    with _LOCK:
        if _instance is None:
            _instance = ireert.VmInstance()
        return _instance


def hal_device(driver: str) -> ireert.HalDevice:
    """The first device of `driver`, created once per process."""
    with _LOCK:
        if driver not in _devices:
            try:
                _devices[driver] = ireert.get_device(driver)
            except (RuntimeError, ValueError) as e:
                raise TargetError(f"no working '{driver}' device here: {e}") from None
        return _devices[driver]


class CompiledModule:
    """A compiled program for one or more targets, runnable on the device picked at load.

    Call it with tensors shaped like the example inputs; it returns eager's output structure.
    """

    def __init__(self, signature: Signature, executables: Mapping[str, bytes],
                 ir: Mapping[str, str] | None = None, device: str | None = None) -> None:
        self.signature = signature
        self.executables = dict(executables)
        self._ir = dict(ir or {})
        self._target_key = self._pick_target(device)
        self._invoker = self._load(self.executables[self._target_key])

    @property
    def targets(self) -> list[str]:
        """The IREE target devices this module holds, e.g. ["llvm-cpu"]."""
        return [_resolved(key).target.backend for key in self.executables]

    @property
    def device(self) -> str:
        """Where calls run now: an IREE driver name such as "local-task" or "cuda"."""
        return _resolved(self._target_key).target.driver

    def ir(self, stage: str) -> str:
        """MLIR text after a layer: "import", "graph" or "linalg"."""
        if stage not in STAGES:
            raise KeyError(f"unknown stage '{stage}'; stages are {', '.join(STAGES)}")
        if stage not in self._ir:
            raise InputError(f"this module does not keep its '{stage}' IR (loaded from a file?)")
        return self._ir[stage]

    def __call__(self, *args: torch.Tensor):
        self.signature.check(args)
        results = self._invoker(*[_to_host_array(a) for a in args])
        if not isinstance(results, tuple):
            results = (results,)
        flat = [_to_tensor(r.to_host()) for r in results]
        return pytree.tree_unflatten(flat, self.signature.out_spec)

    def _pick_target(self, device: str | None) -> str:
        keys = list(self.executables)
        if device is None:
            return keys[0]
        for key in keys:
            target = _resolved(key).target
            if device in (target.name, target.driver, target.backend, key):
                return key
        raise TargetError(f"this module holds no code for device '{device}'; it has "
                          f"{', '.join(keys)}")

    def _load(self, vmfb: bytes) -> ireert.FunctionInvoker:
        device = hal_device(_resolved(self._target_key).target.driver)
        instance = vm_instance()
        module = ireert.VmModule.copy_buffer(instance, vmfb)
        context = ireert.VmContext(instance, modules=[ireert.create_hal_module(instance, device),
                                                      module])
        return ireert.FunctionInvoker(context, device, module.lookup_function(ENTRY))


def _resolved(key: str) -> ResolvedTarget:
    name, _, arch = key.partition(":")
    return ResolvedTarget(TARGETS[name], arch or None)


# DLPack both ways: unlike Tensor.numpy() and torch.from_numpy(), it runs no aten op.
def _to_host_array(tensor: torch.Tensor) -> np.ndarray:
    if tensor.requires_grad:
        tensor = tensor.detach()
    if not tensor.is_contiguous():
        tensor = tensor.contiguous()
    return np.from_dlpack(tensor)


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_dlpack(array)
