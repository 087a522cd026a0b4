"""Kiln's own Winograd F(m, 3) convolution (m = 2 or 4), written as linalg for IREE.

IREE 3.13's Winograd ops compute F(6,3) only (they accept `output_tile_size(4)` and then
compute with F(6,3)'s matrices, a wrong result), and F(6,3) suits large images only: at
14x14 its 8x8 tiles are 40% padding and its filters grow 7x. For smaller images Kiln writes
the algorithm out itself, in the forms IREE compiles well (measured one by one, single
convolutions, `benchmarks/flags.md`):

- the column transform is a `linalg.matmul` of the padded input, seen as rows of pixels,
  with a constant band matrix (`Bw`, pixels x (tile position, tile)): IREE's data-tiled
  matmul does the strided gathering a direct form would need. An elementwise form with
  stride-m reads in the innermost dimension ran 4x slower;
- the row transform and both output-transform steps are all-parallel `linalg.generic`s
  summing m + 2 slices times constant coefficient vectors (stride-m slices of the rows for
  the row transform, planes of one tile position for the output steps; one reduction-form
  generic per transform ran 20-60x slower);
- the filter transform `U = G g Gᵀ` is a `linalg.generic` on the constant filter, which
  IREE hoists out of the call (its size-increase limit is raised for the CPU target);
- the products are one batch matmul over the (m + 2)² tile positions, written in Kiln's 6x16
  tiles (`linalg.batch_mmt4d`, as `kiln-pack-matmuls` writes matmuls): ResNet-50's 14x14
  and 7x7 stages 1.1-1.4x faster in the products than with IREE's 8x8 data tiling. One
  image's 16 tiles are one 16-column tile, so its input tiles and products are reshapes.

Layouts, for an NCHW input with N images, C channels, CO filters and Ty x Tx tiles:
input tiles V[pos, C, N*Ty*Tx], filter U[pos, CO, C], products M[pos, CO, N*Ty*Tx], output
[N, CO, Ty, m, Tx, m] collapsed to [N, CO, m*Ty, m*Tx] and cut to the convolution's size.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from kiln.passes.cpu.pack_matmuls import MIN_SIZE
from kiln.passes.cpu.tiles import Tile
from kiln.passes.linalg_ir import f32_tensor

# (Bᵀ, G, Aᵀ) for F(m, 3) at the interpolation points 0, ±1 (m = 2) and 0, ±1, ±2 (m = 4).
_MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [Fraction(1, 2)] * 3, [Fraction(1, 2), Fraction(-1, 2), Fraction(1, 2)],
         [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[Fraction(1, 4), 0, 0], [Fraction(-1, 6)] * 3,
         [Fraction(-1, 6), Fraction(1, 6), Fraction(-1, 6)],
         [Fraction(1, 24), Fraction(1, 12), Fraction(1, 6)],
         [Fraction(1, 24), Fraction(-1, 12), Fraction(1, 6)], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}
TILE_SIZES = tuple(_MATRICES)


def matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bᵀ ((m+2) x (m+2)), G ((m+2) x 3) and Aᵀ (m x (m+2)) of F(m, 3), as float64."""
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in _MATRICES[m])


def winograd_function(name: str, n: int, c: int, co: int, out_h: int, out_w: int, m: int,
                      tile: Tile) -> str:
    """The text of `func.func private @name(%x, %w) -> %y`: a 3x3, stride-1 NCHW f32
    convolution of the (already padded) input `x: [n, c, out_h+2, out_w+2]` with the
    filter `w: [co, c, 3, 3]` by Winograd F(m, 3), accumulating into zeros; its products
    are packed matmuls on `tile`."""
    return _Writer(n, c, co, out_h, out_w, m, tile).function(name)


def _listed(values) -> str:
    return ", ".join(map(str, values))


