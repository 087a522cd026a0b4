"""Command-line model and input specs: `file.py:Name`, `model.pt`, `1x3x224x224:f32`."""

from __future__ import annotations

import importlib.util
import inspect
import math
from pathlib import Path

import torch
from torch.utils import _pytree as pytree

from kiln.errors import InputError, KilnError, first_line
from kiln.spec import DTYPE_NAMES, NAME_DTYPES, Signature, TensorSpec

MAX_RANDOM_BYTES = 16 * 2**30   # the largest random input `--input SIZExSIZE` makes up


def load_model(spec: str) -> object:
    """`path/to/file.py:Name` -> the model in eval mode; a `.pt` path stays a path.

    Name is a class (instantiated), a function without arguments (a factory, called), a
    function with arguments (the model itself), or a module-level object.
    """
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
    model = factory() if isinstance(factory, type) or _is_factory(factory) else factory
    return model.eval() if isinstance(model, torch.nn.Module) else model


def _is_factory(value: object) -> bool:
    """A callable that takes no arguments builds the model; one that takes some is it."""
    if not callable(value):
        return False
    try:
        parameters = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   for p in parameters)


def parse_input(spec: str, seed: int = 0) -> torch.Tensor:
    """`1x3x224x224:f32` -> a random tensor of that shape and dtype."""
    shape_text, _, dtype_name = spec.partition(":")
    if (dtype := NAME_DTYPES.get(dtype_name or "f32")) is None:
        raise InputError(f"unknown dtype '{dtype_name}' in --input {spec}; use one of "
                         f"{', '.join(NAME_DTYPES)}")
    try:
        shape = [int(d) for d in shape_text.split("x")] if shape_text else []
    except ValueError:
        shape = None
    if shape is None or any(d < 0 for d in shape):
        raise InputError(f"--input {spec} is not SIZExSIZE...:DTYPE (sizes 0 or more), e.g. "
                         "1x3x224x224:f32")
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_RANDOM_BYTES:
        raise InputError(f"--input {spec} would be {size / 2**30:.3g} GiB of random values, "
                         f"over the {MAX_RANDOM_BYTES // 2**30} GiB Kiln makes up; give a "
                         "smaller shape, or the tensor itself as @file.npy")
    generator = torch.Generator().manual_seed(seed)
    try:
        if dtype.is_floating_point:
            return torch.randn(shape, generator=generator).to(dtype)
        return torch.randint(0, 8, shape, generator=generator).to(dtype)
    except RuntimeError as e:  # out of memory
        raise InputError(f"cannot make --input {spec}: {first_line(e)}") from None


def load_input(spec: str, seed: int = 0) -> torch.Tensor:
    """`@file.npy` -> that array as a tensor; anything else as `parse_input`."""
    if not spec.startswith("@"):
        return parse_input(spec, seed)
    import numpy as np

    try:
        array = np.load(spec[1:])
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"cannot read --input {spec}: {e}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive holds several arrays
        raise InputError(f"--input {spec} is not one array (an .npz archive?): save each input "
                         "with numpy.save as its own .npy file")
    try:
        return torch.from_numpy(array)
    except TypeError as e:
        raise InputError(f"--input {spec} holds a {array.dtype} array, which torch cannot take: "
                         f"{e}") from None


def inputs_for(signature: Signature, specs: list[str]) -> tuple[torch.Tensor, ...]:
    """Inputs from `--input` specs, or random ones fitting `signature` when none are given."""
    if specs:
        return tuple(load_input(spec, seed) for seed, spec in enumerate(specs))
    if any(d is None for s in signature.inputs if isinstance(s, TensorSpec) for d in s.shape):
        raise KilnError("the artifact has dynamic dimensions; give each input with --input")
    return tuple(parse_input(s.describe(), seed) if isinstance(s, TensorSpec) else s.value
                 for seed, s in enumerate(signature.inputs))


def describe_outputs(outputs: object, values: int = 6) -> list[str]:
    """One line per output tensor: its path in the output tree, shape, dtype and values."""
    lines = []
    for path, leaf in pytree.tree_flatten_with_path(outputs)[0]:
        name = pytree.keystr(path) or "output"
        if not isinstance(leaf, torch.Tensor):
            lines.append(f"{name}: {leaf!r}")
            continue
        flat = leaf.detach().cpu().reshape(-1)
        shown = " ".join(f"{v:.6g}" for v in flat[:values].tolist())
        more = " ..." if flat.numel() > values else ""
        stats = (f" min {flat.min().item():.6g} max {flat.max().item():.6g}"
                 if flat.numel() and flat.dtype.is_floating_point else "")
        lines.append(f"{name}: {'x'.join(map(str, leaf.shape)) or 'scalar'} "
                     f"{DTYPE_NAMES.get(leaf.dtype, leaf.dtype)}{stats} [{shown}{more}]")
    return lines
