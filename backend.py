"""`torch.compile(model, backend="kiln")`: the Dynamo backend, registered by entry point.

Dynamo hands over a GraphModule whose placeholders are the flat inputs (parameters
included, as Dynamo lifts them); Kiln exports it and compiles it like any module. The
returned CompiledModule takes the same flat inputs and returns the GraphModule's outputs.
Kiln compiles for inference: outputs carry no autograd history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from kiln.compiler import compile as kiln_compile
from kiln.errors import FrontendError
from kiln.runtime.module import CompiledModule

log = logging.getLogger(__name__)


def kiln_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[object],
                 **options: object) -> CompiledModule:
    """Compile the Dynamo graph `gm` for the CPU; `options` are `torch.compile(options=...)`."""
    inputs = tuple(example_inputs)
    if not all(isinstance(x, torch.Tensor) for x in inputs):
        kinds = sorted({type(x).__name__ for x in inputs if not isinstance(x, torch.Tensor)})
        raise FrontendError(f"the kiln backend takes tensor inputs only, got {', '.join(kinds)}; "
                            "compile with dynamic=False")
    target = str(options.get("target", "cpu"))
    log.info("kiln backend: compiling a graph of %d nodes", len(gm.graph.nodes))
    return kiln_compile(gm, inputs, frontend="export", target=target)
