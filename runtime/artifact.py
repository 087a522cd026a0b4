"""`.kiln` artifacts: one self-contained file with the IREE modules, weights and a manifest.

Layout (all integers little-endian):

    header, 64 bytes: magic b"\\x89KLN\\r\\n\\x1a\\n" | u32 format version | u32 flags (0)
                      | u64 body length | u64 manifest length | 32-byte SHA-256 of the body
    body:             manifest JSON, then each section (IREE module per target, the .irpa
                      parameter archive) at a 64-byte-aligned offset

Why not a zip: a zip checks its members' CRCs but not its own metadata, so a flipped byte in
a header or the central directory can pass silently or fail deep inside `zipfile`; here one
SHA-256 over the whole body catches any damage, the header says how long the file must be
(so truncation is named as such), and aligned sections can be handed to IREE in place.
`kiln unpack` (or `unpack` below) writes the sections out as ordinary files for IREE's tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kiln.config import versions
from kiln.errors import ArtifactError
from kiln.runtime import params as params_mod
from kiln.runtime.cache import write_atomically
from kiln.runtime.manifest import ENTRY, FORMAT, MODULE_PREFIX, PARAMS_SECTION, ManifestError
from kiln.runtime.manifest import check as check_manifest
from kiln.runtime.targets import from_key
from kiln.spec import Signature

MAGIC = b"\x89KLN\r\n\x1a\n"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIQQ32s")
assert _HEADER.size == 64, "the header is one 64-byte block"
ALIGN = 64


@dataclass(frozen=True)
class Artifact:
    """A parsed, verified `.kiln` file: its manifest and its sections by name."""

    manifest: dict
    sections: dict[str, bytes | memoryview]

    @property
    def executables(self) -> dict[str, bytes | memoryview]:
        """Target key -> IREE module (.vmfb bytes)."""
        return {t["key"]: self.sections[t["section"]] for t in self.manifest["targets"]}

    @property
    def parameter_archive(self) -> bytes | memoryview | None:
        """The .irpa bytes of the external weights, or None."""
        return self.sections.get(PARAMS_SECTION)


def save(module, path: str | os.PathLike) -> None:
    """Write `module` (a `CompiledModule`: runtime/module.py reads artifacts, not the other
    way round) to `path` as one `.kiln` file; readers never see half of it."""
    if Path(path).is_dir():  # "" too: it names the current folder
        raise ArtifactError(f"cannot write artifact '{path}': it is a folder; name a file, "
                            "e.g. 'model.kiln'")
    sections = {MODULE_PREFIX + key: vmfb for key, vmfb in module.executables.items()}
    if (archive := module.parameter_archive()) is not None:
        sections[PARAMS_SECTION] = archive
    manifest = _manifest(module, sections)
    try:
        write_atomically(Path(path), _encode(manifest, sections))
    except OSError as e:
        raise ArtifactError(f"cannot write artifact '{path}': {e.strerror or e}") from None


def _manifest(module, sections: dict[str, bytes]) -> dict:
    targets = []
    for key in module.executables:
        resolved = from_key(key)
        targets.append({"key": key, "backend": resolved.target.backend,
                        "driver": module.drivers.get(key, resolved.target.driver),
                        "section": MODULE_PREFIX + key,
                        "iree_flags": resolved.iree_flags(module.signature.dynamic),
                        "cpu": need.to_json() if (need := module.cpu_needs.get(key)) else None,
                        **({"longest_loop": module.longest_loops[key]}
                           if key in module.longest_loops else {})})
    parameters = ({"section": PARAMS_SECTION, "scope": params_mod.SCOPE}
                  if PARAMS_SECTION in sections else None)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "entry": ENTRY,
            "signature": module.signature.to_json(), "targets": targets,
            "parameters": parameters, "versions": versions(), "sections": []}


def _encode(manifest: dict, sections: dict[str, bytes | memoryview]) -> bytes:
    offset, table = 0, []
    for name, data in sections.items():
        table.append({"name": name, "offset": offset, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
        offset += _padded(len(data))
    manifest = {**manifest, "sections": table}
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    body = b"".join(chunk for data in [text, *(sections[e["name"]] for e in table)]
                    for chunk in (data, _padding(data)))
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(body), len(text),
                          hashlib.sha256(body).digest())
    return header + body


def _padded(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


def _padding(data: bytes | memoryview) -> bytes:
    """The zero bytes that take `data` to the next ALIGN boundary."""
    return b"\0" * (_padded(len(data)) - len(data))


def read(path: str | os.PathLike) -> Artifact:
    """Read and verify a `.kiln` file; ArtifactError says what is wrong with a bad one."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read artifact '{path}': {e.strerror or e}") from None
    body, manifest_size, digest = _check_header(data, path)
    # The SHA-256 of a 400 MB body takes 0.35 s: hash on a second thread (hashlib releases
    # the GIL) while the manifest is checked, and use the sections only if the checksum
    # matches.
    with ThreadPoolExecutor(1) as pool:
        checksum = pool.submit(lambda: hashlib.sha256(body).digest())
        try:
            manifest, sections = _parse(body, manifest_size)
            unusable = None
        except (_BadLength, ManifestError) as e:
            unusable = e
        if checksum.result() != digest:
            raise ArtifactError(f"'{path}' is damaged: its SHA-256 checksum does not match its "
                                "contents; copy or save it again")
    if isinstance(unusable, _BadLength):
        # The checksum covers the body, not the header: Kiln's manifest is always valid JSON
        # ending exactly where the header says, so the header's length field is damaged.
        raise ArtifactError(f"'{path}' is damaged: its header gives the manifest a length "
                            f"({manifest_size} bytes) at which it is not valid JSON; copy or "
                            "save it again")
    if unusable is not None:
        raise ArtifactError(f"'{path}' has a checksum that matches but an unusable manifest "
                            f"({unusable}); it was not written by this Kiln: re-save it with "
                            "`cm.save`")
    return Artifact(manifest, sections)


