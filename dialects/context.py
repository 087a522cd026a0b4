"""MLIR contexts are made here, with the torch dialect loaded and kiln ops allowed."""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import torch as torch_dialect


def new_context() -> ir.Context:
    """A fresh context that parses and builds torch-dialect and kiln ops.

    kiln ops are unregistered generic operations (see `dialects/kiln.py` for why), so the
    context allows unregistered dialects; `kiln_problems` verifies them instead.
    """
    ctx = ir.Context()
    torch_dialect.register_dialect(ctx)
    ctx.allow_unregistered_dialects = True
    return ctx
