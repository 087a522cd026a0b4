"""progress.stage keeps a long stage's line alive: the time so far and what it compiles, from
a thread that ends with the stage (issue 25: a U-Net's IREE stage printed nothing for 60 s)."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from kiln import progress


@pytest.fixture
def fast_beats(monkeypatch):
    """Heartbeats every 0.05 s instead of every few seconds."""
    monkeypatch.setattr(progress, "TTY_INTERVAL", 0.05)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)


def _progress_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kiln-progress")]


def test_a_long_stage_prints_heartbeat_lines_into_a_log(monkeypatch, capfd, fast_beats):
    monkeypatch.setenv("KILN_PROGRESS", "1")   # pytest's stderr is not a terminal
    with progress.compiling("MLP"), progress.stage("IREE cpu"):
        time.sleep(0.3)
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "kiln: IREE cpu ..."
    beats = lines[1:]
    assert len(beats) >= 2, err
    assert all(re.fullmatch(r"kiln: IREE cpu \(compiling MLP, \d+ s\) \.\.\.( done in "
                            r"\d+\.\d\d s)?", line) for line in beats), err
    assert beats[-1].endswith(" s") and "done in" in beats[-1]
    assert "\r" not in err  # a log holds no carriage returns
    assert not _progress_threads()


def test_a_long_stage_rewrites_its_line_on_a_terminal(monkeypatch, fast_beats):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("KILN_PROGRESS", raising=False)   # on by default on a terminal
    with progress.stage("kiln-lower"):
        time.sleep(0.3)
    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    shown = text.rstrip("\n").split("\r")
    assert shown[0] == "kiln: kiln-lower ..."
    assert all(re.fullmatch(r"kiln: kiln-lower \(\d+ s\) \.\.\.", part) for part in shown[1:-1])
    assert len(shown) >= 3, text
    assert re.fullmatch(r"kiln: kiln-lower \.\.\. done in 0\.\d\d s *", shown[-1])
    # the last line blanks out the rest of the longer one it overwrites
    assert len(shown[-1]) >= len(shown[-2])
    assert not _progress_threads()


def test_the_thread_stops_when_the_stage_raises(monkeypatch, capfd, fast_beats):
    monkeypatch.setenv("KILN_PROGRESS", "1")
    with pytest.raises(ValueError, match="boom"), progress.stage("IREE cpu"):
        time.sleep(0.15)
        raise ValueError("boom")
    assert not _progress_threads()
    err = capfd.readouterr().err
    assert re.search(r"kiln: IREE cpu \(\d+ s\) \.\.\. failed after \d+\.\d\d s\n$", err), err
    time.sleep(0.15)   # nothing more comes after the stage ended
    assert capfd.readouterr().err == ""


def test_a_short_stage_is_one_line(monkeypatch, capfd):
    monkeypatch.setenv("KILN_PROGRESS", "1")
    with progress.stage("capture"):
        pass
    assert re.fullmatch(r"kiln: capture \.\.\. done in \d+\.\d\d s\n", capfd.readouterr().err)
    assert not _progress_threads()


def test_nothing_with_progress_off(monkeypatch, capfd, fast_beats):
    monkeypatch.setenv("KILN_PROGRESS", "0")
    with progress.compiling("MLP"), progress.stage("IREE cpu"):
        assert not _progress_threads()
        time.sleep(0.2)
    assert capfd.readouterr() == ("", "")
    assert not _progress_threads()
