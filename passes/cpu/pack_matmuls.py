"""`kiln-pack-matmuls`: f32 matmuls (and 1x1 convolutions) packed as Kiln chooses, 6x16 tiles.

IREE's data tiling packs a matmul's operands into tiles and multiplies them with `mmt4d`,
but on AVX2 it picks 8x8x1 tiles (its f32 microkernel has no other): 8 accumulator
registers, 9 loads for 8 FMAs, load-bound on Zen 3. A 6x16 tile keeps 12 accumulators
(6 rows of two 8-wide registers) and needs 8 loads for 12 FMAs, the shape hand-written
BLAS kernels use on AVX2. IREE has no flag to choose the tile, so this pass writes the
packed form itself before IREE sees the matmul: `linalg.pack` of both operands (the
constant weights' pack is hoisted out of the call by IREE), `linalg.mmt4d`, `linalg.unpack`.
IREE's code generator then writes the 6x16x1 kernel (its `mmt4d` microkernel must be off:
it has no 6x16 tile and falls back to generic C, 40x slower; `runtime/targets.py`).

Between two packed matmuls (a feed-forward block: bias, activation, next matmul) the
unpack and the next matmul's pack would be a fused dispatch IREE writes badly for 6-row
tiles (4.5 ms against 0.8 ms for 8-row ones at 128x3072). So the elementwise generics of
such a chain run on the packed tiles (a bias becomes 16-wide column tiles), and the unpack
+ pack pair becomes a transpose of each 6x16 tile. A chain that ends anywhere else keeps
its generics after the unpack, where `kiln-form-mmt4d-dispatches` puts them into the
mmt4d's dispatch (IREE itself never fuses consumers into an `mmt4d` dispatch).

Measured (`benchmarks/flags.md`): BERT-base's 128x768x3072 matmul, the mmt4d dispatch alone
4.5 ms against 6.2-6.4 ms for IREE's 8x8x1 microkernel; whole models in interleaved A/B
against the 8x8x1 microkernel build: BERT-base 0.76-0.86, GPT-2 small 0.92.

A one-image 1x1 convolution with a medium image is the same matmul, filters x pixels: it is
packed from its NCHW operands and unpacked into NCHW (the filter's pack is a constant). Its
bias and activation then join the mmt4d's dispatch through `kiln-form-mmt4d-dispatches`.

Runs right after torch-mlir's lowering (and `linalg-fold-unit-extent-dims`, which makes the
[1, S, D] epilogues 2D), before Kiln's Winograd passes, whose band and batch matmuls were
measured in IREE's form. Part of `kiln-codegen-cpu`; static shapes with at least MIN_SIZE rows,
columns and depth (narrower matmuls keep IREE's narrow tiles).
"""

from __future__ import annotations

from torch_mlir import ir

from kiln.dialects.kiln import walk
from kiln.passes.cpu.tiles import DEFAULT, Tile
from kiln.passes.graph_values import owner_op, users
from kiln.passes.linalg_ir import f32_shape, f32_tensor, indexing_maps, static_f32_shape
from kiln.passes.registry import PassContext, kiln_pass
from kiln.passes.splice import inline_function, splice_function

PASS = "kiln-pack-matmuls"
MIN_SIZE = 16
# 1x1 convolutions packed: ResNet-50's 28x28 and 14x14 stages. At 56x56 the activation's
# pack and the unpack cost more than the 6x16 tiles save (whole model 1.18x slower); at 7x7
# the 49 pixels pad to 64 columns, and IREE's 8x8 tiles were as fast (benchmarks/flags.md).
MIN_PIXELS, MAX_PIXELS = 64, 1024
_IDENTITY_2D = "(d0, d1) -> (d0, d1)"
_PACKED_MAPS = {   # a generic's operands once it runs on [M1, N1, tile.m, tile.n] tiles
    "tiles": "(d0, d1, d2, d3) -> (d0, d1, d2, d3)",
    "column": "(d0, d1, d2, d3) -> (d1, d3)",   # the vector reshaped to [N1, tile.n]
    "scalar": "(d0, d1, d2, d3) -> ()",
}
# A matmul's default maps (the attribute is always present; transposed forms differ).
_PLAIN_MAPS = ("[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, "
               "affine_map<(d0, d1, d2) -> (d0, d1)>]")


