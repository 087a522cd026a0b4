"""nn.LSTM/nn.GRU under torch.compile(backend="kiln") (issue 25).

Dynamo runs RNN modules in eager PyTorch without calling any backend unless
`torch._dynamo.config.allow_rnn` is True. Kiln does not flip that process-wide setting; it
tells the user once why the RNN did not reach it, and with the setting on compiles it to IREE.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from kiln import backend


class RnnFirst(torch.nn.Module):
    """The issue's model: an RNN, then a head (Dynamo sees nothing before the RNN)."""

    def __init__(self, kind: str = "LSTM", layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        self.rnn = getattr(torch.nn, kind)(8, 16, num_layers=layers, batch_first=True,
                                           bidirectional=bidirectional)
        self.fc = torch.nn.Linear(32 if bidirectional else 16, 4)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class LayerThenRnn(RnnFirst):
    """A layer before the RNN: Dynamo hands Kiln that graph, then breaks at the RNN."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.inp = torch.nn.Linear(8, 8)

    def forward(self, x):
        return super().forward(torch.relu(self.inp(x)))


def _rnn_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "kiln" and "allow_rnn" in r.getMessage()]


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    """A fresh Dynamo, cache and notice. torch._dynamo.reset() clears Dynamo's callbacks, which
    Kiln re-arms at import and at each graph it compiles; here they are re-armed by hand."""
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(backend._RNN_NOTICE, "told", False)
    torch._dynamo.reset()
    backend._RNN_NOTICE.arm()
    yield
    torch._dynamo.reset()


def test_a_fresh_process_is_told_once_for_several_calls_and_models(tmp_path):
    """The user's run: no reset, no re-arming; Dynamo loads the backend by its name."""
    script = textwrap.dedent("""
        import logging, torch

        class RnnFirst(torch.nn.Module):
            def __init__(self, kind):
                super().__init__()
                self.rnn = getattr(torch.nn, kind)(8, 16, batch_first=True)
                self.fc = torch.nn.Linear(16, 4)

            def forward(self, x):
                return self.fc(self.rnn(x)[0][:, -1])

        logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
        for kind in ("LSTM", "GRU"):
            model, x = RnnFirst(kind).eval(), torch.randn(2, 5, 8)
            compiled = torch.compile(model, backend="kiln")
            with torch.no_grad():
                for _ in range(3):
                    torch.testing.assert_close(compiled(x), model(x))
        print("done")
    """)
    env = {**os.environ, "KILN_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    lines = [line for line in result.stderr.splitlines() if line.startswith("kiln ")]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("kiln WARNING kiln fallback: LSTM(8, 16, batch_first=True) x1 runs "
                           "in PyTorch: Dynamo does not trace nn.RNN/nn.GRU/nn.LSTM"), line
    for advice in ("`torch._dynamo.config.allow_rnn = True` before the compiled model's",
                   "`torch._dynamo.reset()`", "`kiln.compile(model, example_inputs)`"):
        assert advice in line


def test_graph_before_the_rnn_runs_in_iree_and_the_user_is_told_once(caplog, iree_calls):
    torch.manual_seed(0)
    model, x = LayerThenRnn("GRU").eval(), torch.randn(2, 5, 8)
    compiled = torch.compile(model, backend="kiln")
    with caplog.at_level(logging.WARNING, logger="kiln"), torch.no_grad():
        for _ in range(3):
            before = len(iree_calls)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
        assert len(iree_calls) - before == 1   # linear + relu; the GRU and the head in PyTorch
    lines = _rnn_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("kiln fallback: GRU(8, 16, batch_first=True)")


def test_other_backends_hear_nothing_from_kiln(caplog):
    model, x = RnnFirst("LSTM").eval(), torch.randn(2, 5, 8)
    with caplog.at_level(logging.WARNING, logger="kiln"), torch.no_grad():
        torch.compile(model, backend="eager")(x)
    assert _rnn_lines(caplog) == []
    assert not backend._RNN_NOTICE.told


def test_fullgraph_gets_dynamos_error_and_no_kiln_line(caplog):
    model = RnnFirst("LSTM").eval()
    with caplog.at_level(logging.WARNING, logger="kiln"), pytest.raises(
            torch._dynamo.exc.Unsupported, match="allow_rnn"):
        torch.compile(model, backend="kiln", fullgraph=True)(torch.randn(2, 5, 8))
    assert _rnn_lines(caplog) == []


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_with_allow_rnn_the_rnn_compiles_to_iree_and_matches_eager(kind, caplog, iree_calls):
    torch.manual_seed(0)
    model = RnnFirst(kind, layers=2, bidirectional=True).eval()
    compiled = torch.compile(model, backend="kiln")
    with (torch._dynamo.config.patch(allow_rnn=True), torch.no_grad(),
          caplog.at_level(logging.WARNING, logger="kiln")):
        compiled(torch.randn(2, 5, 8))   # compiles (Kiln calls the executable to tune it)
        x = torch.randn(2, 5, 8)
        before = len(iree_calls)
        got = compiled(x)
    assert len(iree_calls) - before == 1   # the RNN and the head: one Kiln executable
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
    assert [r.getMessage() for r in caplog.records if r.name == "kiln"] == []
