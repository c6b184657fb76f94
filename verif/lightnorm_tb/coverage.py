# SPDX-License-Identifier: Apache-2.0
"""Functional coverage of the LightNorm core testbench (cocotb-coverage 2.0, pure Python).

Named bins: commands, grad modes, rounding, overflow (saturate), shape classes, value
distributions, stall patterns, special values seen by the datapath, saturation / overflow
events in the outputs, illegal-configuration codes, reset in the middle of a layer, and the
cross of the run-time modes. Chunk granularity (docs/spec.md F2): the classes of every chunk
of x and of dy (:func:`chunk_classes`: infinite extremes, NaN first / last / alone, constant
chunk, ties, -0 / +0 extremes, an extreme in the remainder of the last chunk), how the
infinities of the chunk maxima and minima combine into the range r (:func:`range_flags`) and
the special values of each channel's sum of dy (:func:`sum_flags`); the directed corner layers
(``lightnorm_tb.directed``) hit every one of these bins. :func:`report` prints every bin with
its hit count and returns the overall coverage in percent; :func:`export` writes the database
(YAML) so that runs can be merged (``cocotb_coverage.coverage.merge_coverage``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from .layers import DISTRIBUTIONS, CoreParams, Expected, Layer, shape_class

__all__ = [
    "CHUNK_CLASSES",
    "RANGE_FLAGS",
    "SUM_FLAGS",
    "channel_streams",
    "chunk_bounds",
    "chunk_classes",
    "chunk_sample",
    "export",
    "range_flags",
    "report",
    "sample_command",
    "sample_context",
    "sample_error",
    "sample_layer",
    "sample_reset",
    "sum_flags",
]

OPS = ("STATS", "FINALIZE", "NORM", "BWD_SUMS", "BWD_FINALIZE", "BWD_DX", "INFER_PREP")
STALLS = ("none", "light", "heavy", "bursty")
SHAPES = (
    "C==1",
    "C<Lanes",
    "C==Lanes",
    "C==Lanes+1",
    "C%Lanes==0",
    "C%Lanes!=0",
    "C==MaxChannels",
    "n==2K",
    "n<2K",
    "n%K!=0",
    "n%K==0",
)
SPECIALS = ("nan", "inf", "subnormal", "zero", "max_normal")
EVENTS = (
    "y_saturated",
    "y_inf",
    "y_nan",
    "dx_saturated",
    "dx_inf",
    "dx_nan",
    "corr_applied",
    "all_equal_chunk",
    "scale_overflow",
)
ERRORS = ("no_channels", "too_many_channels", "count_small", "count_large", "bad_op")
#: Classes of one chunk of a stream (x or dy), in stream order (IEEE comparison, -0 = +0):
#: all_pos_inf / all_neg_inf  every element +Inf / -Inf (max = min = +-Inf)
#: max_pos_inf / min_neg_inf  the maximum is +Inf / the minimum is -Inf, the other extreme finite
#: pos_and_neg_inf            +Inf and -Inf in the chunk (no NaN)
#: nan_first                  the chunk's first element is NaN
#: nan_last                   the last element is the chunk's only NaN
#: nan_alone                  exactly one NaN, between two other elements
#: nan_chunk                  every element NaN
#: constant                   every element equal and finite (arg-max = arg-min)
#: tie_max / tie_min          a later element equal to the maximum / minimum (not constant)
#: zero_extreme               the maximum or the minimum is zero and the chunk holds -0 and +0
#: remainder_extreme          last chunk with a remainder (n % K != 0): its arg-max or arg-min
#:                            lies in the remainder (stream index K*m or later)
CHUNK_CLASSES = (
    "all_pos_inf",
    "all_neg_inf",
    "max_pos_inf",
    "min_neg_inf",
    "pos_and_neg_inf",
    "nan_first",
    "nan_last",
    "nan_alone",
    "nan_chunk",
    "constant",
    "tie_max",
    "tie_min",
    "zero_extreme",
    "remainder_extreme",
)
#: How the special values of the chunk extremes combine into r = (sum max - sum min) / K of a
#: channel: max_pos_inf_only (+Inf from a +Inf maximum only), min_neg_inf_only (+Inf from a
#: -Inf minimum only), max_and_min_inf (+Inf from both), inf_minus_inf (a chunk of +-Inf only:
#: its max and min enter with opposite signs, r = NaN), nan (a NaN extreme).
RANGE_FLAGS = ("max_pos_inf_only", "min_neg_inf_only", "max_and_min_inf", "inf_minus_inf", "nan")
#: Special values of a channel's sum of dy (accumulator A of the backward pass): +Inf only,
#: -Inf only, both (NaN), a NaN input.
SUM_FLAGS = ("pos_inf", "neg_inf", "inf_minus_inf", "nan")


def _member(val: Any, b: Any) -> bool:
    return b in val


@CoverPoint("core.command.op", xf=lambda op, stall: op, bins=list(OPS))
@CoverPoint("core.command.stall", xf=lambda op, stall: stall, bins=list(STALLS))
def sample_command(op: str, stall: str) -> None:
    """One command run (stall = pattern of its streams, 'none' for the per-channel phases)."""


@CoverPoint("core.mode.grad", xf=lambda d: d["grad"], bins=["bn", "range_exact"])
@CoverPoint("core.mode.rounding", xf=lambda d: d["rounding"], bins=["rne", "rtz"])
@CoverPoint("core.mode.overflow", xf=lambda d: d["overflow"], bins=["inf", "saturate"])
@CoverPoint("core.mode.range_constant", xf=lambda d: d["rc"], bins=["lightnorm", "banner", "gauss"])
@CoverCross("core.mode.cross", items=["core.mode.grad", "core.mode.rounding", "core.mode.overflow"])
@CoverPoint("core.shape", xf=lambda d: d["shape"], bins=list(SHAPES), rel=_member, inj=False)
@CoverPoint("core.dist.x", xf=lambda d: d["dist_x"], bins=list(DISTRIBUTIONS))
@CoverPoint("core.dist.dy", xf=lambda d: d["dist_dy"], bins=list(DISTRIBUTIONS))
@CoverPoint(
    "core.special.x", xf=lambda d: d["special_x"], bins=list(SPECIALS), rel=_member, inj=False
)
@CoverPoint(
    "core.special.dy", xf=lambda d: d["special_dy"], bins=list(SPECIALS), rel=_member, inj=False
)
@CoverPoint("core.events", xf=lambda d: d["events"], bins=list(EVENTS), rel=_member, inj=False)
@CoverPoint(
    "core.chunk.x", xf=lambda d: d["chunk_x"], bins=list(CHUNK_CLASSES), rel=_member, inj=False
)
@CoverPoint(
    "core.chunk.dy", xf=lambda d: d["chunk_dy"], bins=list(CHUNK_CLASSES), rel=_member, inj=False
)
@CoverPoint(
    "core.range.flags", xf=lambda d: d["range"], bins=list(RANGE_FLAGS), rel=_member, inj=False
)
@CoverPoint("core.sum.dy", xf=lambda d: d["sum_dy"], bins=list(SUM_FLAGS), rel=_member, inj=False)
def _sample(d: dict[str, Any]) -> None:
    pass


@CoverPoint("core.error", xf=lambda name: name, bins=list(ERRORS))
def sample_error(name: str) -> None:
    """An illegal configuration refused with this code."""


@CoverPoint(
    "core.reset", xf=lambda where: where, bins=["mid_stats", "mid_norm", "mid_bwd", "mid_finalize"]
)
def sample_reset(where: str) -> None:
    """A reset in the middle of a layer (followed by a clean layer)."""


@CoverPoint(
    "core.context",
    xf=lambda kind: kind,
    bins=["restore_bn", "restore_range_exact", "channel_tile"],
)
def sample_context(kind: str) -> None:
    """A layer context restored before a later phase (by the layer's gradient), or a channel
    tile of a wider layer."""


def _specials(v: np.ndarray, max_normal: float, min_normal: float) -> list[str]:
    a = np.abs(v[np.isfinite(v)])
    out = []
    if np.any(np.isnan(v)):
        out.append("nan")
    if np.any(np.isinf(v)):
        out.append("inf")
    if np.any((a > 0) & (a < min_normal)):
        out.append("subnormal")
    if np.any(a == 0):
        out.append("zero")
    if np.any(a == max_normal):
        out.append("max_normal")
    return out


def chunk_bounds(count: int, num_chunks: int) -> list[tuple[int, int]]:
    """[lo, hi) stream indices of each chunk: m = n // K, the last chunk takes the remainder."""
    m = count // num_chunks
    return [(j * m, (j + 1) * m if j < num_chunks - 1 else count) for j in range(num_chunks)]


def channel_streams(v: Any) -> np.ndarray:
    """(N, C, *spatial) -> (C, n): each channel's values in stream order (float64)."""
    a = np.asarray(v, dtype=np.float64)
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


def chunk_classes(stream: np.ndarray, num_chunks: int) -> list[set[str]]:
    """The :data:`CHUNK_CLASSES` of each chunk of one channel's stream (values as stored)."""
    n = len(stream)
    m = n // num_chunks
    out = []
    for lo, hi in chunk_bounds(n, num_chunks):
        c = stream[lo:hi]
        s: set[str] = set()
        nan = np.isnan(c)
        if nan.all():
            s |= {"nan_chunk", "nan_first"}
        elif nan[0]:
            s.add("nan_first")
        elif nan.sum() == 1:
            s.add("nan_last" if nan[-1] else "nan_alone")
        if not nan.any():
            mx, mn = float(c.max()), float(c.min())
            if mx == mn == np.inf:
                s.add("all_pos_inf")
            elif mx == mn == -np.inf:
                s.add("all_neg_inf")
            elif mx == np.inf and mn == -np.inf:
                s.add("pos_and_neg_inf")
            elif mx == np.inf:
                s.add("max_pos_inf")
            elif mn == -np.inf:
                s.add("min_neg_inf")
            if mx == mn:
                if np.isfinite(mx):
                    s.add("constant")
            else:
                if np.count_nonzero(c == mx) > 1:
                    s.add("tie_max")
                if np.count_nonzero(c == mn) > 1:
                    s.add("tie_min")
            zero = c == 0
            both_zeros = np.any(zero & np.signbit(c)) and np.any(zero & ~np.signbit(c))
            if (mx == 0 or mn == 0) and both_zeros:
                s.add("zero_extreme")
            if hi - lo > m and (int(np.argmax(c)) >= m or int(np.argmin(c)) >= m):
                s.add("remainder_extreme")
        out.append(s)
    return out


def range_flags(chunk_max: np.ndarray, chunk_min: np.ndarray) -> str | None:
    """The :data:`RANGE_FLAGS` class of one channel's chunk extremes (None: all finite)."""
    if np.any(np.isnan(chunk_max)) or np.any(np.isnan(chunk_min)):
        return "nan"
    from_max = bool(np.any(chunk_max == np.inf))
    from_min = bool(np.any(chunk_min == -np.inf))
    # a -Inf maximum or a +Inf minimum: a chunk of infinities of one sign only
    negative = bool(np.any(chunk_max == -np.inf) or np.any(chunk_min == np.inf))
    if negative:
        return "inf_minus_inf"
    if from_max and from_min:
        return "max_and_min_inf"
    if from_max:
        return "max_pos_inf_only"
    if from_min:
        return "min_neg_inf_only"
    return None


def sum_flags(stream: np.ndarray) -> str | None:
    """The :data:`SUM_FLAGS` class of the values of one channel's sum (None: all finite)."""
    if np.any(np.isnan(stream)):
        return "nan"
    pos, neg = bool(np.any(stream == np.inf)), bool(np.any(stream == -np.inf))
    if pos and neg:
        return "inf_minus_inf"
    return "pos_inf" if pos else "neg_inf" if neg else None


def chunk_sample(exp: Expected, num_chunks: int) -> dict[str, list[str]]:
    """The chunk-granularity bins of a layer's model results (every channel, every chunk)."""
    assert exp.fwd is not None and exp.bwd is not None
    xs = channel_streams(exp.fwd.x_c)
    dys = channel_streams(exp.bwd.dy_c)
    chunk_x: set[str] = set()
    chunk_dy: set[str] = set()
    rng: set[str] = set()
    sums: set[str] = set()
    for c in range(xs.shape[0]):
        for s in chunk_classes(xs[c], num_chunks):
            chunk_x |= s
        for s in chunk_classes(dys[c], num_chunks):
            chunk_dy |= s
        if exp.fwd.chunk_max is not None and exp.fwd.chunk_min is not None:
            r = range_flags(exp.fwd.chunk_max[c], exp.fwd.chunk_min[c])
            if r is not None:
                rng.add(r)
        f = sum_flags(dys[c])
        if f is not None:
            sums.add(f)
    return {
        "chunk_x": sorted(chunk_x),
        "chunk_dy": sorted(chunk_dy),
        "range": sorted(rng),
        "sum_dy": sorted(sums),
    }


def sample_layer(layer: Layer, exp: Expected, p: CoreParams) -> None:
    """Sample the modes, shape, distributions, special values and events of a checked layer."""
    cfg = layer.cfg
    fmt = p.fmt
    sat = cfg.overflow.value == "saturate"
    if exp.fwd is None or exp.bwd is None:
        return
    events = []
    for name, v in (("y", exp.fwd.y), ("dx", exp.bwd.dx)):
        a = np.abs(v)
        if sat and np.any(a == fmt.max_normal):
            events.append(f"{name}_saturated")
        if np.any(np.isinf(v)):
            events.append(f"{name}_inf")
        if np.any(np.isnan(v)):
            events.append(f"{name}_nan")
    if cfg.grad_mode.value == "range_exact" and exp.fwd.chunk_argmax is not None:
        distinct = exp.fwd.chunk_argmax != exp.fwd.chunk_argmin
        if np.any(distinct):
            events.append("corr_applied")
        if np.any(~distinct):
            events.append("all_equal_chunk")
    elif exp.fwd.chunk_argmax is not None and np.any(exp.fwd.chunk_argmax == exp.fwd.chunk_argmin):
        events.append("all_equal_chunk")
    # s is a per-channel scalar: it saturates at the statistics format's max_normal
    st_max = cfg.stat_format.max_normal
    if np.any(~np.isfinite(exp.fwd.scale)) or np.any(np.abs(exp.fwd.scale) == st_max):
        events.append("scale_overflow")
    _sample(
        {
            "grad": cfg.grad_mode.value,
            "rounding": cfg.rounding.value,
            "overflow": cfg.overflow.value,
            "rc": cfg.range_constant.value,
            "shape": shape_class(layer.channels, layer.count, p),
            "dist_x": layer.dist_x,
            "dist_dy": layer.dist_dy,
            "special_x": _specials(exp.fwd.x_c.astype(np.float64), fmt.max_normal, fmt.min_normal),
            "special_dy": _specials(
                exp.bwd.dy_c.astype(np.float64), fmt.max_normal, fmt.min_normal
            ),
            "events": events,
            **chunk_sample(exp, exp.fwd.constants.num_chunks if not p.variance else 1),
        }
    )


def report(log: Any) -> float:
    """Log every cover point with its bins; return the overall coverage in percent."""
    lines: list[str] = []
    coverage_db.report_coverage(lines.append, bins=True)
    for line in lines:
        log.info("%s", line)
    top = coverage_db["core"]
    pct = 100.0 * top.coverage / max(top.size, 1)
    log.info("functional coverage: %d of %d bins hit (%.1f %%)", top.coverage, top.size, pct)
    holes = []
    for name, item in coverage_db.items():
        if hasattr(item, "detailed_coverage") and isinstance(item.detailed_coverage, dict):
            holes += [f"{name}:{b}" for b, hits in item.detailed_coverage.items() if hits == 0]
    if holes:
        log.info("coverage holes: %s", ", ".join(holes))
    return pct


def export(path: str) -> None:
    coverage_db.export_to_yaml(filename=path)