@kiln_pass(PASS)
def pack_matmuls(module: ir.Operation, ctx: PassContext, *, tile: str = DEFAULT) -> None:
    """Rewrite f32 `linalg.matmul`s as pack + `tile`x1 `linalg.mmt4d` + unpack (CPU),
    then keep the results packed through elementwise epilogues and into the next matmul.

    Option `tile`: M0xN0, the register tile (default 6x16; `tiles.py`)."""
    _pack_all(module, ctx, Tile.parse(tile))


def _pack_all(module: ir.Operation, ctx: PassContext, tile: Tile) -> None:
    for op in list(walk(module)):
        if op.name == "linalg.matmul" and _packable(op):
            _pack_matmul(tile, op)
            ctx.count(PASS, f"matmuls packed {tile}")
        elif op.name == "linalg.conv_2d_nchw_fchw" and (shape := _pointwise_conv_shape(tile, op)):
            _pack_pointwise_conv(tile, op, *shape)
            ctx.count(PASS, f"1x1 convolutions packed {tile}")
    # One walk in program order moves a whole chain: each move puts a new unpack right after
    # the moved generic, where the chain's next generic (later in the block) finds it.
    for op in list(walk(module)):
        if op.name == "linalg.generic" and _push_unpack_below(tile, op):
            ctx.count(PASS, "elementwise ops computed in the packed layout")
    for op in list(walk(module)):
        if op.name == "linalg.pack" and _repack_as_transpose(tile, op):
            ctx.count(PASS, "unpack + pack pairs turned into a transpose")


def _packable(op: ir.Operation) -> bool:
    """A plain f32 matmul of at least MIN_SIZE columns and depth, and rows (which may be
    dynamic: a batch or a sequence; the weights' columns and depth are what tiles pack)."""
    if str(op.attributes["indexing_maps"]) != _PLAIN_MAPS:
        return False
    shapes = [f32_shape(v.type) for v in op.operands[:3]]
    if any(s is None or len(s) != 2 for s in shapes):
        return False
    (m, k), (k2, n), _ = shapes
    return None not in (k, k2, n) and min(m or MIN_SIZE, n, k) >= MIN_SIZE


def _pack_matmul(tile: Tile, op: ir.Operation) -> None:
    (m, k), (_, n) = (f32_shape(v.type) for v in op.operands[:2])
    fill = owner_op(op.operands[2])
    from_fill = fill is not None and fill.name == "linalg.fill"
    init = fill.operands[0] if from_fill else op.operands[2]
    splice_function(op, _packed_matmul(tile, m, k, n, from_fill),
                    [op.operands[0], op.operands[1], init])
    if from_fill:
        _erase_unused(fill)   # the [M, N] zeros, now packed


def _pointwise_conv_shape(tile: Tile, op: ir.Operation) -> tuple[int, ...] | None:
    """(Ci, H, W, Co, OH, OW, stride) of a one-image 1x1 f32 convolution that accumulates
    into a fill, with MIN_PIXELS to MAX_PIXELS output pixels of which padding to whole
    16-column tiles adds at most 1/16, else None."""
    x, w, out = (static_f32_shape(v.type) for v in op.operands[:3])
    fill = owner_op(op.operands[2])
    if (x is None or w is None or out is None or x[0] != 1 or w[2:] != [1, 1]
            or fill is None or fill.name != "linalg.fill"):
        return None
    strides = [int(s) for s in ir.DenseIntElementsAttr(op.attributes["strides"])]
    if strides[0] != strides[1]:
        return None
    (_, ci, h, w_), (co, _, _, _), (_, _, oh, ow) = x, w, out
    pixels = oh * ow
    padding = -pixels % tile.n
    if (min(co, ci) < MIN_SIZE or not MIN_PIXELS <= pixels <= MAX_PIXELS
            or padding * tile.n > pixels):
        return None
    return ci, h, w_, co, oh, ow, strides[0]


