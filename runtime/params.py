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

from kiln.errors import ArtifactError, first_line

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


def host_buffers(irpa: bytes | None, params: Mapping[str, torch.Tensor] | None
                 ) -> dict[str, np.ndarray]:
    """Name -> host bytes of every external weight, from an archive and/or tensors.

    The caller keeps the arrays alive as long as a module reads them.
    """
    return {**_archive_entries(irpa), **{n: _raw(t) for n, t in (params or {}).items()}}


def provider_module(instance: ireert.VmInstance, buffers: Mapping[str, np.ndarray]
                    ) -> ireert.VmModule:
    """The `io_parameters` VM module serving `buffers` (see `host_buffers`)."""
    index = ireert.ParameterIndex()
    for name, data in buffers.items():
        index.add_buffer(name, data)
    return ireert.create_io_parameters_module(instance, index.create_provider(scope=SCOPE))


def _archive_entries(irpa: bytes | None) -> dict[str, np.ndarray]:
    """Each entry of an .irpa archive as its own 64-byte-aligned host array.

    Served straight from the archive's bytes (file entries), GPT-2 small ran 181 ms a call
    against 123 ms with the same weights as host buffers; copying them out once at load
    time gives the host-buffer speed.
    """
    if irpa is None:
        return {}
    archive = ireert.ParameterIndex()
    try:
        archive.load_from_file_handle(ireert.FileHandle.wrap_memory(irpa), "irpa")
        entries = {key: ireert.parameter_index_entry_as_numpy_flat_ndarray(entry)
                   for key, entry in archive.items()}
    # IREE raises by status code: INVALID_ARGUMENT as ValueError, OUT_OF_RANGE (an index
    # entry pointing past the archive) as IndexError, the rest as RuntimeError.
    except (RuntimeError, ValueError, IndexError) as e:
        raise ArtifactError(f"the parameter archive is damaged ({first_line(e)}); copy or save "
                            "the artifact again") from None
    return {key: _aligned_copy(view) for key, view in entries.items()}


def _aligned_copy(view: np.ndarray, alignment: int = 64) -> np.ndarray:
    storage = np.empty(view.nbytes + alignment, dtype=np.uint8)
    start = -storage.ctypes.data % alignment
    aligned = storage[start:start + view.nbytes]
    aligned[:] = view
    return aligned


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
