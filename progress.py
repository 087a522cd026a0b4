"""Stage lines on a terminal during long compiles: `kiln: kiln-lower ... done in 1.42 s`.

Printed to stderr only when it is a terminal (or `KILN_PROGRESS=1`), so logs, pipes and
tests stay quiet; `KILN_PROGRESS=0` silences it. No dependency: one line per stage.

A stage that runs longer than a few seconds (IREE compiling a large model) shows that it is
alive: a background thread rewrites its line with the time so far,
`kiln: IREE cpu (compiling MLP, 12 s) ...`, every `TTY_INTERVAL` seconds on a terminal, or
prints such a line every `LOG_INTERVAL` seconds where stderr is not one (`KILN_PROGRESS=1`
into a log), so that a log holds no carriage returns.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

TTY_INTERVAL = 3.0    # seconds between updates of a running stage's line on a terminal
LOG_INTERVAL = 10.0   # seconds between its new lines elsewhere (KILN_PROGRESS=1 into a file)

# What is being compiled ("MLP"), shown in the lines of long stages; see `compiling`.
_subject: contextvars.ContextVar[str | None] = contextvars.ContextVar("kiln_progress_subject",
                                                                      default=None)
_lock = threading.Lock()        # one writer at a time: the stage's thread or a heartbeat
_active: list[_Heartbeat] = []  # running stages' heartbeats, innermost last (under _lock)


def enabled() -> bool:
    """Whether stage lines are shown: KILN_PROGRESS if set, else whether stderr is a TTY."""
    if (setting := os.environ.get("KILN_PROGRESS")) is not None:
        return setting not in ("", "0")
    return sys.stderr.isatty()


@contextlib.contextmanager
def compiling(what: str | None) -> Iterator[None]:
    """Name what the stages inside the block compile (a model's class name), for their
    heartbeat lines: `kiln: IREE cpu (compiling MLP, 12 s) ...`. An outer block's name
    wins (the backend names its graph; `kiln.compile` inside it sees a wrapper class)."""
    token = _subject.set(_subject.get() or what)
    try:
        yield
    finally:
        _subject.reset(token)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Show `name` while the block runs and its time when it ends (on a terminal only); a
    long block's line is kept alive with the time so far (see the module's doc)."""
    if not enabled():
        yield
        return
    stream = sys.stderr
    beat = _Heartbeat(name, _subject.get(), stream, _isatty(stream))
    beat.begin()
    failed = True
    try:
        yield
        failed = False
    finally:
        beat.end(failed)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _Heartbeat:
    """One running stage's line, and the daemon thread that updates it while it runs."""

    def __init__(self, name: str, what: str | None, stream: TextIO, tty: bool) -> None:
        self.name, self.what, self.stream, self.tty = name, what, stream, tty
        self.interval = TTY_INTERVAL if tty else LOG_INTERVAL
        self.stop = threading.Event()
        self.start = time.perf_counter()
        self.updated = False   # whether the line was rewritten (tty) or continued (log)
        self.width = 0         # the length of the line last written on a terminal
        self.thread: threading.Thread | None = threading.Thread(
            target=self._run, name=f"kiln-progress {name}", daemon=True)

    def begin(self) -> None:
        with _lock:
            _active.append(self)
            self._write(first := f"kiln: {self.name} ...")
            self.width = len(first)
        try:
            self.thread.start()
        except RuntimeError:  # no thread to be had: the stage runs, with its two lines only
            self.thread = None

    def end(self, failed: bool) -> None:
        """Stop the thread (before the last write: nothing of it comes after) and finish
        the line with how the stage ended."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        seconds = time.perf_counter() - self.start
        with _lock:
            if self in _active:
                _active.remove(self)
            outcome = (f"failed after {seconds:.2f} s" if failed
                       else f"done in {seconds:.2f} s")
            if self.tty and self.updated:
                self._rewrite(f"kiln: {self.name} ... {outcome}")
                self._write("\n")
            else:
                self._write(f" {outcome}\n")

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            seconds = time.perf_counter() - self.start
            doing = f"compiling {self.what}, " if self.what else ""
            line = f"kiln: {self.name} ({doing}{seconds:.0f} s) ..."
            with _lock:
                if self.stop.is_set():
                    return
                if _active and _active[-1] is not self:
                    continue  # a stage inside this one owns the line now
                if self.tty:
                    self._rewrite(line)
                else:
                    self._write(f"\n{line}")
                self.updated = True

    def _rewrite(self, line: str) -> None:
        """Overwrite the terminal's current line with `line` (blanks over a longer one)."""
        self._write("\r" + line.ljust(self.width))
        self.width = len(line)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr must not fail a compile
            pass