def _pack_pointwise_conv(tile: Tile, op: ir.Operation, ci: int, h: int, w: int, co: int, oh: int, ow: int,
                         stride: int) -> None:
    fill = owner_op(op.operands[2])
    splice_function(op, _packed_pointwise_conv(tile, ci, h, w, co, oh, ow, stride),
                    [op.operands[0], op.operands[1], fill.operands[0]])
    _erase_unused(fill)


def _tile_unpack(tile: Tile, value: ir.Value) -> ir.Operation | None:
    """The `linalg.unpack` this pass wrote (6x16 tiles, rows and columns in order) that
    defines `value`, if it unpacks whole column tiles (no padding columns to drop)."""
    op = owner_op(value)
    if (op is None or op.name != "linalg.unpack" or "outer_dims_perm" in op.attributes
            or str(op.attributes["inner_dims_pos"]) != "array<i64: 0, 1>"
            or str(op.attributes["static_inner_tiles"]) != tile.result_attr):
        return None
    shape = f32_shape(value.type)
    return op if shape is not None and shape[1] is not None and shape[1] % tile.n == 0 else None


def _push_unpack_below(tile: Tile, op: ir.Operation) -> bool:
    """Compute an all-parallel 2D generic on the packed tiles of its operand that a tile
    unpack produces (used only there), and unpack its result instead. Its other operands may
    be per-column vectors (a bias) or scalars; its accumulator must be unread."""
    if not (shape := _epilogue_shape(op)):
        return False
    *inputs, _ = list(op.operands)
    maps = indexing_maps(op)
    i_unpack = next((i for i, (v, map_) in enumerate(zip(inputs, maps))
                     if map_ == _IDENTITY_2D and _tile_unpack(tile, v) is not None
                     and len(_computing_users(v)) == 1), None)
    if i_unpack is None or not _ends_in_left_pack(tile, op.results[0]):
        return False
    others = [i for i in range(len(inputs)) if i != i_unpack]
    kinds = {i: _operand_kind(inputs[i], maps[i], shape[1]) for i in others}
    if None in kinds.values():
        return False
    kinds[i_unpack] = "tiles"
    unpack = owner_op(inputs[i_unpack])
    tiles = unpack.operands[0]
    m, n = shape
    packed = str(tiles.type)
    lines, returned, types = [], [], []
    for j, i in enumerate(others):
        if kinds[i] == "column":
            lines.append(f"%v{j} = tensor.expand_shape %a{j} [[0, 1]] output_shape "
                         f"[{n // tile.n}, {tile.n}] : tensor<{n}xf32> into "
                         f"tensor<{n // tile.n}x{tile.n}xf32>")
            returned.append(f"%v{j}")
            types.append(f"tensor<{n // tile.n}x{tile.n}xf32>")
        else:
            returned.append(f"%a{j}")
            types.append(str(inputs[i].type))
    # The rows, when dynamic: the size the unpack's `tensor.empty` destination was made with.
    rows = [] if m is not None else list(owner_op(unpack.operands[1]).operands)
    if m is None:
        lines += ["%c0 = arith.constant 0 : index", f"%m1 = tensor.dim %tiles, %c0 : {packed}"]
    lines.append(f"%empty = tensor.empty({'%m1' if m is None else ''}) : {packed}")
    arguments = ", ".join([*(f"%a{j}: {inputs[i].type}" for j, i in enumerate(others)),
                           f"%tiles: {packed}"])
    text = (f"func.func private @operands({arguments}) -> ({', '.join([*types, packed])}) {{\n"
            + "".join(f"    {line}\n" for line in lines)
            + f"    return {', '.join([*returned, '%empty'])} : {', '.join([*types, packed])}\n}}")
    *new_others, empty = inline_function(text, [*(inputs[i] for i in others), tiles], op)
    op.operands[i_unpack] = tiles
    for i, value in zip(others, new_others):
        op.operands[i] = value
    op.operands[len(inputs)] = empty
    new_maps = [_PACKED_MAPS[kinds[i]] for i in range(len(inputs))] + [_PACKED_MAPS["tiles"]]
    op.attributes["indexing_maps"] = ir.Attribute.parse(
        "[" + ", ".join(f"affine_map<{map_}>" for map_ in new_maps) + "]")
    op.attributes["iterator_types"] = ir.Attribute.parse(
        "[" + ", ".join(["#linalg.iterator_type<parallel>"] * 4) + "]")
    result = op.results[0]
    result.set_type(tiles.type)
    out = f32_tensor(m, n)
    (unpacked,) = inline_function(
        f"func.func private @unpack(%t: {packed}{', %m: index' if rows else ''}) "
        f"-> {out} {{\n"
        f"    %e = tensor.empty({'%m' if rows else ''}) : {out}\n"
        f"    %u = linalg.unpack %t inner_dims_pos = [0, 1] inner_tiles = [{tile.m}, {tile.n}] "
        f"into %e : {packed} -> {out}\n"
        f"    return %u : {out}\n}}", [result, *rows], op, after=True)
    result.replace_all_uses_except(unpacked, owner_op(unpacked))
    _erase_unused(unpack)
    return True


