"""A plain compile warns nothing (issue 25): warnings that torch raises inside Kiln's own calls
into it (pytree's LeafSpec deprecation in run_decompositions, torch.export's note on
nn.LSTM's `_flat_weights`) are Kiln's to silence; the user's own warnings still reach them."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch import nn

import kiln


@pytest.fixture(scope="module", autouse=True)
def fresh_cache(tmp_path_factory):
    """A cache of this module's own: every compile here runs for real, not from the cache."""
    before = os.environ.get("KILN_CACHE_DIR")
    os.environ["KILN_CACHE_DIR"] = str(tmp_path_factory.mktemp("quiet-cache"))
    yield
    if before is None:
        os.environ.pop("KILN_CACHE_DIR", None)
    else:
        os.environ["KILN_CACHE_DIR"] = before


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 64), nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


class WarnsItself(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)

    def forward(self, x):
        warnings.warn("mine", UserWarning, stacklevel=1)
        return self.lstm(x)[0]


def _compile_recording(model: nn.Module, x: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = kiln.compile(model.eval(), (x,))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager's own call, for the reference only
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("model, shape", [(MLP, (4, 8)), (LSTMNet, (2, 5, 8))],
                         ids=["mlp", "lstm"])
def test_a_plain_compile_warns_nothing(model, shape):
    torch.manual_seed(0)
    assert _compile_recording(model(), torch.randn(*shape)) == []


def test_the_users_own_warning_still_reaches_them():
    torch.manual_seed(0)
    caught = _compile_recording(WarnsItself(), torch.randn(2, 5, 8))
    assert "UserWarning: mine" in caught
    assert all(message == "UserWarning: mine" for message in caught), caught


def test_the_same_export_warning_about_the_users_own_attribute_is_kept():
    """Only nn.LSTM's `_flat_weights` note is silenced: a tensor the user's module assigns
    to itself in forward is theirs to hear about."""

    class Caches(nn.Module):
        def forward(self, x):
            self.cache = x * 2
            return x + 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kiln.compile(Caches(), (torch.randn(3),))
    assert any("self.cache" in str(w.message) for w in caught), [str(w.message) for w in caught]
