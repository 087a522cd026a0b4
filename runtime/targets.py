"""Targets and drivers: one table of frozen records, parsed by lookup, never by if-chain."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.errors import TargetError


@dataclass(frozen=True)
class Target:
    """A kind of device Kiln compiles for, and how IREE is told about it."""

    name: str                       # what users write: "cpu", "cuda", "rocm", "vulkan"
    device: str                     # --iree-hal-target-device
    backend: str                    # the IREE code generator, what `cm.targets` lists
    driver: str                     # iree.runtime driver that runs it
    arch_flag: str | None = None    # template for "name:arch"
    default_arch: str | None = None
    flags: tuple[str, ...] = ()


_ALL = (
    Target("cpu", "local", "llvm-cpu", "local-task",
           flags=("--iree-hal-local-target-device-backends=llvm-cpu",
                  "--iree-llvmcpu-target-cpu=host")),
    # sm_90 is missing in IREE 3.13 ("missing GPU target"); sm_80 code runs on Hopper.
    Target("cuda", "cuda", "cuda", "cuda", "--iree-cuda-target={}", "sm_80"),
    Target("rocm", "hip", "rocm", "hip", "--iree-rocm-target={}", "gfx942"),
    Target("vulkan", "vulkan", "vulkan-spirv", "vulkan", "--iree-vulkan-target={}", "ampere"),
)
TARGETS: dict[str, Target] = {t.name: t for t in _ALL}
assert len(TARGETS) == len(_ALL), "two targets share a name"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target with its architecture chosen: what one compile is for."""

    target: Target
    arch: str | None

    @property
    def key(self) -> str:
        return f"{self.target.name}:{self.arch}" if self.arch else self.target.name

    def iree_flags(self) -> list[str]:
        flags = [f"--iree-hal-target-device={self.target.device}", *self.target.flags]
        if self.target.arch_flag and self.arch:
            flags.append(self.target.arch_flag.format(self.arch))
        return flags


def resolve(spec: str) -> ResolvedTarget:
    """'cpu', 'cuda', 'cuda:sm_86', 'rocm:gfx942', 'vulkan' -> a ResolvedTarget."""
    name, _, arch = spec.partition(":")
    if (target := TARGETS.get(name)) is None:
        raise TargetError(f"unknown target '{spec}'; known targets: {', '.join(TARGETS)} "
                          "(optionally with ':arch', e.g. 'cuda:sm_80')")
    if arch and target.arch_flag is None:
        raise TargetError(f"target '{name}' takes no architecture, got '{spec}'")
    return ResolvedTarget(target, arch or target.default_arch)
