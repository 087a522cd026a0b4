"""Command-line model and input specs: `file.py:Name`, `model.pt`, `1x3x224x224:f32`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from kiln.errors import KilnError
from kiln.spec import NAME_DTYPES


def load_model(spec: str) -> object:
    """`path/to/file.py:ClassOrFactory` -> an instance in eval mode; a `.pt` path stays a path."""
    if spec.endswith((".pt", ".pth")):
        if not Path(spec).exists():
            raise KilnError(f"TorchScript archive '{spec}' does not exist")
        return spec
    path_text, colon, name = spec.rpartition(":")
    if not colon or not path_text.endswith(".py"):
        raise KilnError(f"MODEL '{spec}' is neither path/to/file.py:Name nor a .pt archive")
    path = Path(path_text)
    if not path.exists():
        raise KilnError(f"model file '{path}' does not exist")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if (factory := getattr(module, name, None)) is None:
        raise KilnError(f"'{path}' defines no '{name}'")
    model = factory() if isinstance(factory, type) or callable(factory) else factory
    return model.eval() if isinstance(model, torch.nn.Module) else model


def parse_input(spec: str, seed: int = 0) -> torch.Tensor:
    """`1x3x224x224:f32` -> a random tensor of that shape and dtype."""
    shape_text, _, dtype_name = spec.partition(":")
    if (dtype := NAME_DTYPES.get(dtype_name or "f32")) is None:
        raise KilnError(f"unknown dtype '{dtype_name}' in --input {spec}; use one of "
                        f"{', '.join(NAME_DTYPES)}")
    try:
        shape = [int(d) for d in shape_text.split("x")] if shape_text else []
    except ValueError:
        raise KilnError(f"--input {spec} is not SIZExSIZE...:DTYPE, e.g. 1x3x224x224:f32") from None
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(dtype)
    return torch.randint(0, 8, shape, generator=generator).to(dtype)
