"""Targets and drivers: one table of frozen records, parsed by lookup, never by if-chain.

Every flag set below compiles with IREE 3.13 on a machine without a GPU (tests/test_targets.py),
so CI checks the GPU targets too. CUDA defaults to sm_80: IREE 3.13 has no sm_90/sm_90a target
("missing GPU target"), and sm_80 code runs on Hopper (H100/H200) as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kiln.errors import TargetError
from kiln.runtime.cpu_features import ARCHS, CpuArch, for_arch

# DLPack device type codes (dlpack.h): what a capsule says about where its memory lives.
DLPACK_CPU, DLPACK_CUDA, DLPACK_ROCM = 1, 2, 10


# IREE computes float64 as float32 unless told not to: a program computes in eager's dtypes
# or (where a target cannot) fails to compile, and falls back.
FIDELITY_FLAGS = ("--iree-input-demote-f64-to-f32=false",)


@dataclass(frozen=True)
class Target:
    """A kind of device Kiln compiles for, and how IREE is told about it."""

    name: str                       # what users write: "cpu", "cuda", "rocm", "vulkan"
    device: str                     # --iree-hal-target-device
    backend: str                    # the IREE code generator, what `cm.targets` lists
    driver: str                     # iree.runtime driver that runs it
    codegen: str                    # Kiln's pipeline from kiln-lower's linalg to this target's
    arch_flag: str | None = None    # template for "name:arch"
    default_arch: str | None = None
    unnamed_arch: str | None = None  # what arch_flag gets when the spec names none
    archs: tuple[str, ...] | None = None  # the architectures Kiln knows (None: any)
    runs_on_host_cpu: bool = False  # its code needs the host CPU's instruction set
    # arch -> a regular expression the device's name must match for that arch's code to run
    # (code for a GPU family assumes its subgroup size and features)
    arch_devices: Mapping[str, str] = field(default_factory=dict)
    # The most iterations a shader loop gets on a software driver of this API (None: no
    # limit known); programs record their longest loop for the runtime to compare.
    software_loop_limit: int | None = None
    flags: tuple[str, ...] = ()
    static_only: tuple[str, ...] = ()  # flags of `flags` left out for dynamic-shaped programs
    dlpack: int | None = None       # DLPack device code when IREE imports/exports such memory
    torch_device: str = "cpu"       # where torch tensors must live to be passed without a copy
    other_drivers: tuple[str, ...] = ()  # drivers that also run this code, picked by measurement


_ALL = (
    # `cpu` is the compiling machine's CPU, every extension it has; `cpu:x86-64-v3` (or
    # another name of cpu_features.ARCHS) is code for a class of machines. Either records
    # the features it needs, checked when loaded (`CpuArch.missing`).
    Target("cpu", "local", "llvm-cpu", "local-task", "kiln-codegen-cpu",
           "--iree-llvmcpu-target-cpu={}", unnamed_arch="host", archs=tuple(ARCHS),
           runs_on_host_cpu=True,
           flags=("--iree-hal-local-target-device-backends=llvm-cpu",
                  # Packed (mmt4d) matmuls with IREE's microkernels: BERT-base 429 -> 193 ms
                  # on the 2-core Zen 3 dev VM. Data tiling from dispatch creation rather than
                  # global optimization (--iree-opt-data-tiling): ResNet-50 84 -> 77 ms, GPT-2
                  # 232 -> 216 ms, BERT-base equal (benchmarks/flags.md).
                  "--iree-dispatch-creation-data-tiling",
                  # Microkernels for the operand packing only. Not `mmt4d`: it has no 6x16
                  # tile and would run kiln-pack-matmuls' packed matmuls through generic C
                  # (40x slower); IREE's own 8x8x1 data-tiled ops are generated code, as
                  # fast as the microkernel on ResNet-50 (A/B 0.975, 0.987). Not `unpack`:
                  # the batch matmuls of Winograd and attention, whose unpack is fused in,
                  # ~30% faster with generated code (benchmarks/flags.md).
                  "--iree-llvmcpu-enable-ukernels=pack",
                  # Convolutions as im2col + (data-tiled) matmul: ResNet-50 6.9x faster than
                  # IREE's direct convolution (benchmarks/flags.md).
                  "--iree-global-opt-use-im2col-for-convs",
                  # Smaller workgroup tiles for the non-matmul dispatches (IREE's default 64):
                  # the im2col dispatches take 25-35% less time next to the matmuls on
                  # ResNet-50, 0-9% off the whole model; BERT-base and GPT-2 within noise
                  # (benchmarks/flags.md).
                  "--iree-llvmcpu-distribution-size=16",
                  # Winograd F(6,3) for the 3x3 convolutions kiln-mark-winograd-convs marks
                  # (passes/winograd.py), their filter transforms hoisted out of the call:
                  # IREE hoists constant expressions only up to 1 MiB of growth by default,
                  # and a transformed filter is 7x its weight (4 MiB at 128x128 channels).
                  ("--iree-preprocessing-pass-pipeline=builtin.module(util.func("
                   "iree-linalg-ext-convert-conv2d-to-winograd))"),
                  "--iree-opt-const-expr-max-size-increase-threshold=67108864"),
           # IREE 3.13's data tiling computes wrong results on dynamic shapes: an encoder block
           # compiled for [?, ?, 32] was off by 0.1-0.23 at 3x17, 3x33, 1x100 and 2x64
           # (right at others), with every other flag at its default too; without it, right
           # at all of them (tests/test_dynamic.py).
           static_only=("--iree-dispatch-creation-data-tiling",),
           # local-sync runs dispatches inline on the calling thread: ~6 us per call instead of
           # ~25 us for local-task's thread pool, which only pays off for larger models.
           dlpack=DLPACK_CPU, other_drivers=("local-sync",)),
    # sm_90 is missing in IREE 3.13 ("missing GPU target"); sm_80 code runs on Hopper.
    Target("cuda", "cuda", "cuda", "cuda", "kiln-codegen-cuda", "--iree-cuda-target={}", "sm_80",
           dlpack=DLPACK_CUDA, torch_device="cuda"),
    Target("rocm", "hip", "rocm", "hip", "kiln-codegen-rocm", "--iree-rocm-target={}", "gfx942",
           dlpack=DLPACK_ROCM, torch_device="cuda"),
    # Vulkan memory has no DLPack path in IREE's Python runtime: tensors are copied. The
    # default is IREE's portable profile: code for a GPU family ("ampere", "rdna3") assumes
    # its subgroup size and features, and ran to wrong results (0.5 off on an MLP) on Mesa's
    # lavapipe, which IREE's runtime does not refuse; `select_target` does (`arch_devices`).
    Target("vulkan", "vulkan", "vulkan-spirv", "vulkan", "kiln-codegen-vulkan",
           "--iree-vulkan-target={}", "vp_android_baseline_2022",
           arch_devices={**dict.fromkeys(("ampere", "turing", "pascal"), "NVIDIA"),
                         **dict.fromkeys(("rdna1", "rdna2", "rdna3", "rdna4", "cdna3"),
                                         "AMD|Radeon"),
                         "valhall": "Mali", "adreno": "Adreno"},
           # Mesa's lavapipe ends every shader loop after 65535 iterations
           # (LP_MAX_TGSI_LOOP_ITERATIONS): a sum over 100000 ones gave 65535.
           software_loop_limit=65535),
)
TARGETS: dict[str, Target] = {t.name: t for t in _ALL}
assert len(TARGETS) == len(_ALL), "two targets share a name"
assert len({t.driver for t in _ALL}) == len(_ALL), "two targets share a driver"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target with its architecture chosen: what one compile is for."""

    target: Target
    arch: str | None

    @property
    def key(self) -> str:
        """`name` or `name:arch`: how artifacts and `CompiledModule.executables` name it."""
        return f"{self.target.name}:{self.arch}" if self.arch else self.target.name

    def iree_flags(self, dynamic: bool = False) -> list[str]:
        """The iree-compile flags for this target, for a program with `dynamic` shapes or not."""
        flags = [f"--iree-hal-target-device={self.target.device}", *FIDELITY_FLAGS,
                 *(f for f in self.target.flags if not (dynamic and f in self.target.static_only))]
        if self.target.arch_flag and (arch := self.arch or self.target.unnamed_arch):
            flags.append(self.target.arch_flag.format(arch))
        return flags

    @property
    def cpu(self) -> CpuArch | None:
        """What this target's code needs of the CPU that runs it (None: not CPU code).
        For `cpu` (the compiling machine's own), this machine's features."""
        return for_arch(self.arch) if self.target.runs_on_host_cpu else None

    def answers_to(self, device: str) -> bool:
        """Whether a user's `device=` names this target (by name, key, driver or backend)."""
        t = self.target
        return device in (t.name, t.driver, t.backend, self.key, *t.other_drivers)

    @property
    def drivers(self) -> tuple[str, ...]:
        """Every iree.runtime driver that can run this target's code, the default first."""
        return (self.target.driver, *self.target.other_drivers)