def _check_header(data: bytes, path: str | os.PathLike) -> tuple[memoryview, int, bytes]:
    """The body, the manifest length and the body's expected SHA-256, after checking magic,
    version and size (the checksum itself is compared by `read`)."""
    if len(data) < _HEADER.size or not data.startswith(MAGIC):
        raise ArtifactError(f"'{path}' is not a Kiln artifact (it does not start with the "
                            "'.kiln' magic bytes); write one with `cm.save(path)`")
    _, version, flags, body_size, manifest_size, digest = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ArtifactError(f"'{path}' uses .kiln format version {version}, but this Kiln reads "
                            f"version {FORMAT_VERSION}: load it with the Kiln that wrote it, or "
                            "re-save it with this one")
    if flags != 0:
        raise ArtifactError(f"'{path}' is damaged: its header's flags are {flags:#x}, where "
                            "this format has none; copy or save it again")
    body = memoryview(data)[_HEADER.size:]  # a view: a 400 MB artifact is not copied again
    if len(body) != body_size:
        state = "truncated" if len(body) < body_size else "longer than its header says"
        raise ArtifactError(f"'{path}' is {state}: {len(data)} bytes, expected "
                            f"{_HEADER.size + body_size}; copy or save it again")
    if manifest_size > body_size:
        raise ArtifactError(f"'{path}' is damaged: its manifest runs past its end; copy or "
                            "save it again")
    return body, manifest_size, digest


class _BadLength(ValueError):
    """The manifest is not JSON at the length the header gives."""


def _parse(body: memoryview, manifest_size: int) -> tuple[dict, dict[str, memoryview]]:
    """The manifest, checked field by field, and the sections it names as read-only views of
    the file's bytes (not copies: a 400 MB weight section took 0.4 s to copy). The body's
    SHA-256 covers them, so the per-section digests of the manifest (for `kiln unpack`ed
    files) are not hashed again."""
    try:
        manifest = json.loads(bytes(body[:manifest_size]))
    except RecursionError:
        raise ManifestError("it nests too deeply to read") from None
    except ValueError:
        raise _BadLength() from None
    start = _padded(manifest_size)
    check_manifest(manifest, FORMAT_VERSION, ENTRY, params_mod.SCOPE, len(body) - start)
    try:
        Signature.from_json(manifest["signature"])
    except (ValueError, KeyError, TypeError, NotImplementedError) as e:
        raise ManifestError(f"its signature does not load: {e}") from None
    return manifest, {e["name"]: body[start + e["offset"]:start + e["offset"] + e["size"]]
                      for e in manifest["sections"]}


def unpack(path: str | os.PathLike, folder: str | os.PathLike, force: bool = False
           ) -> dict[str, Path]:
    """Write an artifact's parts as files for IREE's tools: `<target>.vmfb`, `params.irpa`,
    `manifest.json`. Returns part name -> file written.

    `folder` must be new or empty unless `force`, which overwrites files of those names.
    """
    artifact = read(path)
    out = _output_folder(Path(folder), force)
    # Keys are known targets (read checks them): 'cuda:sm_80' -> 'cuda_sm_80.vmfb'.
    written = {key: out / f"{key.replace(':', '_')}.vmfb" for key in artifact.executables}
    if artifact.parameter_archive is not None:
        written[PARAMS_SECTION] = out / "params.irpa"
    written["manifest"] = out / "manifest.json"
    contents = {**artifact.executables, PARAMS_SECTION: artifact.parameter_archive,
                "manifest": json.dumps(artifact.manifest, indent=1).encode()}
    for name, file in written.items():
        if file.parent.resolve() != out.resolve():
            raise ArtifactError(f"'{path}' names a part '{name}' that would be written outside "
                                f"'{folder}'")
        try:
            write_atomically(file, contents[name])
        except OSError as e:
            raise ArtifactError(f"cannot write '{file}': {e.strerror or e}") from None
    return written


def _output_folder(out: Path, force: bool) -> Path:
    """`out`, created if missing; ArtifactError if it is a file, or holds files and not `force`."""
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"cannot unpack into '{out}': it is a file, not a folder; name a "
                            "new folder with -o")
    try:
        out.mkdir(parents=True, exist_ok=True)
        crowded = not force and any(out.iterdir())
    except OSError as e:
        raise ArtifactError(f"cannot unpack into '{out}': {e.strerror or e}") from None
    if crowded:
        raise ArtifactError(f"cannot unpack into '{out}': it is not empty; name a new folder, "
                            "or overwrite the files there with --force (force=True)")
    return out
