"""Kiln under a careless or hostile user: damaged and crafted artifacts, damaged caches,
unusable cache folders, `unpack` into the wrong place, bad command lines.

Every case must end in a KilnError with a message (or exit status 1 and one line), never a
raw traceback, a crash, or a file written where it should not be.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kiln
from kiln.runtime import artifact, cache, program_cache
from kiln.runtime.module import module_from
from kiln.tools import opt
from kiln.tools.cli import main

HEADER = struct.Struct("<8sIIQQ32s")   # runtime/artifact.py's header layout
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def mlp() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    """An MLP of its own weights: its cache entries are this module's alone."""
    from models import MLP

    torch.manual_seed(21)
    return MLP().eval(), (torch.randn(4, 8),)


@pytest.fixture(scope="module")
def saved(mlp, tmp_path_factory) -> Path:
    """The MLP with its weights in a parameter archive: every kind of section."""
    os.environ["KILN_EXTERNAL_PARAMS_MIN_BYTES"] = "1024"
    try:
        compiled = kiln.compile(*mlp)
    finally:
        del os.environ["KILN_EXTERNAL_PARAMS_MIN_BYTES"]
    path = tmp_path_factory.mktemp("adversarial") / "mlp.kiln"
    compiled.save(path)
    return path


@pytest.fixture(scope="module")
def layout(saved) -> dict[str, tuple[int, int]]:
    """Part of the file -> (start, end) byte positions."""
    data = saved.read_bytes()
    manifest_size = HEADER.unpack_from(data)[4]
    manifest = json.loads(data[HEADER.size:HEADER.size + manifest_size])
    start = HEADER.size + _padded(manifest_size)
    parts = {"magic": (0, 8), "version": (8, 12), "flags": (12, 16), "body size": (16, 24),
             "manifest size": (24, 32), "checksum": (32, 64),
             "manifest": (HEADER.size, HEADER.size + manifest_size)}
    for section in manifest["sections"]:
        first = start + section["offset"]
        parts[section["name"]] = (first, first + section["size"])
    assert {"module/cpu", "params"} <= set(parts)
    return parts


def _padded(size: int) -> int:
    return (size + artifact.ALIGN - 1) // artifact.ALIGN * artifact.ALIGN


def _write(folder: Path, data: bytes, name: str = "bad.kiln") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _flipped(data: bytes, position: int, mask: int = 0x40) -> bytes:
    changed = bytearray(data)
    changed[position] ^= mask
    return bytes(changed)


# ---- damage: every part of the file ------------------------------------------------------