def resolve(spec: str) -> ResolvedTarget:
    """'cpu', 'cuda', 'cuda:sm_86', 'rocm:gfx942', 'vulkan' -> a ResolvedTarget."""
    name, colon, arch = spec.partition(":")
    if (target := TARGETS.get(name)) is None or (colon and not arch):
        raise TargetError(f"unknown target '{spec}'; known targets: {', '.join(TARGETS)} "
                          "(optionally with ':arch', e.g. 'cuda:sm_80')")
    if arch and target.arch_flag is None:
        raise TargetError(f"target '{name}' takes no architecture, got '{spec}'")
    if arch and target.archs is not None and arch not in target.archs:
        raise TargetError(f"target '{spec}': Kiln knows the {name} architectures "
                          f"{', '.join(target.archs)}, and the instruction sets each needs")
    return ResolvedTarget(target, arch or target.default_arch)


def resolve_all(specs: str | Sequence[str]) -> list[ResolvedTarget]:
    """One target spec or a list of them -> distinct ResolvedTargets, in the order given."""
    names = [specs] if isinstance(specs, str) else (
        list(specs) if isinstance(specs, (list, tuple)) else None)
    if names is None or not all(isinstance(name, str) for name in names):
        raise TargetError(f"target must be a target name such as 'cpu' or a list of them, got "
                          f"{specs!r}")
    if not names:
        raise TargetError("the target list is empty; name at least one target, e.g. 'cpu'")
    resolved = [resolve(name) for name in names]
    keys = [r.key for r in resolved]
    if len(set(keys)) != len(keys):
        raise TargetError(f"target list {names} names the same target twice ({keys})")
    return resolved


def from_key(key: str) -> ResolvedTarget:
    """The inverse of `ResolvedTarget.key` (keys come from artifacts and compiled modules)."""
    name, _, arch = key.partition(":")
    if (target := TARGETS.get(name)) is None:
        raise TargetError(f"target '{key}' is unknown to this Kiln; known: {', '.join(TARGETS)}")
    return ResolvedTarget(target, arch or None)
