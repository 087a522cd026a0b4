"""Stage lines on a terminal during long compiles: `kiln: kiln-lower ... done in 1.42 s`.

Printed to stderr only when it is a terminal (or `KILN_PROGRESS=1`), so logs, pipes and
tests stay quiet; `KILN_PROGRESS=0` silences it. No dependency: one line per stage.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator


def enabled() -> bool:
    """Whether stage lines are shown: KILN_PROGRESS if set, else whether stderr is a TTY."""
    if (setting := os.environ.get("KILN_PROGRESS")) is not None:
        return setting not in ("", "0")
    return sys.stderr.isatty()


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Show `name` while the block runs and its time when it ends (on a terminal only)."""
    if not enabled():
        yield
        return
    print(f"kiln: {name} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    print(f" done in {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