def _epilogue_shape(op: ir.Operation) -> list[int | None] | None:
    """[M, N] for a one-result, all-parallel 2D f32 generic that never reads its
    accumulator, else None (M None: dynamic)."""
    block = op.regions[0].blocks[0]
    if (len(op.results) != 1 or list(block.arguments[-1].uses)
            or any("parallel" not in str(t) for t in ir.ArrayAttr(op.attributes["iterator_types"]))
            or len(op.operands) != len(indexing_maps(op))
            or indexing_maps(op)[-1] != _IDENTITY_2D):
        return None
    shape = f32_shape(op.results[0].type)
    return shape if shape is not None and len(shape) == 2 and shape[1] is not None else None


def _is_left_pack(tile: Tile, op: ir.Operation) -> bool:
    """Whether `op` is the left-operand pack this pass writes (6x1 tiles, no permutation)."""
    return ("outer_dims_perm" not in op.attributes
            and str(op.attributes["inner_dims_pos"]) == "array<i64: 0, 1>"
            and str(op.attributes["static_inner_tiles"]) == f"array<i64: {tile.m}, 1>")


def _ends_in_left_pack(tile: Tile, value: ir.Value) -> bool:
    """Whether `value` reaches a left-operand tile pack through single-use elementwise
    generics: only then does computing them packed save work (the pack becomes a transpose);
    otherwise IREE fuses them into the unpack's dispatch, which is cheaper than their own."""
    while len(uses := _computing_users(value)) == 1:
        (user,) = uses
        if user.name == "linalg.pack":
            return _is_left_pack(tile, user)
        if user.name != "linalg.generic" or not (shape := _epilogue_shape(user)):
            return False
        *inputs, _ = list(user.operands)
        if any((map_ != _IDENTITY_2D) if v == value else _operand_kind(v, map_, shape[1]) is None
               for v, map_ in zip(inputs, indexing_maps(user))):
            return False
        value = user.results[0]
    return False


def _operand_kind(value: ir.Value, map_: str, n: int) -> str | None:
    """How a generic's other operand reads the [M, N] iteration space: "column" (a vector of
    N, one value a column) or "scalar" (rank 0); None for anything else."""
    shape = static_f32_shape(value.type)
    if shape == [n] and map_ == "(d0, d1) -> (d1)":
        return "column"
    if shape == [] and map_ == "(d0, d1) -> ()":
        return "scalar"
    return None


