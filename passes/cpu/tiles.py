"""The register tile of Kiln's packed matmuls, a pass option chosen from the CPU's features.

`kiln-pack-matmuls` and `kiln-winograd-small-convs` write `linalg.mmt4d`s on M0 x N0 x 1
tiles: M0 rows of the left operand by N0 columns of the right one, one accumulator register
row per M0 and N0 / (vector width) registers per row. The best tile keeps most of the
vector registers accumulating: 6x16 is 12 of AVX2's 16 ymm registers (the BLAS shape on
AVX2), 16x16 is 16 of AVX-512's 32 zmm registers, 4x8 is 8 of SSE's 16 xmm registers.
`tile_for` picks by the features the code is compiled for (`runtime/cpu_features.py` names
them), as measured in benchmarks/results/cpu_tiles.md.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from kiln.errors import PassOptionError

DEFAULT = "6x16"
_TEXT = re.compile(r"(\d{1,2})x(\d{1,2})")


@dataclass(frozen=True)
class Tile:
    """M0 x N0, as the `tile` option writes it: "6x16"."""

    m: int
    n: int

    @staticmethod
    def parse(text: str) -> Tile:
        match = _TEXT.fullmatch(text)
        if match is None or not all(0 < int(v) <= 64 for v in match.groups()):
            raise PassOptionError(f"tile '{text}' is not ROWSxCOLUMNS with each from 1 to 64, "
                                  f"e.g. tile={DEFAULT}")
        return Tile(int(match[1]), int(match[2]))

    @property
    def result_attr(self) -> str:
        """The `static_inner_tiles` of the result's unpack, as MLIR prints it."""
        return f"array<i64: {self.m}, {self.n}>"

    def __str__(self) -> str:
        return f"{self.m}x{self.n}"


# Measured on an AVX-512 Xeon (2 cores), BERT-base / GPT-2 small at 1x128, interleaved
# medians (benchmarks/results/cpu_tiles.md):
# - AVX-512 code (32 zmm registers of 16 floats): 16x16, 16 accumulators, 125.3 / 130.0 ms
#   against 139.9 / 140.0 for 6x16 (8x32: 129.0 / 139.8); ResNet-50 level (51.5 / 52.1).
# - AVX2 code (16 ymm of 8): 6x16, 12 accumulators, 160.0 / 160.1 ms against 224.1 / 241.2
#   for 16x16 and 209.9 / 238.3 for 8x16 (and the best of those tried on Zen 3).
# - SSE code (16 xmm of 4): 4x8, 8 accumulators, BERT-base 437.3 ms against 493.4 for 6x16
#   and 488.7 for 6x8.
AVX512, AVX2, SSE = "16x16", "6x16", "4x8"


def tile_for(features: Collection[str] | None) -> str:
    """The tile option for code compiled for a CPU with `features` (/proc/cpuinfo names;
    None: not known, e.g. not an x86-64 Linux machine: the default)."""
    if features is None:
        return DEFAULT
    if "avx512f" in features:
        return AVX512
    if "avx" in features:
        return AVX2
    return SSE
