"""CompiledModule: an IREE executable called like the PyTorch model it came from."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import iree.runtime as ireert
import numpy as np
import torch
from iree.runtime.array_interop import map_dtype_to_element_type
from torch.utils.dlpack import to_dlpack

from kiln.errors import (
    ArtifactError,
    IndexCheckError,
    InputError,
    RuntimeCheckError,
    TargetError,
)
from kiln.runtime import params as params_mod
from kiln.runtime.artifact import Artifact, read
from kiln.runtime.artifact import save as save_artifact
from kiln.runtime.cpu_features import CpuArch
from kiln.runtime.manifest import ENTRY
from kiln.runtime.targets import ResolvedTarget, from_key
from kiln.spec import Signature

log = logging.getLogger(__name__)

# IREE objects still referenced at interpreter exit (modules cached by torch.compile, the
# shared VmInstance) make nanobind print a leak report; they are freed by the process exit.
ireert._binding.disable_leak_checker()

STAGES = ("import", "graph", "linalg")   # the target-independent layers
CODEGEN_STAGE = "codegen:"              # + a target key: that target's own linalg
# A call slower than this keeps the thread-pool driver without trying the inline one: the
# inline driver only wins where per-call overhead dominates, and timing a long call on a busy
# machine once picked it for BERT-base (one core: 2x slower).
INLINE_DRIVER_MAX_SECONDS = 2e-3
ALIGNMENT = 64   # IREE imports host memory only at this alignment; else the tensor is copied

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
    """The first device of `driver`, created once per process; TargetError if none works."""
    with _LOCK:
        if driver not in _devices:
            if driver not in ireert.query_available_drivers():
                raise TargetError(f"this IREE runtime has no '{driver}' driver")
            try:
                _devices[driver] = ireert.get_device(driver)
            except (RuntimeError, ValueError) as e:
                reason = (str(e).strip().splitlines() or ["no reason given"])[0].rstrip(": ")
                raise TargetError(f"no working '{driver}' device here: {reason}") from None
        return _devices[driver]


def select_target(keys: Sequence[str], device: str | None,
                  drivers: Mapping[str, str] | None = None,
                  cpu_needs: Mapping[str, CpuArch] | None = None,
                  longest_loops: Mapping[str, int | None] | None = None
                  ) -> tuple[ResolvedTarget, ireert.HalDevice]:
    """The first of `keys` (restricted to `device` if given) whose driver works here and,
    for CPU code, whose instruction-set features (`cpu_needs`) this CPU has. Of several CPU
    variants, the one that needs the most features is tried first: the most specific code.

    `drivers` maps a target key to the driver chosen for it (see `CompiledModule.tune`);
    a `device=` that names a driver wins over that choice. `longest_loops`: each target's
    longest reduction, refused on a software driver that cuts loops shorter.
    """
    candidates = [from_key(key) for key in keys]
    if device is not None:
        candidates = [c for c in candidates if c.answers_to(device)]
        if not candidates:
            raise TargetError(f"this module holds no code for device '{device}'; it has "
                              f"{', '.join(keys)}: recompile with target='{device}' or pick "
                              "one of those")
    cpu_needs = cpu_needs or {}
    candidates = _most_specific_first(candidates, cpu_needs)
    failures = []
    for candidate in candidates:
        if (need := cpu_needs.get(candidate.key)) is not None and (missing := need.missing()):
            failures.append(f"{candidate.key}: its code needs CPU features this machine "
                            f"lacks: {', '.join(missing)}")
            continue
        driver = (device if device in candidate.drivers
                  else (drivers or {}).get(candidate.key, candidate.target.driver))
        try:
            found = hal_device(driver)
            _check_device_family(candidate, driver)
            if candidate.key in (longest_loops or {}):
                _check_loops(candidate, driver, longest_loops[candidate.key])
            return candidate, found
        except TargetError as e:
            failures.append(f"{candidate.key}: {e}")
    hint = (f"load it with another device (it holds {', '.join(keys)}) or device=None"
            if device is not None else "compile it for a target this machine has, e.g. 'cpu' "
            "(this machine's CPU) or 'cpu:x86-64-v3' (any CPU with AVX2)")
    raise TargetError("no device here can run this module (it holds "
                      f"{', '.join(keys)}):\n  " + "\n  ".join(failures) + f"\n{hint}")


def _check_device_family(target: ResolvedTarget, driver: str) -> None:
    """TargetError unless the device `driver` opens is of the family `target`'s code was
    compiled for (vulkan:ampere on an NVIDIA GPU); IREE runs such code on any device, and
    on another it computes wrong results."""
    family = target.target.arch_devices.get(target.arch or "")
    if family is None:
        return
    name = device_description(driver)
    if not re.search(family, name, re.IGNORECASE):
        raise TargetError(f"this code is for {target.arch} GPUs ({family.replace('|', ' or ')}),"
                          f" and the {driver} device here is '{name}'; compile for "
                          f"target='{target.target.name}' (IREE's portable profile) to run here")


def _check_loops(target: ResolvedTarget, driver: str, longest: int | None) -> None:
    """TargetError where `driver`'s device is a software one that ends shader loops before
    `longest` iterations (None: a reduction of unknown length)."""
    limit = target.target.software_loop_limit
    if limit is None or (longest is not None and longest <= limit):
        return
    name = device_description(driver)
    if "software" not in name:
        return
    length = "of a dynamic length" if longest is None else f"over {longest} elements"
    raise TargetError(f"the {driver} device here is '{name}', which ends every shader loop "
                      f"after {limit} iterations, and this program has a reduction {length}: "
                      "it would compute wrong results there; run it on the CPU (target "
                      "'cpu') or on a GPU")


def _most_specific_first(candidates: list[ResolvedTarget], cpu_needs: Mapping[str, CpuArch]
                         ) -> list[ResolvedTarget]:
    """`candidates` in their order, but each target's variants by how many CPU features
    they need, most first (non-CPU code counts none)."""
    first_of = {}
    for index, candidate in enumerate(candidates):
        first_of.setdefault(candidate.target.name, index)

    def needed(candidate: ResolvedTarget) -> int:
        need = cpu_needs.get(candidate.key)
        return len(need.features or ()) if need is not None else 0

    return sorted(candidates, key=lambda c: (first_of[c.target.name], -needed(c)))


@dataclass
class _Session:
    """A module bound to one device: the VM context and the entry function."""

    target: ResolvedTarget
    driver: str
    device: ireert.HalDevice
    context: ireert.VmContext
    function: ireert.VmFunction

    def call(self, args: Sequence[torch.Tensor], n_results: int,
             written: Sequence[int] | None) -> list[torch.Tensor]:
        """Run the entry function; `written`: the arguments it may write in place (None:
        any), which it gets as copies."""
        inputs = ireert.VmVariantList(len(args))
        for index, arg in enumerate(args):
            copy = written is None or index in written
            inputs.push_ref(self._to_buffer_view(arg, copy))
        results = ireert.VmVariantList(n_results)
        self.context.invoke(self.function, inputs, results)
        outputs = [self._to_tensor(results.get_as_object(i, ireert.HalBufferView))
                   for i in range(results.size)]
        return _unaliased(outputs, args)

    def _to_buffer_view(self, tensor: torch.Tensor, copy: bool) -> ireert.HalBufferView:
        """Zero-copy through DLPack where IREE can import the memory and the program only
        reads it; a copy otherwise.

        `torch.utils.dlpack.to_dlpack` rather than `Tensor.__dlpack__`: importing an input
        takes 1.2 µs with it against 4.5 µs (minima over 100 blocks, MLP input, Zen 3 VM).
        """
        target = self.target.target
        if tensor.requires_grad:
            tensor = tensor.detach()
        if not tensor.is_contiguous():
            tensor = tensor.contiguous()
        if (not copy and target.dlpack is not None
                and tensor.device.type == target.torch_device
                and tensor.data_ptr() % ALIGNMENT == 0):
            # CUDA/ROCm: a device tensor is imported in place (NOT TESTED here: no GPU in CI).
            return self.device.from_dlpack_capsule(to_dlpack(tensor))
        return _copy_to_device(self.device, tensor)

    def _to_tensor(self, view: ireert.HalBufferView) -> torch.Tensor:
        """The result as a torch tensor on the target's device, through DLPack when possible."""
        target = self.target.target
        if target.dlpack is not None:
            # CUDA/ROCm: yields a torch.cuda tensor on device 0 (NOT TESTED here: no GPU in CI).
            return torch.from_dlpack(self.device.create_dlpack_capsule(view, target.dlpack, 0))
        return _to_host(self.device, view)