def _repack_as_transpose(tile: Tile, op: ir.Operation) -> bool:
    """A left-operand pack (6x1 tiles) of a tile unpack: the same numbers as the unpacked
    tiles with each 6x16 tile transposed, so a transpose and reshapes replace both."""
    unpack = _tile_unpack(tile, op.operands[0])
    if unpack is None or not _is_left_pack(tile, op):
        return False
    tiles = unpack.operands[0]
    m1, n1, _, _ = f32_shape(tiles.type)
    n = n1 * tile.n
    t4, t3 = f32_tensor(m1, n1, tile.n, tile.m), f32_tensor(m1, n, tile.m)
    out = f32_tensor(m1, n, tile.m, 1)
    rows = ("%c0 = arith.constant 0 : index\n"
            f"    %m1 = tensor.dim %t, %c0 : {tiles.type}\n") if m1 is None else ""
    splice_function(op, (
        f"func.func private @repack(%t: {tiles.type}) -> {out} {{\n"
        f"    {rows}%e = tensor.empty({'%m1' if m1 is None else ''}) : {t4}\n"
        f"    %tt = linalg.transpose ins(%t : {tiles.type}) outs(%e : {t4}) "
        f"permutation = [0, 1, 3, 2]\n"
        f"    %c = tensor.collapse_shape %tt [[0], [1, 2], [3]] : {t4} into {t3}\n"
        f"    %x = tensor.expand_shape %c [[0], [1], [2, 3]] output_shape "
        f"[{'%m1' if m1 is None else m1}, {n}, {tile.m}, 1] : {t3} into {out}\n"
        f"    return %x : {out}\n}}"), [tiles])
    _erase_unused(unpack)
    return True


def _computing_users(value: ir.Value) -> list[ir.Operation]:
    """The users of `value` but the `tensor.dim`s that read a dynamic size of it (a packed
    matmul with dynamic rows reads them from its left operand)."""
    return [user for user in users(value) if user.name != "tensor.dim"]


def _erase_unused(op: ir.Operation) -> None:
    """Erase `op` once nothing uses its result, and then its `tensor.empty` destination.
    A `tensor.dim` of its result reads the destination's instead (the same size)."""
    for user in users(op.results[0]):
        if user.name == "tensor.dim":
            user.operands[0] = op.operands[1]
    if list(op.results[0].uses):
        return
    destination = owner_op(op.operands[1])
    op.erase()
    if (destination is not None and destination.name == "tensor.empty"
            and not list(destination.results[0].uses)):
        destination.erase()


def _packed_matmul(tile: Tile, m: int | None, k: int, n: int, from_fill: bool) -> str:
    """`func.func private @packed(%a: MxK, %b: KxN, %init) -> MxN`, where `%init` is the
    accumulator's fill value (an f32) or the accumulator itself; M None: dynamic."""
    a, b, out = f32_tensor(m, k), f32_tensor(k, n), f32_tensor(m, n)
    body = "\n    ".join(["%zero = arith.constant 0.0 : f32", *_mmt4d_lines(tile, m, k, n, from_fill)])
    init = "f32" if from_fill else out
    return (f"func.func private @packed(%a: {a}, %b: {b}, %init: {init}) -> {out} {{\n"
            f"    {body}\n    return %r : {out}\n}}")


