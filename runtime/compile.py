"""IREE compilation: linalg-on-tensors text -> a VM flatbuffer for one target, cached."""

from __future__ import annotations

import logging
import re

from iree.compiler import CompilerToolError, compile_str

from kiln.errors import CompileError
from kiln.runtime import cache
from kiln.runtime.params import bind_parameters
from kiln.runtime.targets import ResolvedTarget

log = logging.getLogger(__name__)

MAX_LINE = 300
_DIAGNOSTIC = re.compile(r"^(?P<where>.*?): error: (?P<message>.*)$", re.MULTILINE)


def compile_linalg(linalg_text: str, target: ResolvedTarget, extra_flags: tuple[str, ...] = (),
                   dynamic: bool = False) -> bytes:
    """Compile `linalg_text` for `target` with IREE, or return the cached module.

    Constants externalized by `kiln-externalize-params` become named IREE parameters
    (scope "model"): the module then needs those weights at load time.
    """
    linalg_text = bind_parameters(linalg_text)
    flags = [*target.iree_flags(dynamic), *extra_flags]
    # `host` code differs by machine: a cache folder shared by two CPUs must not hand one
    # the other's AVX-512 code.
    cpu = [] if target.cpu is None else [repr(target.cpu.to_json())]
    key = cache.cache_key(linalg_text, [*flags, *cpu])
    if (cached := cache.lookup(key)) is not None:
        return cached
    log.info("IREE compiling for %s", target.key)
    try:
        vmfb = compile_str(linalg_text, input_type="auto", extra_args=flags)
    except CompilerToolError as e:
        raise CompileError(_summarize(str(e), target)) from None
    cache.store(key, vmfb)
    return vmfb


def _summarize(stderr: str, target: ResolvedTarget) -> str:
    errors = [_cap(f"{m['where']}: error: {m['message']}") for m in _DIAGNOSTIC.finditer(stderr)]
    shown = errors[:8] or [_cap(stderr.strip().splitlines()[0]) if stderr.strip() else "no output"]
    more = f"\n  ... and {len(errors) - 8} more" if len(errors) > 8 else ""
    return (f"IREE could not compile the program for {target.key}:\n  " + "\n  ".join(shown)
            + more + "\nrun `kiln explain` to see the linalg IR handed to IREE.")


def _cap(line: str, limit: int = MAX_LINE) -> str:
    """`line` cut to `limit` characters: IREE prints whole target attributes in diagnostics."""
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line) - limit} more chars)"