def _unaliased(outputs: list[torch.Tensor], inputs: Sequence[torch.Tensor]
               ) -> list[torch.Tensor]:
    """`outputs`, each copied where it shares memory with an input or an earlier output.

    IREE returns an imported input's own buffer for a result equal to it (`x.clone()`
    compiles to nothing), and one buffer for two equal results: the caller must get tensors
    it can change without changing another.
    """
    taken = [_memory(t) for t in inputs]
    unaliased = []
    for tensor in outputs:
        span = _memory(tensor)
        if any(_overlap(span, other) for other in taken):
            tensor = tensor.clone()
            span = _memory(tensor)
        taken.append(span)
        unaliased.append(tensor)
    return unaliased


def _memory(tensor: torch.Tensor) -> tuple[str, int, int]:
    storage = tensor.untyped_storage()
    return str(tensor.device), storage.data_ptr(), storage.data_ptr() + storage.nbytes()


def _overlap(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def _to_host(device: ireert.HalDevice, view: ireert.HalBufferView) -> torch.Tensor:
    """A result as a CPU torch tensor: mapped where the host can see its memory (the CPU
    drivers), else copied by the device into a host-visible staging buffer it allocates.

    Not `DeviceArray.to_host()`: where the device says host memory is importable, that
    imports a plain numpy array, whatever the device's pointer alignment (lavapipe's Vulkan
    asks for 4096 bytes and refuses it). The staging buffer comes from the device's own
    allocator, so it meets whatever the device requires.
    """
    buffer = view.get_buffer()
    if (buffer.memory_type() & int(ireert.MemoryType.HOST_VISIBLE)
            and buffer.allowed_usage() & int(ireert.BufferUsage.MAPPING_SCOPED)):
        array = ireert.DeviceArray(device, view, implicit_host_transfer=True).to_host()
        return torch.from_dlpack(array if array.flags.writeable else array.copy())
    bf16 = view.element_type == ireert.HalElementType.BFLOAT_16   # numpy has no bfloat16:
    dtype = np.uint16 if bf16 else ireert.HalElementType.map_to_dtype(view.element_type)
    if buffer.byte_length() == 0:
        empty = torch.from_numpy(np.empty(view.shape, dtype))
        return empty.view(torch.bfloat16) if bf16 else empty
    try:
        staging = device.allocator.allocate_buffer(
            memory_type=int(ireert.MemoryType.HOST_LOCAL | ireert.MemoryType.DEVICE_VISIBLE),
            allowed_usage=int(ireert.BufferUsage.TRANSFER_TARGET
                              | ireert.BufferUsage.MAPPING_SCOPED),
            allocation_size=buffer.byte_length())
        semaphore = device.create_semaphore(0)
        device.queue_copy(buffer, staging, wait_semaphores=ireert.HalFence.create_at(semaphore, 0),
                          signal_semaphores=ireert.HalFence.create_at(semaphore, 1))
        ireert.HalFence.create_at(semaphore, 1).wait()
        array = staging.map().asarray(view.shape, dtype).copy()  # the mapping ends with it
    except (RuntimeError, ValueError) as e:
        reason = (str(e).strip().splitlines() or ["no reason given"])[0]
        raise TargetError(f"could not copy a result of {buffer.byte_length()} bytes from the "
                          f"device to the host: {reason}") from None
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if bf16 else tensor   # the same bits


def _copy_to_device(device: ireert.HalDevice, tensor: torch.Tensor) -> ireert.HalBufferView:
    tensor = tensor.cpu()
    element_type = ireert.HalElementType.BFLOAT_16 if tensor.dtype == torch.bfloat16 else None
    array = np.from_dlpack(tensor.view(torch.int16) if element_type else tensor)
    return device.allocator.allocate_buffer_copy(
        memory_type=ireert.MemoryType.DEVICE_LOCAL, allowed_usage=ireert.BufferUsage.DEFAULT,
        device=device, buffer=array,
        element_type=element_type or map_dtype_to_element_type(array.dtype))


class CompiledModule:
    """A compiled program for one or more targets, runnable on the device picked at first use.

    Call it with tensors shaped like the example inputs; it returns eager's output structure.
    `save(path)` writes a `.kiln` artifact that `kiln.load` reads back without the model.
    """

    def __init__(self, signature, executables: Mapping[str, bytes],
                 ir: Mapping[str, str] | None = None, device: str | None = None, *,
                 params: Mapping[str, torch.Tensor] | None = None,
                 parameter_archive: bytes | None = None, source: str | None = None,
                 drivers: Mapping[str, str] | None = None,
                 cpu_needs: Mapping[str, CpuArch] | None = None,
                 longest_loops: Mapping[str, int | None] | None = None) -> None:
        self.signature = signature
        self.executables = dict(executables)
        self.params = dict(params or {})       # external weights, as tensors (compiled)
        self._archive = parameter_archive      # external weights, as .irpa bytes (loaded)
        self._ir = dict(ir or {})
        self._requested_device = device
        self._source = source                  # the artifact it was loaded from, if any
        self._session: _Session | None = None
        self.drivers = dict(drivers or {})     # target key -> driver chosen by measurement
        # target key -> what its CPU code needs; compiled here, from the target (`cpu`:
        # this machine's features); loaded, from the artifact (absent: written by an older
        # Kiln, not checked).
        self.cpu_needs = dict(cpu_needs) if cpu_needs is not None else {
            key: need for key in executables if (need := from_key(key).cpu) is not None}
        # target key -> its longest reduction (None: dynamic), where a software driver of
        # its API limits loops (`Target.software_loop_limit`); absent: not recorded
        self.longest_loops = dict(longest_loops or {})
        self._weights: dict = {}               # host bytes the parameter provider serves
        for key in self.executables:
            from_key(key)                      # unknown keys fail now, not at first call
        dtypes = signature.output_dtypes
        if dtypes is not None and len(dtypes) != signature.num_results:
            raise ArtifactError(f"the signature gives {len(dtypes)} result dtypes for "
                                f"{signature.num_results} results: compile or save it again")

    @property
    def targets(self) -> list[str]:
        """The IREE target devices this module holds, e.g. ["llvm-cpu"]."""
        return [from_key(key).target.backend for key in self.executables]

    @property
    def device(self) -> str:
        """Where calls run: an IREE driver such as "local-task"; TargetError if none works."""
        return self.bind().driver

    @property
    def stages(self) -> list[str]:
        """The stages `ir` shows: STAGES, then "codegen:KEY" for each target."""
        return [*STAGES, *(CODEGEN_STAGE + key for key in self.executables)]

    def ir(self, stage: str) -> str:
        """MLIR text after a layer: "import", "graph" or "linalg" (target-independent), or
        "codegen:KEY", what a target's own pipeline made of the linalg for IREE (KEY: a
        key of `executables`, e.g. "codegen:cpu")."""
        if stage not in self.stages:
            raise KeyError(f"unknown stage '{stage}'; stages are {', '.join(self.stages)}")
        if self._source is not None:
            raise ArtifactError(f"this module was loaded from '{self._source}'; artifacts keep "
                                "no IR: run `kiln explain` on the model source to see it")
        if stage not in self._ir:
            raise InputError(f"this module does not keep its '{stage}' IR")
        return self._ir[stage]

    def parameter_archive(self) -> bytes | None:
        """The external weights as IREE parameter archive bytes, or None if there are none."""
        if self._archive is None and self.params:
            self._archive = params_mod.archive_bytes(self.params)
        return self._archive

    def save(self, path: str | os.PathLike) -> None:
        """Write this module to one self-contained `.kiln` file (atomically)."""
        save_artifact(self, path)

    def bind(self) -> _Session:
        """Pick the device and load the code on it (done once, on first call or `device`)."""
        if self._session is None:
            target, device = select_target(list(self.executables), self._requested_device,
                                           self.drivers, self.cpu_needs, self.longest_loops)
            self._session = self._load(target, device)
        return self._session

    def tune(self, example_inputs: Sequence[torch.Tensor], calls: int = 5) -> str:
        """Pick the fastest driver for the bound target by timing `example_inputs` on each.

        Only targets with several drivers (the CPU: local-task or local-sync) have a choice.
        The choice is kept in `drivers` and saved in artifacts. Returns the driver.
        """
        session = self.bind()
        choices = session.target.drivers
        if self._requested_device in choices or len(choices) < 2:
            return session.driver
        timings = {}
        for driver in choices:
            self.drivers[session.target.key] = driver
            self._session = None
            timings[driver] = _median_seconds(lambda: self(*example_inputs), calls)
            if timings[driver] > INLINE_DRIVER_MAX_SECONDS:
                break  # long calls need every core: the default (thread-pool) driver wins
        best = min(timings, key=timings.get)
        self.drivers[session.target.key] = best
        self._session = None
        log.info("driver for %s: %s (median s: %s)", session.target.key, best, timings)
        return best

    def __call__(self, *args: object, **kwargs: object):
        if kwargs:
            raise InputError(f"a compiled module takes its inputs by position, got keyword "
                             f"argument(s) {', '.join(kwargs)}: call it as cm(x, ...)")
        self.signature.check(args)
        session = self.bind()
        tensors = self.signature.tensors(args)
        try:
            flat = session.call(tensors, self.signature.num_results,
                                self.signature.written_inputs)
        except RuntimeError as e:
            if "FAILED_PRECONDITION" not in str(e):
                raise
            message = _check_message(e)
            kind = (IndexCheckError if message.startswith(IndexCheckError.MESSAGE_PREFIX)
                    else RuntimeCheckError)
            raise kind(f"a check in the compiled program failed: {message}") from None
        if len(flat) != self.signature.num_results:
            raise ArtifactError(f"the program returned {len(flat)} results where its signature "
                                f"has {self.signature.num_results}: the module's manifest does "
                                "not describe its code; compile or save it again")
        return self.signature.outputs(flat, tensors)

    def _load(self, target: ResolvedTarget, device: ireert.HalDevice) -> _Session:
        instance = vm_instance()
        try:
            module = ireert.VmModule.copy_buffer(instance, self.executables[target.key])
        except (RuntimeError, ValueError) as e:
            raise ArtifactError(f"IREE cannot load the module for {target.key}: {e} "
                                "(was it compiled by another IREE version?)") from None
        modules = [ireert.create_hal_module(instance, device), module]
        if self.params or self._archive is not None:
            archive = None if self.params else self._archive
            self._weights = params_mod.host_buffers(archive, self.params)  # read by `module`
            modules.insert(0, params_mod.provider_module(instance, self._weights))
        driver = self.drivers.get(target.key, target.target.driver)
        if self._requested_device in target.drivers:
            driver = self._requested_device
        log.info("loading %s on driver %s", target.key, driver)
        try:
            context = ireert.VmContext(instance, modules=modules)
        except (RuntimeError, ValueError) as e:
            raise ArtifactError(f"IREE cannot start the module for {target.key}: "
                                f"{str(e).strip().splitlines()[0]}") from None
        return _Session(target, driver, device, context, module.lookup_function(ENTRY))


def load(path: str | os.PathLike, device: str | None = None) -> CompiledModule:
    """Load a `.kiln` artifact and bind it to a device.

    Args:
        path: A file written by `CompiledModule.save`.
        device: "cpu", "cuda", "rocm", "vulkan" (or a driver/target name such as
            "local-task", "cuda:sm_80"); None picks the first target in the artifact whose
            driver works on this machine.

    Raises:
        ArtifactError: the file is missing, damaged, or from an incompatible version.
        TargetError: the artifact holds no code for `device`, or no driver here works.
    """
    module = module_from(read(path), device, source=str(path))
    module.bind()
    return module


def module_from(artifact: Artifact, device: str | None = None, *, source: str | None = None,
                ir: dict[str, str] | None = None) -> CompiledModule:
    """A CompiledModule over a verified artifact (not yet bound to a device)."""
    return CompiledModule(Signature.from_json(artifact.manifest["signature"]),
                          artifact.executables, ir, device=device,
                          parameter_archive=artifact.parameter_archive, source=source,
                          drivers={t["key"]: t["driver"] for t in artifact.manifest["targets"]},
                          cpu_needs={t["key"]: CpuArch.from_json(t["cpu"])
                                     for t in artifact.manifest["targets"] if t.get("cpu")},
                          longest_loops={t["key"]: t["longest_loop"]
                                         for t in artifact.manifest["targets"]
                                         if "longest_loop" in t})


def _check_message(error: RuntimeError) -> str:
    """The model's own message from IREE's 'Error invoking function: <vm>:0:
    FAILED_PRECONDITION; too large; ...'."""
    parts = [p.strip() for p in str(error).split(";")]
    return parts[1] if len(parts) > 1 and parts[1] else str(error).strip()


def _median_seconds(fn, calls: int) -> float:
    fn()  # warm
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def device_description(driver: str) -> str:
    """What runs `driver`'s calls on this machine, for labelling timings and `kiln run`.

    The name IREE lists for the driver's first device (the one `hal_device` opens), without
    its parenthesized details ("llvmpipe (LLVM 15.0.6, 256 bits) (...)" -> "llvmpipe"), and
    ", software, CPU" after a software implementation of the API (Mesa's llvmpipe/lavapipe,
    Google's SwiftShader): its figures are CPU figures, not GPU ones. "CPU" for the CPU
    drivers. TargetError where the driver has no device here.
    """
    if driver in ("local-task", "local-sync"):
        return "CPU"
    try:
        devices = ireert.get_driver(driver).query_available_devices()
    except (RuntimeError, ValueError, KeyError) as e:
        reason = (str(e).strip().splitlines() or ["no reason given"])[0].rstrip(": ")
        raise TargetError(f"no working '{driver}' device here: {reason}") from None
    if not devices:
        raise TargetError(f"IREE's '{driver}' driver lists no device here")
    name = " ".join(str(devices[0].get("name") or driver).split())
    short = name.split(" (", 1)[0].strip() or name
    if any(word in name.lower() for word in ("llvmpipe", "lavapipe", "swiftshader")):
        return f"{short}, software, CPU"
    return short
