"""The instruction-set features CPU code needs, and whether this machine has them.

An executable compiled for `host` uses every extension the compiling machine has (AVX-512 on
a Zen 4 or Ice Lake); loaded on a CPU without one, it can only die of an illegal
instruction. So each CPU executable records the features its code may use, and loading
checks them first (`CpuArch.missing`).

Features are named as Linux's /proc/cpuinfo names them ("avx2", "avx512f", "abm" for
LZCNT), which is where this machine's own come from. The named architectures are LLVM's CPU
names that `--iree-llvmcpu-target-cpu` takes: the x86-64 micro-architecture levels (the
psABI's x86-64, -v2, -v3, -v4) and a few CPUs, each with the features LLVM gives it; other
names are refused rather than recorded without their features.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

_V1 = frozenset({"sse", "sse2", "fxsr", "mmx", "cx8", "cmov", "fpu"})
_V2 = _V1 | {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}   # pni: SSE3
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_AVX512_ICL = {"avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg",
               "avx512_vpopcntdq", "gfni", "vaes", "vpclmulqdq"}

ARCHS: dict[str, frozenset[str]] = {
    "x86-64": _V1,
    "x86-64-v2": _V2,
    "x86-64-v3": _V3,
    "x86-64-v4": _V4,
    "haswell": _V3,
    "skylake": _V3 | {"adx", "aes", "pclmulqdq"},
    "znver2": _V3 | {"adx", "aes", "pclmulqdq", "sha_ni"},
    "znver3": _V3 | {"adx", "aes", "pclmulqdq", "sha_ni", "vaes", "vpclmulqdq"},
    "skylake-avx512": _V4 | {"adx", "aes", "pclmulqdq"},
    "icelake-server": _V4 | _AVX512_ICL | {"adx", "aes", "pclmulqdq", "sha_ni"},
    "znver4": _V4 | _AVX512_ICL | {"adx", "aes", "pclmulqdq", "sha_ni", "avx512_bf16"},
}

# The flags of /proc/cpuinfo that are instruction sets LLVM may use for `host` code (the
# rest are platform facts: "ht", "hypervisor", "constant_tsc", ...).
ISA = frozenset().union(*ARCHS.values()) | {
    "avx512_fp16", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "sha_ni",
    "clflushopt", "clwb", "rdrnd", "rdseed", "xsavec", "xsaveopt", "prfchw", "waitpkg",
}


@dataclass(frozen=True)
class CpuArch:
    """What one CPU executable needs: the machine kind (`platform.machine()` names) and,
    where known, the instruction-set features."""

    machine: str
    features: frozenset[str] | None    # None: not known here (not Linux on x86-64)

    def missing(self, host: CpuArch | None = None) -> list[str]:
        """What `host` (default: this machine) lacks to run this code: its machine kind
        when that differs, else the features it lacks (sorted); [] if it runs here."""
        host = host or this_machine()
        if host.machine != self.machine:
            return [f"a {self.machine} processor (this one is {host.machine})"]
        if self.features is None or host.features is None:
            return []
        return sorted(self.features - host.features)

    def to_json(self) -> dict:
        return {"machine": self.machine,
                "features": None if self.features is None else sorted(self.features)}

    @staticmethod
    def from_json(value: dict) -> CpuArch:
        features = value.get("features")
        return CpuArch(value["machine"], None if features is None else frozenset(features))


@functools.cache
def this_machine() -> CpuArch:
    """This machine's kind and features (features from /proc/cpuinfo; None elsewhere)."""
    return CpuArch(_machine(), _proc_cpuinfo_flags())


def for_arch(arch: str | None) -> CpuArch:
    """What code compiled for `arch` needs: None or "host" is this machine's features."""
    if arch in (None, "host"):
        return this_machine()
    return CpuArch("x86_64", ARCHS[arch])


def _machine() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def _proc_cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    if _machine() != "x86_64":
        return None
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split()) & ISA
    return None
