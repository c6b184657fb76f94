# SPDX-License-Identifier: Apache-2.0
"""Directed corner layers of the LightNorm core: special values placed at chunk granularity.

The random layers (:func:`lightnorm_tb.layers.random_layer`) sprinkle NaN, +-Inf, zeros and
subnormals over x and dy; patterns at the level of a range-statistics chunk (docs/spec.md F2:
chunk k holds stream indices [k*m, (k+1)*m), the last chunk also the remainder) are rare
there. :func:`directed_layers` builds small layers whose chunks are made on purpose, for the
core parameters ``p`` (any Lanes >= 4, K >= 4):

============  =======  ====  ===============================================================
layer         C        n     what its chunks hold
============  =======  ====  ===============================================================
inf_points    4        3K    x: +Inf / -Inf / NaN at the first element of chunk 1, the middle
                             of chunk 2, the last element of chunk K-1 (the last beat): a
                             maximum +Inf, a minimum -Inf, both, NaN first / alone / last
inf_chunk     5        3K    x: chunk 0 entirely +Inf, entirely -Inf, -Inf with +Inf,
                             entirely NaN, NaN after +-Inf
dy_points     4        3K    dy: the inf_points patterns (x finite, above its mean there)
dy_chunk      4        3K    dy: the inf_chunk patterns
finite        Lanes    4K-1  x, dy: constant chunk, ties of the maximum / minimum (the first
                             occurrence wins), -0 / +0 as the extreme, a chunk of zeros, the
                             extremes of the last chunk in its remainder, a constant channel;
                             channels >= 8 mirror channels 0..7 (negated)
lanes_plus_1  Lanes+1  2K    the smallest n with K chunks; channel Lanes alone in its BFP
                             group: +Inf as the first beat (a chunk maximum), -Inf as the
                             last (a minimum)
one_channel   1        2K+3  a tie of the maximum in the remainder, -0 / +0, dy -Inf at the
                             last beat
============  =======  ====  ===============================================================

Finite values are multiples of 1/4 below 4 in magnitude (:data:`GRID`): exact in every element
and BFP format of the parameter sets whatever a group's shared exponent, so a tie or a -0 is
still one after the producer's BFP store. A non-finite value turns its finite BFP-group
neighbours into NaN (docs/spec.md section 5), so every real lane of a group is non-finite at
the same positions of the same stream (x or dy), or the layer has the group to itself.

Each named :class:`Corner` sits in cells (channel, chunks) of one layer and names the coverage
bins (``lightnorm_tb.coverage``) it must hit; :func:`corner_mismatches` attributes scoreboard
mismatches to the corners whose cells they touch, so a failure names the corner that broke.
Every layer runs through a training step with grad_mode bn and the backward pass again with
range_exact (:meth:`DirectedLayer.modes`). The values do not depend on the seed.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .coverage import chunk_bounds
from .layers import CoreParams, Layer, core_config
from .scoreboard import Mismatch

__all__ = [
    "GRID",
    "LAYER_NAMES",
    "Corner",
    "DirectedLayer",
    "corner_mismatches",
    "corner_names",
    "directed_layers",
]

F64 = npt.NDArray[np.float64]
INF = np.inf
NAN = np.nan

#: Finite values of the directed layers: k/4 for 0 < |k| <= 15 (at most 4 significant bits).
GRID: F64 = np.array([k / 4 for k in range(-15, 16) if k != 0])
#: The largest grid value: set where x must be above its channel's mean (x_hat > 0).
TOP = 3.75

#: A corner's place: (channel, chunks), chunks None = the whole channel.
Cell = tuple[int, tuple[int, ...] | None]


@dataclass(frozen=True)
class Corner:
    """One named directed pattern: where it sits and the coverage bins it must hit."""

    name: str
    layer: str
    cells: tuple[Cell, ...]
    what: str
    bins: tuple[tuple[str, str], ...] = ()  # (cover point, bin), hit in at least one cell


@dataclass
class DirectedLayer:
    """A directed layer (grad_mode bn) with its corners and its range_exact twin."""

    name: str
    bn: Layer
    range_exact: Layer
    corners: list[Corner]

    def modes(self) -> tuple[Layer, Layer]:
        """(bn, range_exact): the same tensors and modes except the gradient mode."""
        return (self.bn, self.range_exact)

    @property
    def channels(self) -> int:
        return self.bn.channels

    @property
    def count(self) -> int:
        return self.bn.count


LAYER_NAMES = (
    "inf_points",
    "inf_chunk",
    "dy_points",
    "dy_chunk",
    "finite",
    "lanes_plus_1",
    "one_channel",
)


class _Builder:
    """x, dy of one directed layer as (C, n) streams over a background of distinct grid values
    per chunk (no accidental tie, no zero), and its corners."""

    def __init__(
        self, p: CoreParams, name: str, channels: int, spatial: tuple[int, int, int]
    ) -> None:
        self.p, self.name, self.spatial = p, name, spatial
        self.channels = channels
        self.count = spatial[0] * spatial[1] * spatial[2]
        self.k = p.num_chunks
        self.m = self.count // self.k
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.x = self._background()
        self.dy = self._background()
        self.corners: list[Corner] = []

    def _background(self) -> F64:
        v = np.empty((self.channels, self.count))
        for c in range(self.channels):
            for j, (lo, hi) in enumerate(chunk_bounds(self.count, self.k)):
                pool = GRID
                if j == self.k - 1:  # the last chunk: leave +-TOP free for remainder extremes
                    pool = GRID[np.abs(GRID) < TOP]
                v[c, lo:hi] = self.rng.choice(pool, size=hi - lo, replace=False)
        return v

    def chunk(self, j: int) -> tuple[int, int]:
        """[lo, hi) of chunk j (negative j counts from the end)."""
        return chunk_bounds(self.count, self.k)[j % self.k]

    def corner(self, name: str, cells: Sequence[Cell], what: str, *bins: tuple[str, str]) -> None:
        self.corners.append(Corner(name, self.name, tuple(cells), what, tuple(bins)))

    def build(self, rounding: str, overflow: str, stall: str, range_constant: str) -> DirectedLayer:
        c = self.channels
        n, h, w = self.spatial

        def tensor(v: F64) -> F64:
            return np.ascontiguousarray(v.reshape(c, n, h, w).transpose(1, 0, 2, 3))

        gamma = self.rng.choice([0.75, 1.0, 1.25, 1.5, -1.0], size=c)
        beta = self.rng.choice(GRID, size=c) / 2
        layers = []
        for gm in ("bn", "range_exact"):
            cfg = core_config(self.p, rounding, overflow, gm, range_constant)
            layers.append(
                Layer(
                    name=f"{self.name}.{gm}",
                    shape=(n, c, h, w),
                    cfg=cfg,
                    x=tensor(self.x),
                    dy=tensor(self.dy),
                    gamma=gamma,
                    beta=beta,
                    running_mean=np.zeros(c),
                    running_var=np.ones(c),
                    infer_mean=np.zeros(c),
                    infer_var=np.ones(c),
                    dist_x="directed",
                    dist_dy="directed",
                    stall=stall,
                )
            )
        return DirectedLayer(self.name, layers[0], layers[1], self.corners)


def _cx(b: str) -> tuple[str, str]:
    return ("core.chunk.x", b)


def _cdy(b: str) -> tuple[str, str]:
    return ("core.chunk.dy", b)


def _rf(b: str) -> tuple[str, str]:
    return ("core.range.flags", b)


def _sdy(b: str) -> tuple[str, str]:
    return ("core.sum.dy", b)


def _shape(b: str) -> tuple[str, str]:
    return ("core.shape", b)


def _points(b: _Builder) -> tuple[list[int], list[int]]:
    """First element of chunk 1, middle of chunk 2, last element of chunk K-1 (the last beat)."""
    return [b.chunk(1)[0], b.chunk(2)[0] + 1, b.count - 1], [1, 2, b.k - 1]


def _inf_points(p: CoreParams) -> DirectedLayer:
    b = _Builder(p, "inf_points", 4, (1, 3, p.num_chunks))
    pos, chunks = _points(b)
    b.x[0, pos] = INF
    b.x[1, pos] = -INF
    b.x[2, pos] = [INF, INF, -INF]
    b.x[3, pos] = NAN
    b.corner(
        "x_max_pos_inf",
        [(0, None)],
        "chunk maxima +Inf (first / middle / last element), minima finite: r = +Inf from max",
        _cx("max_pos_inf"),
        _rf("max_pos_inf_only"),
    )
    b.corner(
        "x_min_neg_inf",
        [(1, None)],
        "chunk minima -Inf, maxima finite: r = +Inf from -min",
        _cx("min_neg_inf"),
        _rf("min_neg_inf_only"),
    )
    b.corner(
        "x_max_pos_inf_min_neg_inf",
        [(2, None)],
        "one chunk's maximum +Inf, another chunk's minimum -Inf",
        _cx("max_pos_inf"),
        _cx("min_neg_inf"),
        _rf("max_and_min_inf"),
    )
    b.corner(
        "x_nan_first",
        [(3, (chunks[0],))],
        "NaN as the first element of a chunk",
        _cx("nan_first"),
        _rf("nan"),
    )
    b.corner(
        "x_nan_alone",
        [(3, (chunks[1],))],
        "one NaN between finite neighbours",
        _cx("nan_alone"),
        _rf("nan"),
    )
    b.corner(
        "x_nan_last",
        [(3, (chunks[2],))],
        "NaN as the last element of the last chunk (the last beat)",
        _cx("nan_last"),
        _rf("nan"),
    )
    return b.build("rne", "inf", "none", "lightnorm")


def _inf_chunk(p: CoreParams) -> DirectedLayer:
    b = _Builder(p, "inf_chunk", 5, (3, 1, p.num_chunks))
    lo, hi = b.chunk(0)
    b.x[0, lo:hi] = INF
    b.x[1, lo:hi] = -INF
    b.x[2, lo:hi] = INF
    b.x[2, lo] = -INF
    b.x[3, lo:hi] = NAN
    b.x[4, lo:hi] = [INF, -INF] + [NAN] * (hi - lo - 2)
    b.corner(
        "x_chunk_pos_inf",
        [(0, (0,))],
        "a chunk entirely +Inf (max = min = +Inf: r = Inf - Inf = NaN)",
        _cx("all_pos_inf"),
        _rf("inf_minus_inf"),
    )
    b.corner(
        "x_chunk_neg_inf",
        [(1, (0,))],
        "a chunk entirely -Inf",
        _cx("all_neg_inf"),
        _rf("inf_minus_inf"),
    )
    b.corner(
        "x_pos_neg_inf_same_chunk",
        [(2, (0,))],
        "-Inf then +Inf (tied) in one chunk: max +Inf, min -Inf",
        _cx("pos_and_neg_inf"),
        _cx("tie_max"),
        _rf("max_and_min_inf"),
    )
    b.corner(
        "x_nan_chunk",
        [(3, (0,))],
        "a chunk entirely NaN (the first NaN wins)",
        _cx("nan_chunk"),
        _rf("nan"),
    )
    b.corner(
        "x_nan_after_inf",
        [(4, (0,))],
        "+Inf, -Inf, then NaN: the NaN replaces both infinite extremes",
        _cx("nan_last"),
        _rf("nan"),
    )
    return b.build("rtz", "inf", "light", "banner")


def _dy_points(p: CoreParams) -> DirectedLayer:
    b = _Builder(p, "dy_points", 4, (p.num_chunks, 1, 3))
    pos, chunks = _points(b)
    b.x[:, pos] = TOP  # x_hat > 0 where dy is special: dy * x_hat keeps dy's sign
    b.dy[0, pos] = INF
    b.dy[1, pos] = -INF
    b.dy[2, pos] = [INF, INF, -INF]
    b.dy[3, pos] = NAN
    b.corner(
        "dy_pos_inf",
        [(0, None)],
        "dy +Inf (first / middle / last element of chunks): sum dy = +Inf",
        _cdy("max_pos_inf"),
        _sdy("pos_inf"),
    )
    b.corner(
        "dy_neg_inf",
        [(1, None)],
        "dy -Inf: sum dy = -Inf",
        _cdy("min_neg_inf"),
        _sdy("neg_inf"),
    )
    b.corner(
        "dy_pos_inf_neg_inf",
        [(2, None)],
        "dy +Inf in two chunks, -Inf in another: sum dy = NaN",
        _cdy("max_pos_inf"),
        _cdy("min_neg_inf"),
        _sdy("inf_minus_inf"),
    )
    b.corner(
        "dy_nan_first",
        [(3, (chunks[0],))],
        "dy NaN as the first element of a chunk",
        _cdy("nan_first"),
        _sdy("nan"),
    )
    b.corner(
        "dy_nan_alone",
        [(3, (chunks[1],))],
        "dy: one NaN between finite neighbours",
        _cdy("nan_alone"),
        _sdy("nan"),
    )
    b.corner(
        "dy_nan_last",
        [(3, (chunks[2],))],
        "dy NaN at the last beat",
        _cdy("nan_last"),
        _sdy("nan"),
    )
    return b.build("rne", "inf", "none", "gauss")


def _dy_chunk(p: CoreParams) -> DirectedLayer:
    b = _Builder(p, "dy_chunk", 4, (1, p.num_chunks, 3))
    lo, hi = b.chunk(0)
    b.x[:, lo:hi] = TOP
    b.dy[0, lo:hi] = INF
    b.dy[1, lo:hi] = -INF
    b.dy[2, lo:hi] = INF
    b.dy[2, lo] = -INF
    b.dy[3, lo:hi] = NAN
    b.corner(
        "dy_chunk_pos_inf",
        [(0, (0,))],
        "dy: the first chunk (first beats) entirely +Inf",
        _cdy("all_pos_inf"),
        _sdy("pos_inf"),
    )
    b.corner(
        "dy_chunk_neg_inf",
        [(1, (0,))],
        "dy: a chunk entirely -Inf",
        _cdy("all_neg_inf"),
        _sdy("neg_inf"),
    )
    b.corner(
        "dy_pos_neg_inf_same_chunk",
        [(2, (0,))],
        "dy: -Inf and +Inf in one chunk: sum dy = NaN",
        _cdy("pos_and_neg_inf"),
        _sdy("inf_minus_inf"),
    )
    b.corner(
        "dy_nan_chunk",
        [(3, (0,))],
        "dy: a chunk entirely NaN",
        _cdy("nan_chunk"),
        _sdy("nan"),
    )
    return b.build("rtz", "inf", "light", "lightnorm")


def _finite(p: CoreParams) -> DirectedLayer:
    k = p.num_chunks
    b = _Builder(p, "finite", p.lanes, (1, 1, 4 * k - 1))
    (a1, _), (a2, _), (lo, hi) = b.chunk(1), b.chunk(2), b.chunk(-1)
    z, nz = 0.0, -0.0
    b.x[0, a1 : a1 + 3] = 1.25
    b.dy[0, a1 : a1 + 3] = -0.75
    b.x[1, a1 : a1 + 3] = [0.5, 2.5, 2.5]
    b.x[1, a2 : a2 + 3] = [2.5, -1.0, 2.5]
    b.dy[1, a1 : a1 + 3] = [1.5, -2.0, 1.5]
    b.dy[1, a2 : a2 + 3] = [-2.0, 1.0, -2.0]
    b.x[2, a1 : a1 + 3] = [-2.5, 0.5, -2.5]
    b.x[2, a2 : a2 + 3] = [1.0, -2.5, -2.5]
    b.x[3, a1 : a1 + 3] = [nz, z, -1.5]
    b.x[3, a2 : a2 + 3] = [-2.0, z, nz]
    b.x[4, a1 : a1 + 3] = [z, nz, 1.5]
    b.x[4, a2 : a2 + 3] = [2.0, nz, z]
    b.x[5, a1 : a1 + 3] = [nz, z, nz]
    b.dy[5, a1 : a1 + 3] = [nz, z, nz]
    b.dy[5, a2 : a2 + 3] = [z, nz, 0.5]
    rem = lo + b.m  # first index of the remainder
    b.x[6, rem + 1] = TOP
    b.x[6, hi - 1] = -TOP
    b.dy[6, hi - 1] = TOP
    b.dy[6, rem] = -TOP
    b.x[7, :] = 0.75
    for c in range(8, p.lanes):  # mirrored copies: max <-> min
        b.x[c], b.dy[c] = -b.x[c % 8], -b.dy[c % 8]

    def cells(c: int, chunks: tuple[int, ...] | None) -> list[Cell]:
        return [(ch, chunks) for ch in range(c, p.lanes, 8)]

    b.corner(
        "x_constant_chunk",
        cells(0, (1,)),
        "a constant chunk: arg-max = arg-min (the first element)",
        _cx("constant"),
    )
    b.corner("dy_constant_chunk", cells(0, (1,)), "dy: a constant chunk", _cdy("constant"))
    b.corner(
        "x_tie_max",
        cells(1, (1, 2)),
        "equal maxima in a chunk: the first occurrence wins",
        _cx("tie_max"),
    )
    b.corner("dy_tie", cells(1, (1, 2)), "dy: equal maxima, equal minima", _cdy("tie_max"))
    b.corner(
        "x_tie_min",
        cells(2, (1, 2)),
        "equal minima in a chunk: the first occurrence wins",
        _cx("tie_min"),
    )
    b.corner("x_zero_max", cells(3, (1, 2)), "-0 and +0 as the chunk maximum", _cx("zero_extreme"))
    b.corner("x_zero_min", cells(4, (1, 2)), "+0 and -0 as the chunk minimum", _cx("zero_extreme"))
    b.corner(
        "x_zero_chunk",
        cells(5, (1,)),
        "a chunk of zeros of both signs",
        _cx("constant"),
        _cx("zero_extreme"),
    )
    b.corner("dy_signed_zero", cells(5, (1, 2)), "dy: -0 and +0 as extremes", _cdy("zero_extreme"))
    b.corner(
        "x_remainder_tail",
        cells(6, (k - 1,)),
        "the last chunk's maximum and minimum in its remainder (n % K != 0)",
        _cx("remainder_extreme"),
    )
    b.corner(
        "dy_remainder_tail",
        cells(6, (k - 1,)),
        "dy: the last chunk's extremes in its remainder",
        _cdy("remainder_extreme"),
    )
    b.corner(
        "x_constant_channel",
        cells(7, None),
        "a constant channel: every chunk constant, r = 0",
        _cx("constant"),
    )
    b.corner(
        "shape_c_lanes",
        [(c, None) for c in range(p.lanes)],
        "C = Lanes: one full BFP group",
        _shape("C==Lanes"),
    )
    b.corner(
        "shape_remainder",
        [(c, None) for c in range(p.lanes)],
        "n = 4K - 1: the last chunk holds K - 1 more values",
        _shape("n%K!=0"),
    )
    return b.build("rtz", "saturate", "light", "gauss")


def _lanes_plus_1(p: CoreParams) -> DirectedLayer:
    k, c = p.num_chunks, p.lanes + 1
    b = _Builder(p, "lanes_plus_1", c, (2, k, 1))
    b.x[0, 0:2] = 2.0
    b.x[1, -2:] = [0.0, -0.0]
    b.x[p.lanes, 0] = INF
    b.x[p.lanes, -1] = -INF
    b.corner(
        "x_inf_first_last_beat",
        [(p.lanes, None)],
        "alone in its BFP group: +Inf at the first beat (a maximum), -Inf at the last (a minimum)",
        _cx("max_pos_inf"),
        _cx("min_neg_inf"),
        _rf("max_and_min_inf"),
    )
    b.corner(
        "shape_min_n",
        [(ch, None) for ch in range(c)],
        "n = 2K, the smallest n with K chunks (two values per chunk)",
        _shape("n==2K"),
        _cx("constant"),
    )
    b.corner(
        "shape_c_lanes_plus_1",
        [(ch, None) for ch in range(c)],
        "C = Lanes + 1: a second BFP group of one channel and Lanes - 1 padding lanes",
        _shape("C==Lanes+1"),
    )
    return b.build("rne", "inf", "none", "banner")


def _one_channel(p: CoreParams) -> DirectedLayer:
    k = p.num_chunks
    b = _Builder(p, "one_channel", 1, (1, 1, 2 * k + 3))
    b.x[0, -2:] = TOP
    b.x[0, 0:2] = [-0.0, 0.0]
    b.dy[0, -1] = -INF
    b.corner(
        "shape_one_channel",
        [(0, None)],
        "C = 1: a tie of the maximum in the remainder, -0 / +0, dy -Inf at the last beat",
        _shape("C==1"),
        _cx("remainder_extreme"),
        _cx("tie_max"),
        _sdy("neg_inf"),
    )
    return b.build("rne", "inf", "heavy", "lightnorm")


_BUILDERS = {
    "inf_points": _inf_points,
    "inf_chunk": _inf_chunk,
    "dy_points": _dy_points,
    "dy_chunk": _dy_chunk,
    "finite": _finite,
    "lanes_plus_1": _lanes_plus_1,
    "one_channel": _one_channel,
}


def directed_layers(p: CoreParams, names: Sequence[str] | None = None) -> list[DirectedLayer]:
    """The directed layers for core parameters ``p`` (all, or those named), in table order."""
    if p.num_chunks < 4 or p.lanes < 4 or p.variance:
        raise ValueError("directed layers need range statistics, K >= 4 and Lanes >= 4")
    unknown = set(names or ()) - set(_BUILDERS)
    if unknown:
        raise ValueError(f"unknown directed layers {sorted(unknown)}; choose from {LAYER_NAMES}")
    return [_BUILDERS[n](p) for n in LAYER_NAMES if names is None or n in names]


def corner_names(p: CoreParams | None = None) -> dict[str, str]:
    """corner name -> layer name, in table order (the same for every parameter set)."""
    return {c.name: c.layer for d in directed_layers(p or CoreParams()) for c in d.corners}


_CHUNK_RE = re.compile(r"\bchunk (\d+)")
_INDEX_RE = re.compile(r"\bstream index (\d+)")


def _mismatch_chunk(m: Mismatch, count: int, num_chunks: int) -> int | None:
    """The chunk a mismatch lies in (chunk statistics, stream elements), None if per channel."""
    hit = _CHUNK_RE.search(m.element)
    if hit:
        return int(hit.group(1))
    hit = _INDEX_RE.search(m.element)
    if hit:
        return min(int(hit.group(1)) // (count // num_chunks), num_chunks - 1)
    return None


def corner_mismatches(
    layer: DirectedLayer, mismatches: Sequence[Mismatch], num_chunks: int
) -> dict[str, list[Mismatch]]:
    """The mismatches of a directed layer's run that touch each of its corners.

    A mismatch without a channel (a refused command, a beat count) or on a padding lane touches
    every corner of the layer; one of a per-channel value (r, sigma, s, sums, ...) every corner
    in that channel; one of a chunk statistic or a stream element only the corners whose cells
    hold that chunk.
    """
    out: dict[str, list[Mismatch]] = {c.name: [] for c in layer.corners}
    for m in mismatches:
        if m.channel is None or m.channel >= layer.channels:
            for c in layer.corners:
                out[c.name].append(m)
            continue
        j = _mismatch_chunk(m, layer.count, num_chunks)
        for c in layer.corners:
            if any(
                ch == m.channel and (chunks is None or j is None or j in chunks)
                for ch, chunks in c.cells
            ):
                out[c.name].append(m)
    return out
