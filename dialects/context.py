"""MLIR contexts are made here, with the torch dialect loaded and kiln ops allowed."""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import torch as torch_dialect
from torch_mlir.passmanager import PassManager


def new_context() -> ir.Context:
    """A fresh context that parses and builds torch-dialect and kiln ops.

    kiln ops are unregistered generic operations (see `dialects/kiln.py` for why), so the
    context allows unregistered dialects; `kiln_problems` verifies them instead.
    """
    ctx = ir.Context()
    torch_dialect.register_dialect(ctx)
    ctx.allow_unregistered_dialects = True
    return ctx


def load_torch_conversion() -> None:
    """Load the `torch_c` dialect into the current context, which torch-mlir's Python
    bindings do not register.

    A pass manager loads the dialects its passes depend on when it runs; running one with a
    TorchConversion pass on an empty module is the one way the bindings offer (in kiln-lower,
    the torch-mlir pipelines that follow load it anyway). No torch_c op may be made before
    the load: one made unregistered first breaks when the dialect arrives (it parsed back as
    `torch_c.to_f64` in our tries).
    """
    if ir.Context.current.is_registered_operation("torch_c.to_builtin_tensor"):
        return
    scratch = ir.Module.create(ir.Location.unknown())
    PassManager.parse("builtin.module(torch-func-backend-type-conversion)").run(scratch.operation)
