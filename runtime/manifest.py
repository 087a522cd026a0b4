"""The `.kiln` manifest's schema: every field checked before any of them is used.

The body's SHA-256 proves only that nothing changed since someone wrote the file, and anyone
can recompute it: a crafted manifest may name any target, section, offset or output type.
`check` accepts what `artifact.save` writes and nothing else, so that `kiln unpack` makes
file names only of known target keys and `Signature.from_json` rebuilds only plain output
containers (pytree's `defaultdict` node imports a module the file names, and its enum hook
does so for any node's context).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from torch.utils import _pytree as pytree

from kiln.errors import TargetError
from kiln.runtime.targets import ResolvedTarget, resolve
from kiln.shape_guards import ShapeGuards
from kiln.spec import NAME_DTYPES

FORMAT = "kiln-artifact"
ENTRY = "main"          # the program's entry function, which every manifest names
MODULE_PREFIX = "module/"
PARAMS_SECTION = "params"
# `name` or `name:arch` (sm_80, gfx942): short, and no path separator, since `kiln unpack`
# makes file names of target keys.
_TARGET_KEY = re.compile(r"[a-z]{1,16}(:[A-Za-z0-9_][A-Za-z0-9_-]{0,31})?")
_CPU_NAME = re.compile(r"[a-z0-9_.]{1,32}")   # a machine kind or a /proc/cpuinfo flag
MAX_CPU_FEATURES = 256
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_DEPTH = 16          # JSON nesting of the manifest (Kiln writes 5 levels)
MAX_TREE_DEPTH = 64     # nesting of the output tree: containers within containers
MAX_DIM = 2**63 - 1     # an int64 dimension
# Signature.scalar_outputs kinds (spec.py turns each into this Python type).
SCALAR_KINDS = ("int", "float", "bool")
# The output containers Signature.from_json may rebuild, by pytree's serialized name, and
# what their context holds: "none" (JSON null), "keys" (a JSON list of scalar keys, one per
# child) or "name" (a registered namedtuple's name, looked up, never imported).
CONTAINERS = {
    "builtins.tuple": "none",
    "builtins.list": "none",
    "torch.fx.immutable_collections.immutable_list": "none",
    "builtins.dict": "keys",
    "collections.OrderedDict": "keys",
    "torch.fx.immutable_collections.immutable_dict": "keys",
    "collections.namedtuple": "name",
}


class ManifestError(ValueError):
    """A manifest field that `artifact.save` would not have written; the message says which."""


def check(manifest: object, format_version: int, entry: str, scope: str, room: int) -> None:
    """Raise ManifestError unless `manifest` is one `artifact.save` could have written: for
    `format_version`, entry function `entry`, parameter scope `scope`, and sections that fit
    in the `room` bytes after it."""
    _require(_depth(manifest) <= MAX_DEPTH, f"it nests deeper than {MAX_DEPTH} levels")
    fields = _object(manifest, "the manifest", ("format", "format_version", "entry", "signature",
                                                "targets", "parameters", "versions", "sections"))
    _require(fields["format"] == FORMAT, f"'format' is {_show(fields['format'])}, not '{FORMAT}'")
    _require(type(fields["format_version"]) is int and fields["format_version"] == format_version,
             f"'format_version' is {_show(fields['format_version'])}, not {format_version}")
    _require(fields["entry"] == entry, f"'entry' is {_show(fields['entry'])}, not '{entry}'")
    _strings(fields["versions"], "'versions'", mapping=True)
    _signature(fields["signature"])
    keys = _targets(fields["targets"])
    expected = [MODULE_PREFIX + key for key in keys]
    if fields["parameters"] is not None:
        _require(fields["parameters"] == {"section": PARAMS_SECTION, "scope": scope},
                 f"'parameters' is {_show(fields['parameters'])}, not "
                 f"{{'section': '{PARAMS_SECTION}', 'scope': '{scope}'}} or null")
        expected.append(PARAMS_SECTION)
    _sections(fields["sections"], expected, room)


def _target(key: object, where: str = "a target key") -> ResolvedTarget:
    """The target a manifest's key names; ManifestError unless it is one Kiln writes
    (`ResolvedTarget.key` of a known target: 'cpu', 'cuda:sm_80', ...)."""
    _require(isinstance(key, str) and _TARGET_KEY.fullmatch(key) is not None,
             f"{where} {_show(key)} is not a target key such as 'cpu' or 'cuda:sm_80'")
    try:
        resolved = resolve(key)
    except TargetError as e:
        raise ManifestError(f"{where} '{key}': {e}") from None
    _require(resolved.key == key, f"{where} '{key}' is not written out in full "
             f"('{resolved.key}')")
    return resolved


def _targets(targets: object) -> list[str]:
    """The keys of a valid, non-empty target list without repeats."""
    _require(isinstance(targets, list) and targets, "'targets' is not a non-empty list")
    keys = []
    for index, entry in enumerate(targets):
        where = f"targets[{index}]"
        entry = _object(entry, where, ("key", "backend", "driver", "section", "iree_flags"))
        resolved = _target(entry["key"], f"{where}.key")
        _require(entry["backend"] == resolved.target.backend,
                 f"{where}.backend is {_show(entry['backend'])}, not "
                 f"'{resolved.target.backend}'")
        _require(entry["driver"] in resolved.drivers, f"{where}.driver is "
                 f"{_show(entry['driver'])}, not one of {', '.join(resolved.drivers)}")
        _require(entry["section"] == MODULE_PREFIX + resolved.key, f"{where}.section is "
                 f"{_show(entry['section'])}, not '{MODULE_PREFIX}{resolved.key}'")
        _strings(entry["iree_flags"], f"{where}.iree_flags")
        _cpu(entry.get("cpu"), resolved, f"{where}.cpu")
        if "longest_loop" in entry:
            loop = entry["longest_loop"]
            _require(loop is None or (type(loop) is int and 0 <= loop <= MAX_DIM),
                     f"{where}.longest_loop is {_show(loop)}, not null or a count")
        keys.append(resolved.key)
    _require(len(set(keys)) == len(keys), f"'targets' names a target twice ({', '.join(keys)})")
    return keys


def _cpu(cpu: object, target: ResolvedTarget, where: str) -> None:
    """What a CPU target's code needs ({"machine", "features": [...] or null}); absent or
    null (older Kiln, or not CPU code) is allowed."""
    if cpu is None:
        return
    _require(target.target.runs_on_host_cpu, f"{where} is given for {target.key}, which is "
             "not CPU code")
    fields = _object(cpu, where, ("machine", "features"))
    _require(isinstance(fields["machine"], str) and _CPU_NAME.fullmatch(fields["machine"]),
             f"{where}.machine is {_show(fields['machine'])}, not a machine kind like 'x86_64'")
    features = fields["features"]
    _require(features is None or (
        isinstance(features, list) and len(features) <= MAX_CPU_FEATURES
        and all(isinstance(f, str) and _CPU_NAME.fullmatch(f) for f in features)),
        f"{where}.features is not null or a list of CPU feature names like 'avx2'")


def _sections(sections: object, expected: list[str], room: int) -> None:
    """Each of `expected` once, and nothing else, each inside the `room` bytes."""
    _require(isinstance(sections, list), "'sections' is not a list")
    names = []
    for index, entry in enumerate(sections):
        where = f"sections[{index}]"
        entry = _object(entry, where, ("name", "offset", "size", "sha256"))
        _require(entry["name"] in expected and entry["name"] not in names,
                 f"{where}.name {_show(entry['name'])} is not one of the sections the targets "
                 f"and parameters name ({', '.join(expected)}), or appears twice")
        offset = _count(entry["offset"], f"{where}.offset", room)
        _count(entry["size"], f"{where}.size", room - offset)
        _require(isinstance(entry["sha256"], str) and _SHA256.fullmatch(entry["sha256"]),
                 f"{where}.sha256 is {_show(entry['sha256'])}, not 64 hex digits")
        names.append(entry["name"])
    missing = [name for name in expected if name not in names]
    _require(not missing, f"'sections' lacks {', '.join(missing)}")


def _signature(signature: object) -> None:
    """`Signature.to_json`'s fields (spec.py): the optional ones may be missing (older
    Kiln) or null (not known)."""
    fields = _object(signature, "'signature'", ("inputs", "out_spec", "scalar_outputs"))
    inputs = fields["inputs"]
    _require(isinstance(inputs, list), "'signature.inputs' is not a list")
    for index, spec in enumerate(inputs):
        _input(spec, f"signature input {index}")
    leaves = _output_tree(fields["out_spec"])
    _require(isinstance(fields["scalar_outputs"], list),
             "'signature.scalar_outputs' is not a list")
    _list_of(fields["scalar_outputs"], "signature.scalar_outputs",
             lambda pair: isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int
             and 0 <= pair[0] < leaves and pair[1] in SCALAR_KINDS,
             f"[output index, {' | '.join(SCALAR_KINDS)}]")
    tensors = sum(1 for spec in inputs if "scalar" not in spec)
    for name in ("written_inputs", "mutated_inputs"):  # the runtime copies into the latter
        _list_of(signature.get(name), f"signature.{name}",
                 lambda i: type(i) is int and 0 <= i < tensors, "tensor input indices")
        _require(len(set(signature.get(name) or ())) == len(signature.get(name) or ()),
                 f"'signature.{name}' names an input twice")
    _list_of(signature.get("output_dtypes"), "signature.output_dtypes",
             lambda d: d is None or (isinstance(d, str) and d in NAME_DTYPES),
             "dtype names (null where unknown)")
    _list_of(signature.get("structseqs"), "signature.structseqs",
             lambda name: name is None or isinstance(name, str), "result type names")
    _shape_guards(signature.get("shape_guards"), inputs)


def _shape_guards(guards: object, inputs: list) -> None:
    """Bounds [input, dim, low, high|null] and conditions shape_guards.py accepts, naming
    only dims the inputs have."""
    if guards is None:
        return
    fields = _object(guards, "'signature.shape_guards'", ("bounds", "conditions"))
    _list_of(fields["bounds"], "signature.shape_guards.bounds",
             lambda b: isinstance(b, list) and len(b) == 4
             and all(type(v) is int and 0 <= v <= MAX_DIM for v in b[:3])
             and (b[3] is None or (type(b[3]) is int and b[2] <= b[3] <= MAX_DIM)),
             "[input, dim, low, high] bounds")
    _list_of(fields["conditions"], "signature.shape_guards.conditions",
             lambda c: isinstance(c, str), "conditions")
    try:
        ShapeGuards.from_json(fields).within(
            len(inputs), [None if "scalar" in spec else len(spec["shape"]) for spec in inputs])
    except ValueError as e:
        raise ManifestError(f"'signature.shape_guards': {e}") from None


def _list_of(value: object, where: str, valid: Callable[[object], bool], what: str) -> None:
    """`value` as null or a list of items `valid` accepts."""
    if value is None:
        return
    _require(isinstance(value, list), f"'{where}' is {_show(value)}, not a list of {what}")
    for item in value:
        _require(valid(item), f"'{where}' holds {_show(item)}, not one of {what}")


def _input(spec: object, where: str) -> None:
    """A tensor spec {shape, dtype}, or a scalar the program was specialized to."""
    if isinstance(spec, dict) and "scalar" in spec:
        return  # any JSON value: calls must pass this same value
    fields = _object(spec, where, ("shape", "dtype"))
    shape, dtype = fields["shape"], fields["dtype"]
    _require(isinstance(shape, list) and all(d is None or (type(d) is int and 0 <= d <= MAX_DIM)
                                             for d in shape),
             f"{where} has shape {_show(shape)}, not a list of sizes (null where dynamic)")
    _require(isinstance(dtype, str) and dtype in NAME_DTYPES,
             f"{where} has dtype {_show(dtype)}, not one of {', '.join(NAME_DTYPES)}")


def _output_tree(text: object) -> int:
    """The number of leaves of a serialized output tree (pytree's JSON, protocol 1) made of
    CONTAINERS only."""
    _require(isinstance(text, str), "'signature.out_spec' is not a string")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ManifestError("'signature.out_spec' is not JSON") from None
    _require(_depth(data) <= 3 * MAX_TREE_DEPTH, "'signature.out_spec' nests deeper than "
             f"{MAX_TREE_DEPTH} containers")
    _require(isinstance(data, list) and len(data) == 2 and type(data[0]) is int and data[0] == 1,
             "'signature.out_spec' is not [1, tree] (pytree's protocol 1)")
    leaves, pending = 0, [data[1]]
    while pending:
        node = _object(pending.pop(), "a node of 'signature.out_spec'",
                       ("type", "context", "children_spec"))
        children = node["children_spec"]
        _require(isinstance(children, list), "an 'out_spec' node's children are not a list")
        if node["type"] is None:
            _require(node["context"] is None and not children,
                     "an 'out_spec' leaf has a context or children")
            leaves += 1
            continue
        _require(isinstance(node["type"], str) and node["type"] in CONTAINERS,
                 f"'signature.out_spec' holds a {_show(node['type'])}, which is not an output "
                 f"container Kiln writes ({', '.join(CONTAINERS)})")
        _context(CONTAINERS[node["type"]], node["context"], len(children))
        pending.extend(children)
    return leaves


def _context(form: str, context: object, children: int) -> None:
    """A container's context as CONTAINERS says it must be, for `children` children."""
    if form == "name":
        typ = (pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE.get(context) if isinstance(context, str)
               else None)
        _require(isinstance(typ, type) and issubclass(typ, tuple) and hasattr(typ, "_fields")
                 and len(typ._fields) == children,
                 f"'signature.out_spec' names the namedtuple {_show(context)}, which is not a "
                 f"registered namedtuple of {children} fields")
        return
    if form == "none":
        _require(context == "null", f"an 'out_spec' sequence has context {_show(context)}, "
                 "not null")
        return
    try:
        keys = json.loads(context) if isinstance(context, str) else None
    except (ValueError, RecursionError):
        keys = None
    _require(isinstance(keys, list) and len(keys) == children
             and all(k is None or isinstance(k, str | int | float | bool) for k in keys),
             f"an 'out_spec' mapping has keys {_show(context)}, not a list of {children} keys")


def _object(value: object, where: str, keys: tuple[str, ...]) -> dict:
    """`value` as a JSON object holding at least `keys`."""
    _require(isinstance(value, dict), f"{where} is not a JSON object")
    missing = [key for key in keys if key not in value]
    _require(not missing, f"{where} lacks {', '.join(missing)}")
    return value


def _count(value: object, where: str, limit: int) -> int:
    """`value` as an integer from 0 to `limit` (JSON's true and false are not integers)."""
    _require(type(value) is int and 0 <= value <= limit,
             f"{where} is {_show(value)}, not an integer from 0 to {limit} (the bytes after "
             "the manifest)")
    return value


def _strings(value: object, where: str, mapping: bool = False) -> None:
    """`value` as a list of strings, or with `mapping` an object of string values."""
    items = value.values() if mapping and isinstance(value, dict) else value
    ok = isinstance(value, dict) if mapping else isinstance(value, list)
    _require(ok and all(isinstance(item, str) for item in items),
             f"{where} is {_show(value)}, not {'an object' if mapping else 'a list'} of strings")


def _depth(value: object) -> int:
    """How deep JSON lists and objects nest in `value`, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1)
                           for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _show(value: object, limit: int = 60) -> str:
    """`value` for a message, cut short: a crafted field may be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _require(condition: object, problem: str) -> None:
    if not condition:
        raise ManifestError(problem)