def _packed_pointwise_conv(tile: Tile, ci: int, h: int, w: int, co: int, oh: int, ow: int,
                           stride: int) -> str:
    """`func.func private @packed(%x: 1xCixHxW, %w: CoxCix1x1, %init: f32) -> 1xCoxOHxOW`:
    the convolution as the matmul y[co, (oh, ow)] = w[co, ci] x[ci, (oh, ow)], the filter
    the left operand (a constant: its pack is hoisted), the image's channels x pixels the
    right one, packed straight from NCHW, and the result unpacked straight into NCHW."""
    hw = oh * ow
    x_type, w_type = f32_tensor(1, ci, h, w), f32_tensor(co, ci, 1, 1)
    picked, out = f32_tensor(1, ci, oh, ow), f32_tensor(1, co, oh, ow)
    lines = ["%zero = arith.constant 0.0 : f32"]
    x = "%x"
    if stride != 1:
        lines.append(f"%xs = tensor.extract_slice %x[0, 0, 0, 0] [1, {ci}, {oh}, {ow}] "
                     f"[1, 1, {stride}, {stride}] : {x_type} to {picked}")
        x = "%xs"
    lines += [
        f"%b = tensor.collapse_shape {x} [[0, 1], [2, 3]] : {picked} into {f32_tensor(ci, hw)}",
        f"%a = tensor.collapse_shape %w [[0], [1, 2, 3]] : {w_type} into {f32_tensor(co, ci)}",
        *_mmt4d_lines(tile, co, ci, hw, from_fill=True),
        (f"%y = tensor.expand_shape %r [[0, 1], [2, 3]] output_shape [1, {co}, {oh}, {ow}] "
         f": {f32_tensor(co, hw)} into {out}"),
    ]
    body = "\n    ".join(lines)
    return (f"func.func private @packed(%x: {x_type}, %w: {w_type}, %init: f32) -> {out} {{\n"
            f"    {body}\n    return %y : {out}\n}}")


def _mmt4d_lines(tile: Tile, m: int | None, k: int, n: int, from_fill: bool) -> list[str]:
    """The body lines of `%r = %a @ %b` (MxK by KxN) in 6x16x1 tiles: both operands packed,
    the accumulator a fill of the f32 `%init` (or `%init` packed), one `linalg.mmt4d`, the
    result unpacked. `%zero` is the padding value. M None: rows as many as `%a` has."""
    m1, n1 = None if m is None else -(-m // tile.m), -(-n // tile.n)
    a, b, out = f32_tensor(m, k), f32_tensor(k, n), f32_tensor(m, n)
    a4, b4, c4 = (f32_tensor(m1, k, tile.m, 1), f32_tensor(n1, k, tile.n, 1),
                  f32_tensor(m1, n1, tile.m, tile.n))
    rows, tiles, sizes = "", "", []   # the dynamic sizes of the [M, ...] and [M1, ...] empties
    if m is None:
        sizes = ["%c0 = arith.constant 0 : index",
                 f"%m = tensor.dim %a, %c0 : {a}",
                 f"%m1 = affine.apply affine_map<()[s0] -> (s0 ceildiv {tile.m})>()[%m]"]
        rows, tiles = "%m", "%m1"
    lines = [
        *sizes,
        f"%a_empty = tensor.empty({tiles}) : {a4}",
        (f"%a4 = linalg.pack %a padding_value(%zero : f32) inner_dims_pos = [0, 1] "
         f"inner_tiles = [{tile.m}, 1] into %a_empty : {a} -> {a4}"),
        f"%b_empty = tensor.empty() : {b4}",
        (f"%b4 = linalg.pack %b padding_value(%zero : f32) outer_dims_perm = [1, 0] "
         f"inner_dims_pos = [1, 0] inner_tiles = [{tile.n}, 1] into %b_empty : {b} -> {b4}"),
        f"%c_empty = tensor.empty({tiles}) : {c4}",
    ]
    if from_fill:
        lines.append(f"%c4 = linalg.fill ins(%init : f32) outs(%c_empty : {c4}) -> {c4}")
    else:
        lines.append(f"%c4 = linalg.pack %init padding_value(%zero : f32) inner_dims_pos = "
                     f"[0, 1] inner_tiles = [{tile.m}, {tile.n}] into %c_empty : {out} -> {c4}")
    return [
        *lines,
        f"%r4 = linalg.mmt4d ins(%a4, %b4 : {a4}, {b4}) outs(%c4 : {c4}) -> {c4}",
        f"%r_empty = tensor.empty({rows}) : {out}",
        (f"%r = linalg.unpack %r4 inner_dims_pos = [0, 1] inner_tiles = [{tile.m}, {tile.n}] "
         f"into %r_empty : {c4} -> {out}"),
    ]
