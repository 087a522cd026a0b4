"""Weights outside the code: IREE parameter archives (.irpa) for large `kiln.param`s.

`kiln-externalize-params` (passes/external_params.py) turns each large `kiln.param` into a
literal `dense_resource<"kiln.param:NAME">` with no data, which torch-mlir carries through
to linalg as `arith.constant dense_resource<"kiln.param:NAME"> : tensor<...>`. Before IREE
sees the text, `bind_parameters` rewrites each such constant into
`flow.tensor.constant #stream.parameter.named<"model"::"NAME">`, so the compiled module reads
the weight from a parameter provider at load time instead of carrying it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping

import iree.runtime as ireert
import numpy as np
import torch

from kiln.errors import ArtifactError

SCOPE = "model"           # iree-run-module --parameters=model=params.irpa
MARKER = "kiln.param:"    # resource key prefix written by kiln-externalize-params

_CONSTANT = re.compile(
    r'arith\.constant dense_resource<"' + re.escape(MARKER) + r'(?P<name>[^"]+)"> : '
    r"(?P<type>tensor<[^>]*>)")


def referenced_parameters(linalg_text: str) -> list[str]:
    """The names of the external parameters `linalg_text` reads, in order of appearance."""
    return list(dict.fromkeys(m["name"] for m in _CONSTANT.finditer(linalg_text)))


def bind_parameters(linalg_text: str) -> str:
    """Rewrite each externalized constant into a named IREE parameter in scope `SCOPE`."""
    return _CONSTANT.sub(
        lambda m: f'flow.tensor.constant #stream.parameter.named<"{SCOPE}"::"{m["name"]}"> '
                  f': {m["type"]}', linalg_text)


def archive_bytes(params: Mapping[str, torch.Tensor]) -> bytes:
    """An .irpa archive holding `params` (name -> tensor) as raw little-endian bytes."""
    index = ireert.ParameterIndex()
    for name, tensor in params.items():
        index.add_buffer(name, _raw(tensor))
    fd, path = tempfile.mkstemp(suffix=".irpa")
    os.close(fd)
    try:
        index.create_archive_file(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def provider_module(instance: ireert.VmInstance, irpa: bytes | None,
                    params: Mapping[str, torch.Tensor] | None) -> ireert.VmModule:
    """The `io_parameters` VM module serving an archive's bytes, or tensors in memory."""
    index = ireert.ParameterIndex()
    if irpa is not None:
        try:
            index.load_from_file_handle(ireert.FileHandle.wrap_memory(irpa), "irpa")
        except (RuntimeError, ValueError) as e:
            raise ArtifactError(f"the parameter archive is damaged: {e}") from None
    for name, tensor in (params or {}).items():
        index.add_buffer(name, _raw(tensor))
    return ireert.create_io_parameters_module(instance, index.create_provider(scope=SCOPE))


def _raw(tensor: torch.Tensor) -> np.ndarray:
    """The bytes of `tensor` as a flat uint8 array, the layout the IR's dense type expects."""
    data = tensor.detach().contiguous().cpu()
    if data.dtype == torch.bool:
        data = data.to(torch.uint8)
    return data.view(torch.uint8).reshape(-1).numpy()


def external_weights(linalg_text: str, weights: Mapping[str, torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    """The weights `linalg_text` reads as parameters, taken from `weights` (name -> tensor).

    `kiln.compile` hands these to `CompiledModule(params=...)`; a name without a weight is a
    bug in the lowering, reported as ArtifactError before IREE would fail at load time.
    """
    names = referenced_parameters(linalg_text)
    missing = [n for n in names if n not in weights]
    if missing:
        raise ArtifactError(f"the program reads parameters {missing} that the model does not "
                            "have; report this with `kiln explain` output")
    return {name: weights[name] for name in names}
