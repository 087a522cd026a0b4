"""The whole-program cache: a warm compile skips import, lowering and IREE, keeps IR and stats."""

from __future__ import annotations

import torch

import kiln
import kiln.compiler as compiler_module
from kiln.runtime import program_cache


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


def _no_lowering(*args, **kwargs):
    raise AssertionError("a warm compile must not lower again")


def test_warm_compile_skips_lowering_and_keeps_ir_and_stats(monkeypatch):
    torch.manual_seed(1)
    model, x = Tiny().eval(), torch.randn(2, 5)
    cold_stats: dict = {}
    cold = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=cold_stats))
    monkeypatch.setattr(compiler_module, "lower_to_linalg", _no_lowering)
    warm_stats: dict = {}
    warm = kiln.compile(model, (x,), options=kiln.CompileOptions(stats=warm_stats))
    torch.testing.assert_close(warm(x), model(x))
    assert warm.ir("graph") == cold.ir("graph")
    assert warm_stats == cold_stats


def test_other_weights_miss_the_cache(monkeypatch):
    torch.manual_seed(2)
    model, x = Tiny().eval(), torch.randn(2, 5)
    kiln.compile(model, (x,))
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    calls = []
    real = compiler_module.lower_to_linalg
    monkeypatch.setattr(compiler_module, "lower_to_linalg",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.testing.assert_close(kiln.compile(model, (x,))(x), model(x))
    assert calls == [1], "changed weights must recompile"


def test_damaged_entry_is_dropped_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    torch.manual_seed(3)
    model, x = Tiny().eval(), torch.randn(2, 5)
    kiln.compile(model, (x,))
    (entry,) = (tmp_path / "programs").glob("*.kiln")
    entry.write_bytes(entry.read_bytes()[:100])
    torch.testing.assert_close(kiln.compile(model, (x,))(x), model(x))
    assert entry.stat().st_size > 100, "the damaged entry was rebuilt"


def test_key_depends_on_targets_options_and_program():
    base = program_cache.program_key("abc", ["cpu"], {"graph_passes": True})
    assert base == program_cache.program_key("abc", ["cpu"], {"graph_passes": True})
    assert base != program_cache.program_key("abd", ["cpu"], {"graph_passes": True})
    assert base != program_cache.program_key("abc", ["cuda:sm_80"], {"graph_passes": True})
    assert base != program_cache.program_key("abc", ["cpu"], {"graph_passes": False})