@pytest.mark.parametrize("part, message", [
    ("magic", "is not a Kiln artifact"),
    ("version", "uses .kiln format version"),
    ("flags", "is damaged: its header's flags"),
    ("body size", "truncated|longer than its header says"),
    ("manifest size", "is damaged"),
    ("checksum", "is damaged: its SHA-256 checksum does not match"),
    ("manifest", "is damaged: its SHA-256 checksum does not match"),
    ("module/cpu", "is damaged: its SHA-256 checksum does not match"),
    ("params", "is damaged: its SHA-256 checksum does not match"),
])
def test_a_flipped_byte_in_each_part_is_named_as_damage(saved, layout, tmp_path, part, message):
    data = saved.read_bytes()
    start, end = layout[part]
    for position in {start, (start + end) // 2, end - 1}:
        with pytest.raises(kiln.ArtifactError, match=message) as error:
            artifact.read(_write(tmp_path, _flipped(data, position)))
        assert "not written by this Kiln" not in str(error.value)


@pytest.mark.parametrize("bit", range(16))
def test_a_flipped_manifest_length_says_the_file_is_damaged(saved, tmp_path, bit):
    """The header is outside the checksum: the manifest length is checked against the
    manifest, and a wrong one is damage, not a file from elsewhere."""
    data = bytearray(saved.read_bytes())
    struct.pack_into("<Q", data, 24, HEADER.unpack_from(data)[4] ^ (1 << bit))
    with pytest.raises(kiln.ArtifactError, match="is damaged") as error:
        artifact.read(_write(tmp_path, bytes(data)))
    assert "not written by this Kiln" not in str(error.value)


@FUZZ
@given(position=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_an_artifact_error(saved, tmp_path, position, mask):
    data = saved.read_bytes()
    with pytest.raises(kiln.ArtifactError):
        artifact.read(_write(tmp_path, _flipped(data, position % len(data), mask)))


@FUZZ
@given(length=st.integers(min_value=0))
def test_any_truncation_is_an_artifact_error(saved, tmp_path, length):
    data = saved.read_bytes()
    with pytest.raises(kiln.ArtifactError):
        artifact.read(_write(tmp_path, data[:length % len(data)]))


# ---- crafted manifests: the checksum recomputed, as anyone can --------------------------

def _crafted(saved: Path, folder: Path, edit=None, text: bytes | None = None) -> Path:
    """`saved` with its manifest edited (or replaced by `text`) and a valid checksum."""
    data = saved.read_bytes()
    manifest_size = HEADER.unpack_from(data)[4]
    body = data[HEADER.size:]
    if text is None:
        manifest = json.loads(body[:manifest_size])
        edit(manifest)
        text = json.dumps(manifest).encode()
    body = text + b"\0" * (_padded(len(text)) - len(text)) + body[_padded(manifest_size):]
    header = HEADER.pack(artifact.MAGIC, artifact.FORMAT_VERSION, 0, len(body), len(text),
                         hashlib.sha256(body).digest())
    return _write(folder, header + body)


def _rename_target(manifest: dict, key: object) -> None:
    """Name the CPU module `key` everywhere the manifest names it."""
    manifest["targets"][0]["key"] = key
    manifest["targets"][0]["section"] = f"module/{key}"
    for section in manifest["sections"]:
        if section["name"] == "module/cpu":
            section["name"] = f"module/{key}"


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(manifest: dict) -> None:
        node = manifest
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return edit


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _tree(node_type: object, context: object, children: int = 0) -> str:
    leaf = {"type": None, "context": None, "children_spec": []}
    return json.dumps([1, {"type": node_type, "context": context,
                           "children_spec": [leaf] * children}])


# pytree's own ways to import a module named in the file (torch/utils/_pytree.py).
DEFAULTDICT = {"default_factory_module": "tabnanny", "default_factory_name": "check",
               "dict_context": []}
ENUM_HOOK = json.dumps([{"__enum__": True, "fqn": "tabnanny:check", "name": "x"}])

CRAFTED = {
    "path traversal key": (lambda m: _rename_target(m, "cuda:x/../../NAME"), "not a target key"),
    "NUL in key": (lambda m: _rename_target(m, "cpu\0"), "not a target key"),
    "huge key": (lambda m: _rename_target(m, "cuda:" + "a" * 1_000_000), "not a target key"),
    "key not a string": (lambda m: _rename_target(m, ["cpu"]), "not a target key"),
    "unknown target": (lambda m: _rename_target(m, "tpu"), "unknown target 'tpu'"),
    "unknown cpu arch": (lambda m: _rename_target(m, "cpu:pentium4"), "Kiln knows the cpu"),
    "cpu machine not a name": (_set("targets", 0, "cpu", {"machine": 7, "features": None}),
                               "machine is 7, not a machine kind"),
    "cpu feature not a name": (_set("targets", 0, "cpu", {"machine": "x86_64",
                                                          "features": ["../x"]}),
                               "features is not null or a list"),
    "key not in full": (lambda m: _rename_target(m, "cuda"), "not written out in full"),
    "wrong backend": (_set("targets", 0, "backend", "cuda"), "backend"),
    "foreign driver": (_set("targets", 0, "driver", "cuda"), "driver"),
    "section of another target": (_set("targets", 0, "section", "params"), "section"),
    "no targets": (_set("targets", []), "'targets' is not a non-empty list"),
    "targets not a list": (_set("targets", {"key": "cpu"}), "'targets' is not"),
    "target twice": (lambda m: m["targets"].append(m["targets"][0]), "names a target twice"),
    "nested too deep": (_set("versions", _nested(40)), "nests deeper than"),
    "version a string": (_set("format_version", "1"), "'format_version'"),
    "version a bool": (_set("format_version", True), "'format_version'"),
    "other format": (_set("format", "zip"), "'format'"),
    "other entry": (_set("entry", "forward"), "'entry'"),
    "versions not strings": (_set("versions", {"kiln": 1}), "'versions'"),
    "no signature": (lambda m: m.pop("signature"), "lacks signature"),
    "manifest a list": (lambda m: m.clear() or m.update({"0": []}), "lacks format"),
    "negative offset": (_set("sections", 0, "offset", -64), "offset"),
    "offset past the end": (_set("sections", 0, "offset", 2**40), "offset"),
    "offset a string": (_set("sections", 0, "offset", "0"), "offset"),
    "offset a bool": (_set("sections", 0, "offset", False), "offset"),
    "offset a float": (_set("sections", 0, "offset", 0.0), "offset"),
    "size past the end": (_set("sections", 0, "size", 2**63), "size"),
    "negative size": (_set("sections", 0, "size", -1), "size"),
    "bad digest": (_set("sections", 0, "sha256", "0"), "sha256"),
    "section traversal": (_set("sections", 0, "name", "../../x"), "not one of the sections"),
    "section twice": (lambda m: m["sections"].append(m["sections"][0]), "appears twice"),
    "section missing": (lambda m: m["sections"].pop(0), "lacks module/cpu"),
    "parameters elsewhere": (_set("parameters", "section", "module/cpu"), "'parameters'"),
    "parameters dropped": (_set("parameters", None), "not one of the sections"),
    "input dtype": (_set("signature", "inputs", 0, "dtype", "q4"), "dtype"),
    "input dtype a list": (_set("signature", "inputs", 0, "dtype", ["f32"]), "dtype"),
    "negative size in shape": (_set("signature", "inputs", 0, "shape", [-1, 8]), "shape"),
    "shape a string": (_set("signature", "inputs", 0, "shape", "4x8"), "shape"),
    "scalar output kind": (_set("signature", "scalar_outputs", [[0, "os.system"]]),
                           "scalar_outputs"),
    "scalar output index": (_set("signature", "scalar_outputs", [[5, "int"]]), "scalar_outputs"),
    "written input index": (_set("signature", "written_inputs", [7]), "written_inputs"),
    "mutated input index": (_set("signature", "mutated_inputs", [-1]), "mutated_inputs"),
    "mutated input twice": (_set("signature", "mutated_inputs", [0, 0]), "names an input twice"),
    "output dtype": (_set("signature", "output_dtypes", [{"a": 1}]), "output_dtypes"),
    "out_spec not JSON": (_set("signature", "out_spec", "[1, {"), "not JSON"),
    "out_spec deep": (_set("signature", "out_spec", json.dumps([1, _nested(300)])),
                      "nests deeper"),
    "out_spec too deep for json": (_set("signature", "out_spec", "[" * 100_000), "not JSON"),
    "out_spec a function": (_set("signature", "out_spec", _tree("builtins.eval", "null")),
                            "not an output container"),
    "out_spec defaultdict": (
        _set("signature", "out_spec", _tree("collections.defaultdict", DEFAULTDICT)),
        "not an output container"),
    "out_spec enum hook": (_set("signature", "out_spec", _tree("builtins.dict", ENUM_HOOK, 1)),
                           "mapping has keys"),
    "out_spec namedtuple": (_set("signature", "out_spec",
                                 _tree("collections.namedtuple", "os.system", 1)),
                            "namedtuple"),
    "out_spec leaf count": (_set("signature", "out_spec", _tree("builtins.dict", '["a"]', 2)),
                            "mapping has keys"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_manifest_is_an_artifact_error(saved, tmp_path, case):
    edit, message = CRAFTED[case]
    assert "tabnanny" not in sys.modules
    with pytest.raises(kiln.ArtifactError, match=message) as error:
        artifact.read(_crafted(saved, tmp_path, edit))
    assert len(str(error.value)) < 800, "a crafted field is quoted only in part"
    assert "tabnanny" not in sys.modules, "the manifest made Kiln import a module it names"


@pytest.mark.parametrize("text", [b"[" * 100_000, b'"\xff"', b"[]", b"null", b"\0"])
def test_a_manifest_that_is_not_a_json_object_is_an_artifact_error(saved, tmp_path, text):
    with pytest.raises(kiln.ArtifactError):
        artifact.read(_crafted(saved, tmp_path, text=text))


@FUZZ
@given(position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_a_crafted_byte_in_the_manifest_is_checked_before_use(saved, tmp_path, position, byte):
    """Any one-byte change to the manifest, under a valid checksum: an ArtifactError, or a
    manifest that still gives a module."""
    data = saved.read_bytes()
    text = bytearray(data[HEADER.size:HEADER.size + HEADER.unpack_from(data)[4]])
    text[position % len(text)] = byte
    try:
        loaded = artifact.read(_crafted(saved, tmp_path, text=bytes(text)))
    except kiln.ArtifactError:
        return
    module = module_from(loaded)
    assert module.signature.out_spec.num_leaves == 1


def _resealed(data: bytes) -> bytes:
    """`data` with the header's checksum recomputed over its (changed) body."""
    fields = list(HEADER.unpack_from(data))
    fields[-1] = hashlib.sha256(data[HEADER.size:]).digest()
    return HEADER.pack(*fields) + data[HEADER.size:]


def test_a_crafted_parameter_archive_is_an_artifact_error(mlp, saved, layout, tmp_path):
    """The .irpa index, changed under a valid checksum: IREE's parse errors (IndexError
    among them) become ArtifactError, at load or at the first call."""
    _, inputs = mlp
    data = saved.read_bytes()
    start, _ = layout["params"]
    for position in range(start, start + 64):
        try:
            kiln.load(_write(tmp_path, _resealed(_flipped(data, position, 0x41))))(*inputs)
        except kiln.ArtifactError as e:
            assert "parameter archive is damaged" in str(e) or "cannot start" in str(e)


def test_a_crafted_artifact_that_parses_still_loads(saved, tmp_path):
    """Unknown extra fields are ignored: the checks reject what would be used wrongly."""
    path = _crafted(saved, tmp_path, _set("comment", "hello"))
    assert kiln.load(path).targets == ["llvm-cpu"]


# ---- unpack ---------------------------------------------------------------------------

def test_unpack_of_a_traversal_key_writes_nothing(saved, tmp_path):
    bad = _crafted(saved, tmp_path, CRAFTED["path traversal key"][0])
    out = tmp_path / "a" / "b"
    with pytest.raises(kiln.ArtifactError, match="not a target key"):
        artifact.unpack(bad, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.kiln"]


def test_unpack_checks_the_resolved_path_too(saved, tmp_path, monkeypatch):
    """The second line of defence, should a key ever pass the manifest's checks."""
    bad = _crafted(saved, tmp_path, lambda m: _rename_target(m, "cpu/../../x"))
    monkeypatch.setattr(artifact, "check_manifest", lambda *args: None)
    with pytest.raises(kiln.ArtifactError, match="outside"):
        artifact.unpack(bad, tmp_path / "a" / "b")
    assert not (tmp_path / "x.vmfb").exists() and not (tmp_path / "a" / "x.vmfb").exists()


def test_unpack_refuses_a_folder_with_files_unless_forced(saved, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "cpu.vmfb").write_text("the user's")
    (out / "notes.txt").write_text("the user's")
    assert main(["unpack", str(saved), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiln: error: ") and "is not empty" in err and "--force" in err
    assert (out / "cpu.vmfb").read_text() == "the user's"
    assert main(["unpack", str(saved), "-o", str(out), "--force"]) == 0
    assert (out / "cpu.vmfb").read_bytes() != b"the user's"
    assert (out / "notes.txt").read_text() == "the user's"


def test_unpack_into_an_existing_file_is_one_line(saved, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("the user's")
    assert main(["unpack", str(saved), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiln: error: ") and "it is a file, not a folder" in err
    assert len(err.splitlines()) == 1 and target.read_text() == "the user's"


def test_unpack_into_an_empty_folder_works(saved, tmp_path):
    (tmp_path / "out").mkdir()
    files = artifact.unpack(saved, tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["cpu.vmfb", "manifest.json", "params.irpa"]


# ---- save ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(saved):
    return kiln.load(saved)


@pytest.mark.parametrize("where", ["folder", "empty"])
def test_a_failed_save_leaves_nothing(loaded, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(kiln.ArtifactError, match="it is a folder"):
        loaded.save("folder" if where == "folder" else "")
    assert [p.name for p in tmp_path.rglob("*")] == ["folder"]


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):
        cache.write_atomically(tmp_path / "folder", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["folder"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(loaded, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        loaded.save(tmp_path / "m.kiln")
    finally:
        os.umask(old)
    assert (tmp_path / "m.kiln").stat().st_mode & 0o777 == mode


# ---- caches ----------------------------------------------------------------------------

@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_warned", set())
    return tmp_path / "cache"


KEY = "0" * 64
IR_DAMAGE = {
    "a list": lambda entry: [],
    "stages a number": lambda entry: {**entry, "stages": 1},
    "stage text a number": lambda entry: {**entry, "stages": {"graph": 5}},
    "stats not counts": lambda entry: {**entry, "stats": {"p": {"n": "many"}}},
    "edited IR": lambda entry: {**entry, "stages": {**entry["stages"], "graph": "module {}"}},
    "no checksum": lambda entry: {k: v for k, v in entry.items() if k != "sha256"},
}


@pytest.mark.parametrize("damage", list(IR_DAMAGE))
def test_a_damaged_program_entry_is_dropped(loaded, cache_root, caplog, damage):
    program_cache.store(KEY, loaded, {"graph": "module {\n}"}, {"kiln-graph": {"ops": 3}})
    ir = cache_root / "programs" / f"{KEY}.ir.json"
    stats: dict = {}
    assert program_cache.lookup(KEY, stats) is not None and stats == {"kiln-graph": {"ops": 3}}
    ir.write_text(json.dumps(IR_DAMAGE[damage](json.loads(ir.read_text()))))
    with caplog.at_level(logging.WARNING):
        assert program_cache.lookup(KEY) is None
    assert "is damaged" in caplog.text
    assert sorted((cache_root / "programs").iterdir()) == []


@pytest.mark.parametrize("damage", ["ir missing", "ir a folder", "module a folder"])
def test_an_unreadable_program_entry_is_dropped(loaded, cache_root, caplog, damage):
    program_cache.store(KEY, loaded, {}, {})
    module_path, ir_path = (cache_root / "programs" / f"{KEY}{s}" for s in (".kiln", ".ir.json"))
    path = ir_path if damage.startswith("ir") else module_path
    path.unlink()
    if damage.endswith("folder"):
        path.mkdir()
    with caplog.at_level(logging.WARNING):
        assert program_cache.lookup(KEY) is None
    assert "is damaged" in caplog.text


def test_a_module_entry_that_is_a_folder_is_a_miss(cache_root, caplog):
    (cache_root / "modules" / f"{KEY}.vmfb").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        assert cache.lookup(KEY) is None
    assert "is damaged" in caplog.text


def test_a_damaged_entry_is_rebuilt_by_compile(cache_root, caplog):
    torch.manual_seed(7)
    model, x = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval(), torch.randn(1, 3)
    kiln.compile(model, (x,))
    (ir,) = (cache_root / "programs").glob("*.ir.json")
    ir.write_text('{"stages": [], "stats": 3}')
    with caplog.at_level(logging.WARNING):
        torch.testing.assert_close(kiln.compile(model, (x,))(x), model(x))
    assert "is damaged" in caplog.text
    assert "stages" in json.loads(ir.read_text()) and "sha256" in ir.read_text()


@pytest.mark.parametrize("setting", ["a file", "under a file"])
def test_an_unusable_cache_folder_compiles_without_it(tmp_path, monkeypatch, caplog, setting):
    (tmp_path / "file").write_text("not a folder")
    root = tmp_path / "file" if setting == "a file" else tmp_path / "file" / "cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(root))
    monkeypatch.setattr(cache, "_warned", set())
    assert "KILN_CACHE_DIR" in _compile_warning_without_cache(caplog, seed=8)


def test_an_unwritable_cache_folder_compiles_without_it(cache_root, monkeypatch, caplog):
    """Root ignores permissions: a write that fails stands in for a read-only folder."""
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(cache, "write_atomically", refuse)
    assert "Permission denied" in _compile_warning_without_cache(caplog, seed=9)


def _compile_warning_without_cache(caplog, seed: int) -> str:
    """Compile a fresh small model, check it matches eager, and return the one warning that
    it compiled without the cache."""
    torch.manual_seed(seed)
    model, x = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval(), torch.randn(1, 3)
    with caplog.at_level(logging.WARNING):
        torch.testing.assert_close(kiln.compile(model, (x,))(x), model(x))
    warnings = [r.getMessage() for r in caplog.records if "without the cache" in r.getMessage()]
    assert len(warnings) == 1
    return warnings[0]


def test_cache_commands_on_an_unusable_folder_are_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "file"))
    for command in ("info", "clear"):
        assert main(["cache", command]) == 1
        err = capsys.readouterr().err
        assert err.startswith("kiln: error: cannot use the cache folder")
        assert "point KILN_CACHE_DIR at a folder" in err


# ---- command lines ---------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("-1x8", "sizes 0 or more"),
    ("4x-8:f32", "sizes 0 or more"),
    ("4xeight", "is not SIZExSIZE"),
    ("100000x100000x100000", "GiB of random values"),
    ("4x8:q4", "unknown dtype"),
    ("@{npz}", "not one array"),
    ("@{strings}", "which torch cannot take"),
    ("@{folder}", "cannot read --input"),
    ("@{text}", "cannot read --input"),
])
def test_bad_run_inputs_are_one_line(saved, tmp_path, capsys, spec, message):
    np.savez(tmp_path / "x.npz", a=np.zeros(3), b=np.ones(3))
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    (tmp_path / "t.txt").write_text("not numpy")
    spec = spec.format(npz=tmp_path / "x.npz", strings=tmp_path / "s.npy", folder=tmp_path,
                       text=tmp_path / "t.txt")
    assert main(["run", str(saved), f"--input={spec}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiln: error: ") and message in err and len(err.splitlines()) == 1


def _opt(capsys, *argv: str) -> tuple[int, str]:
    code = opt.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mlir", "cannot read"),
    (lambda d: d, "cannot read"),
    (lambda d: _write(d, bytes(range(256)) * 4, "binary.mlir"), "is not MLIR text"),
    (lambda d: _write(d, b"func.func @f() {\0}", "nul.mlir"), "is not MLIR text"),
    (lambda d: _write(d, _regions(3000), "deep.mlir"), "3001 levels deep"),
])
def test_kiln_opt_on_a_file_it_cannot_take_is_one_line(tmp_path, capsys, make, message):
    code, err = _opt(capsys, make(tmp_path))
    assert code == 1 and err.startswith("kiln-opt: error: ") and message in err
    assert len(err.splitlines()) == 1


def _regions(depth: int) -> bytes:
    """A function with `depth` nested regions: MLIR's parser overflows its stack on it."""
    return ("func.func @f() {\n" + "scf.execute_region {\n" * depth + "scf.yield\n"
            + "}\nscf.yield\n" * (depth - 1) + "}\nreturn\n}\n").encode()


def test_kiln_opt_takes_regions_nested_as_deep_as_models_go(tmp_path, capsys):
    code, err = _opt(capsys, _write(tmp_path, _regions(50), "deep.mlir"))
    assert code == 0, err


def test_kiln_opt_ignores_brackets_in_strings_and_comments(tmp_path, capsys):
    text = ('func.func @f() attributes {s = "' + "{" * 5000 + '"} {\n// ' + "(" * 5000
            + "\n  return\n}\n")
    code, err = _opt(capsys, _write(tmp_path, text.encode(), "strings.mlir"))
    assert code == 0, err


@pytest.mark.parametrize("content, message", [
    (b"not a torch file", "is not a torch.save file"),
    (None, "holds a list, not a {qualname: tensor} dict"),
])
def test_kiln_opt_params_that_are_not_weights_are_one_line(tmp_path, capsys, content, message):
    params = tmp_path / "w.pt"
    if content is None:
        torch.save([torch.ones(2)], params)
    else:
        params.write_bytes(content)
    mlir = _write(tmp_path, b"func.func @f() {\n  return\n}\n", "f.mlir")
    code, err = _opt(capsys, mlir, "--kiln-fold-params", "--params", params)
    assert code == 1 and err.startswith("kiln-opt: error: --params") and message in err
    assert len(err.splitlines()) == 1


def test_kiln_opt_says_when_fold_params_has_no_weights(tmp_path, capsys):
    mlir = _write(tmp_path, b'func.func @f() -> !torch.vtensor<[2],f32> {\n'
                  b'  %w = "kiln.param"() {qualname = "w"} : () -> !torch.vtensor<[2],f32>\n'
                  b'  return %w : !torch.vtensor<[2],f32>\n}\n', "w.mlir")
    code, err = _opt(capsys, mlir, "--kiln-fold-params")
    assert code == 0 and "warning" in err and "--params" in err