def _dense(array: np.ndarray) -> str:
    """An `arith.constant` of a float32 array, as text."""
    def nested(a: np.ndarray) -> str:
        if a.ndim == 0:
            return repr(float(np.float32(a)))
        return "[" + ", ".join(nested(row) for row in a) + "]"
    return f"arith.constant dense<{nested(array)}> : {f32_tensor(*array.shape)}"


class _Writer:
    """Writes the function's body, one SSA line at a time."""

    def __init__(self, n: int, c: int, co: int, out_h: int, out_w: int, m: int,
                 tile: Tile) -> None:
        self.n, self.c, self.co, self.out_h, self.out_w, self.m = n, c, co, out_h, out_w, m
        self.tile = tile
        self.a = m + 2                                  # input tile side
        self.ty, self.tx = -(-out_h // m), -(-out_w // m)  # tiles per column, per row
        self.ph, self.pw = m * self.ty + 2, m * self.tx + 2  # padded input the tiles cover
        self.bt, self.g, self.at = matrices(m)
        self.lines: list[str] = []

    def function(self, name: str) -> str:
        n, c, co, a, m = self.n, self.c, self.co, self.a, self.m
        x_type = f32_tensor(n, c, self.out_h + 2, self.out_w + 2)
        y_type = f32_tensor(n, co, self.out_h, self.out_w)
        self.emit("%zero = arith.constant 0.0 : f32")
        for k in range(a):
            self.emit(f"%bt{k} = {_dense(self.bt[:, k])}")
            self.emit(f"%at{k} = {_dense(self.at[:, k])}")
        v = self.input_transform("%x", x_type)
        u = self.filter_transform("%w")
        tiles = n * self.ty * self.tx
        if min(co, c, tiles) >= MIN_SIZE:
            products = self.packed_products(u, v, tiles)
        else:
            products = self.zeros(a * a, co, tiles)
            self.emit(f"%mm = linalg.batch_matmul ins({u}, {v} : {f32_tensor(a * a, co, c)}, "
                      f"{f32_tensor(a * a, c, tiles)}) outs({products} : "
                      f"{f32_tensor(a * a, co, tiles)}) -> {f32_tensor(a * a, co, tiles)}")
            products = "%mm"
        y = self.output_transform(products)
        full = f32_tensor(n, co, m * self.ty, m * self.tx)
        if (m * self.ty, m * self.tx) != (self.out_h, self.out_w):
            self.emit(f"%cut = tensor.extract_slice {y}[0, 0, 0, 0] [{n}, {co}, {self.out_h}, "
                      f"{self.out_w}] [1, 1, 1, 1] : {full} to {y_type}")
            y = "%cut"
        body = "\n    ".join(self.lines)
        w_type = f32_tensor(co, c, 3, 3)
        return (f"func.func private @{name}(%x: {x_type}, %w: {w_type}) -> {y_type} {{"
                f"\n    {body}\n    return {y} : {y_type}\n}}")

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def zeros(self, *shape: int) -> str:
        name = f"%zeros{len(self.lines)}"
        self.emit(f"{name}_e = tensor.empty() : {f32_tensor(*shape)}")
        self.emit(f"{name} = linalg.fill ins(%zero : f32) outs({name}_e : {f32_tensor(*shape)}) "
                  f"-> {f32_tensor(*shape)}")
        return name

    def input_transform(self, x: str, x_type: str) -> str:
        """V[p, q, c, (n, ty, tx)] = sum_ij Bᵀ[p,i] Bᵀ[q,j] x[n, c, m*ty + i, m*tx + j]."""
        n, c, a, m, ty, tx, ph, pw = (self.n, self.c, self.a, self.m, self.ty, self.tx,
                                      self.ph, self.pw)
        padded = f32_tensor(n, c, ph, pw)
        grow_h, grow_w = ph - (self.out_h + 2), pw - (self.out_w + 2)
        if grow_h or grow_w:
            self.emit(f"%xpad = tensor.pad {x} low[0, 0, 0, 0] high[0, 0, {grow_h}, {grow_w}] {{\n"
                      f"    ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):\n"
                      f"      tensor.yield %zero : f32\n    }} : {x_type} to {padded}")
            x = "%xpad"
        # Columns: [(n, c, row), pixel] x Bw[pixel, (q, tx)], one band matrix for all rows.
        band = np.zeros((pw, a, tx))
        for t in range(tx):
            band[m * t:m * t + a, :, t] = self.bt.T
        self.emit(f"%bw = {_dense(band.reshape(pw, a * tx))}")
        rows = n * c * ph
        self.emit(f"%xrows = tensor.collapse_shape {x} [[0, 1, 2], [3]] : {padded} into "
                  f"{f32_tensor(rows, pw)}")
        cols = self.zeros(rows, a * tx)
        self.emit(f"%colsm = linalg.matmul ins(%xrows, %bw : {f32_tensor(rows, pw)}, "
                  f"{f32_tensor(pw, a * tx)}) outs({cols} : {f32_tensor(rows, a * tx)}) "
                  f"-> {f32_tensor(rows, a * tx)}")
        cols_type = f32_tensor(n, c, ph, a, tx)
        self.emit(f"%cols = tensor.expand_shape %colsm [[0, 1, 2], [3, 4]] output_shape "
                  f"[{n}, {c}, {ph}, {a}, {tx}] : {f32_tensor(rows, a * tx)} into {cols_type}")
        # Rows: the i-th row of every tile is a stride-m slice of the rows.
        slice_type = f32_tensor(n, c, ty, a, tx)
        rows = self.slices("%crow", "%cols", cols_type, slice_type, along=2,
                           sizes=(n, c, ty, a, tx), strides=(1, 1, m, 1, 1))
        # Iteration (p, q, c, n, ty, tx); slice [n, c, ty, q, tx].
        v = self.combine("%v", (a, a, c, n, ty, tx), rows, slice_type, "d3, d2, d4, d1, d5",
                         [f"%bt{i}" for i in range(a)], coefficient_dim=0)
        self.emit(f"%vt = tensor.collapse_shape {v} [[0, 1], [2], [3, 4, 5]] : "
                  f"{f32_tensor(a, a, c, n, ty, tx)} into {f32_tensor(a * a, c, n * ty * tx)}")
        return "%vt"

    def packed_products(self, u: str, v: str, tiles: int) -> str:
        """M = U V as Kiln's 6x16 tiles (`kiln-pack-matmuls`): the filters U packed in 6-row
        tiles (a constant: IREE hoists the pack), the input tiles V in 16-column ones (a
        reshape when there are exactly 16), one `linalg.batch_mmt4d`, then unpacked."""
        a2, c, co = self.a * self.a, self.c, self.co
        co1, t1 = -(-co // self.tile.m), -(-tiles // self.tile.n)
        u5, v5 = f32_tensor(a2, co1, c, self.tile.m, 1), f32_tensor(a2, t1, c, self.tile.n, 1)
        m5 = f32_tensor(a2, co1, t1, self.tile.m, self.tile.n)
        self.emit(f"%upk_e = tensor.empty() : {u5}")
        self.emit(f"%upk = linalg.pack {u} padding_value(%zero : f32) inner_dims_pos = [1, 2] "
                  f"inner_tiles = [{self.tile.m}, 1] into %upk_e : {f32_tensor(a2, co, c)} -> {u5}")
        if tiles == self.tile.n:
            self.emit(f"%vpk = tensor.expand_shape {v} [[0, 1], [2], [3, 4]] output_shape "
                      f"[{a2}, 1, {c}, {self.tile.n}, 1] : {f32_tensor(a2, c, tiles)} into {v5}")
        else:
            self.emit(f"%vpk_e = tensor.empty() : {v5}")
            self.emit(f"%vpk = linalg.pack {v} padding_value(%zero : f32) outer_dims_perm = "
                      f"[0, 2, 1] inner_dims_pos = [2, 1] inner_tiles = [{self.tile.n}, 1] into %vpk_e "
                      f": {f32_tensor(a2, c, tiles)} -> {v5}")
        zeros = self.zeros(a2, co1, t1, self.tile.m, self.tile.n)
        self.emit(f"%prod = linalg.batch_mmt4d ins(%upk, %vpk : {u5}, {v5}) outs({zeros} : {m5}) "
                  f"-> {m5}")
        if tiles != self.tile.n:
            self.emit(f"%prod_e = tensor.empty() : {f32_tensor(a2, co, tiles)}")
            self.emit(f"%mm = linalg.unpack %prod inner_dims_pos = [1, 2] inner_tiles = "
                      f"[{self.tile.m}, {self.tile.n}] into %prod_e : {m5} -> {f32_tensor(a2, co, tiles)}")
            return "%mm"
        rows = f32_tensor(a2, co1 * self.tile.m, tiles)
        self.emit(f"%prod3 = tensor.collapse_shape %prod [[0], [1, 2, 3], [4]] : {m5} into {rows}")
        if co1 * self.tile.m == co:
            return "%prod3"
        self.emit(f"%mm = tensor.extract_slice %prod3[0, 0, 0] [{a2}, {co}, {tiles}] [1, 1, 1] : "
                  f"{rows} to {f32_tensor(a2, co, tiles)}")
        return "%mm"

    def filter_transform(self, w: str) -> str:
        """U[(p, q), co, c] = sum_kl G[p,k] G[q,l] w[co, c, k, l] (constant: IREE hoists it)."""
        a, c, co = self.a, self.c, self.co
        self.emit(f"%g = {_dense(self.g)}")
        out = self.zeros(a, a, co, c)
        dims = "(p, q, o, i, k, l)"
        self.emit(
            f"%u = linalg.generic {{indexing_maps = [affine_map<{dims} -> (p, k)>, "
            f"affine_map<{dims} -> (q, l)>, affine_map<{dims} -> (o, i, k, l)>, "
            f"affine_map<{dims} -> (p, q, o, i)>], iterator_types = [\"parallel\", "
            f"\"parallel\", \"parallel\", \"parallel\", \"reduction\", \"reduction\"]}} "
            f"ins(%g, %g, {w} : {f32_tensor(a, 3)}, {f32_tensor(a, 3)}, {f32_tensor(co, c, 3, 3)}) "
            f"outs({out} : {f32_tensor(a, a, co, c)}) {{\n"
            f"    ^bb0(%gp: f32, %gq: f32, %wv: f32, %acc: f32):\n"
            f"      %gg = arith.mulf %gp, %gq : f32\n"
            f"      %t = arith.mulf %gg, %wv : f32\n"
            f"      %s = arith.addf %acc, %t : f32\n"
            f"      linalg.yield %s : f32\n"
            f"    }} -> {f32_tensor(a, a, co, c)}")
        self.emit(f"%ut = tensor.collapse_shape %u [[0, 1], [2], [3]] : {f32_tensor(a, a, co, c)} "
                  f"into {f32_tensor(a * a, co, c)}")
        return "%ut"

    def output_transform(self, products: str) -> str:
        """y[n, co, m*ty + r, m*tx + s] = sum_pq Aᵀ[r,p] Aᵀ[s,q] M[(p, q), co, (n, ty, tx)]."""
        n, co, a, m, ty, tx = self.n, self.co, self.a, self.m, self.ty, self.tx
        tiles = n * ty * tx
        by_position = f32_tensor(a, a, co, n, ty, tx)
        self.emit(f"%mp = tensor.expand_shape {products} [[0, 1], [2], [3, 4, 5]] output_shape "
                  f"[{a}, {a}, {co}, {n}, {ty}, {tx}] : {f32_tensor(a * a, co, tiles)} into "
                  f"{by_position}")
        # Rows: half[r, q, co, n, ty, tx] = sum_p Aᵀ[r,p] M[p, q, ...].
        slice_type = f32_tensor(a, co, n, ty, tx)
        rows = self.slices("%mrow", "%mp", by_position, slice_type, along=0,
                           sizes=(1, a, co, n, ty, tx))
        half = self.combine("%half", (m, a, co, n, ty, tx), rows, slice_type,
                            "d1, d2, d3, d4, d5", [f"%at{p}" for p in range(a)],
                            coefficient_dim=0)
        # Columns: y[n, co, ty, r, tx, s] = sum_q Aᵀ[s,q] half[r, q, co, n, ty, tx].
        half_type = f32_tensor(m, a, co, n, ty, tx)
        col_type = f32_tensor(m, co, n, ty, tx)
        cols = self.slices("%hcol", half, half_type, col_type, along=1,
                           sizes=(m, 1, co, n, ty, tx))
        y = self.combine("%y", (n, co, ty, m, tx, m), cols, col_type, "d3, d1, d0, d2, d4",
                         [f"%at{q}" for q in range(a)], coefficient_dim=5)
        self.emit(f"%yfull = tensor.collapse_shape {y} [[0], [1], [2, 3], [4, 5]] : "
                  f"{f32_tensor(n, co, ty, m, tx, m)} into {f32_tensor(n, co, m * ty, m * tx)}")
        return "%yfull"

    def slices(self, prefix: str, source: str, source_type: str, slice_type: str, along: int,
               sizes: tuple[int, ...], strides: tuple[int, ...] | None = None) -> list[str]:
        """The m + 2 slices `prefix`k of `source` at offset k along dimension `along`."""
        strides = strides or (1,) * len(sizes)
        names = []
        for k in range(self.a):
            offsets = [k if d == along else 0 for d in range(len(sizes))]
            names.append(f"{prefix}{k}")
            self.emit(f"{names[-1]} = tensor.extract_slice {source}[{_listed(offsets)}] "
                      f"[{_listed(sizes)}] [{_listed(strides)}] : {source_type} to {slice_type}")
        return names

    def combine(self, name: str, shape: tuple[int, ...], slices: list[str], slice_type: str,
                slice_map: str, coefficients: list[str], coefficient_dim: int) -> str:
        """`name`[d...] = sum_k coefficients[k][d_coefficient_dim] * slices[k][slice_map]:
        an all-parallel generic (IREE vectorizes it along the innermost dimension)."""
        rank = len(shape)
        dims = ", ".join(f"d{i}" for i in range(rank))
        terms = len(slices)
        length = shape[coefficient_dim]
        maps = ([f"affine_map<({dims}) -> ({slice_map})>"] * terms
                + [f"affine_map<({dims}) -> (d{coefficient_dim})>"] * terms
                + [f"affine_map<({dims}) -> ({dims})>"])
        args = [f"%s{k}: f32" for k in range(terms)] + [f"%k{k}: f32" for k in range(terms)]
        body = [f"^bb0({', '.join(args)}, %out: f32):"]
        total = None
        for k in range(terms):
            body.append(f"  %p{k} = arith.mulf %k{k}, %s{k} : f32")
            if total is not None:
                body.append(f"  %t{k} = arith.addf {total}, %p{k} : f32")
            total = f"%t{k}" if total is not None else f"%p{k}"
        body.append(f"  linalg.yield {total} : f32")
        out_type = f32_tensor(*shape)
        self.emit(f"{name}_e = tensor.empty() : {out_type}")
        iterators = ", ".join(['"parallel"'] * rank)
        self.emit(f"{name} = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
                  f"iterator_types = [{iterators}]}} ins({', '.join(slices + coefficients)} : "
                  f"{', '.join([slice_type] * terms + [f32_tensor(length)] * terms)}) "
                  f"outs({name}_e : {out_type}) {{\n    "
                  + "\n    ".join(body) + f"\n    }} -> {out_type}")
        return name
