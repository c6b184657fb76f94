# SPDX-License-Identifier: Apache-2.0
"""Bit-exact reference model of LightNorm (the scoreboard's oracle), after docs/spec.md.

Tensors are (N, C, *spatial) like torch (rank >= 2, channel axis 1). Per channel the
hardware sees a stream of n = N * prod(spatial) values in row-major (N, *spatial) order;
``_stream`` turns a tensor into that (C, n) view. Every operator is correctly rounded to the
format the spec names (lightnorm.arith); sums are exact and rounded once (or, with
``accumulation="sequential"``, rounded at every addition in stream order).

Step names (F1..F6, B1..B5, I1..I3) are those of docs/spec.md and of the RTL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lightnorm.arith import (
    _add_values,
    _each_block,
    _exact_channel_sums,
    _mul_values,
    add,
    mul_exact_inputs,
    recip,
    rsqrt,
    sub,
    sum_round,
)
from lightnorm.bfp import SharedExpRule, _bfp_values
from lightnorm.config import Accumulation, GradMode, LightNormConfig, Statistics, range_constant
from lightnorm.formats import FloatFormat, Overflow, Rounding, quantize

# Spec section 2: per-channel results (stat_format, running_format) always saturate.
sat = Overflow.SATURATE

__all__ = [
    "BackwardResult",
    "ForwardResult",
    "InferenceResult",
    "LayerConstants",
    "backward",
    "chunk_bounds",
    "forward_infer",
    "forward_train",
    "ideal_backward",
    "ideal_forward",
    "layer_constants",
]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LayerConstants:
    """Per-layer constants the host computes and loads into the core (spec section 4).

    All are values of ``stat_format`` except ``inv_count_unbiased`` (running_format).
    """

    count: int  # n = N * H * W
    chunk_len: int  # m = n // K_n (the last chunk also takes the n % K_n remainder)
    num_chunks: int  # K_n = min(K, 2^(floor(log2 n) - 1)), the range-statistics chunks
    inv_count: float  # round(1 / n)
    inv_count_unbiased: float  # round(1 / (n - 1)), for the running variance
    range_const: float  # round(C(m))
    range_const_per_chunk: float  # round(C(m) / K_n)
    eps: float  # round(eps)


@dataclass(frozen=True)
class ForwardResult:
    """Outputs and every intermediate of the training forward pass (per-channel arrays: (C,))."""

    y: F32  # F5: output as stored (after BFP), values of compute_format
    x_c: F32  # F1: input as the datapath sees it
    y_c: F32  # F4: output before BFP
    sum_x: F64  # F2: round(sum x)
    mean: F64  # F2: mu = round(sum(x) * (1/n)), fused
    chunk_max: F64 | None  # F2 (range): (C, K_n)
    chunk_min: F64 | None
    chunk_argmax: npt.NDArray[np.int64] | None  # stream index of the first maximum
    chunk_argmin: npt.NDArray[np.int64] | None
    range_mean: F64 | None  # F2 (range): r = round(sum(max - min) / K_n)
    sigma: F64 | None  # F2 (range): sigma_hat = round(r * C)
    var: F64 | None  # F2 (variance): round(sum(d^2) * (1/n))
    scale: F64  # F2: s
    gamma: F64  # F3: gamma, beta rounded to stat_format
    beta: F64
    coeff: F64  # F3: a = round(gamma * s)
    running_mean: F32 | None  # F6
    running_var: F32 | None
    constants: LayerConstants


@dataclass(frozen=True)
class BackwardResult:
    """Outputs and every intermediate of the backward pass."""

    dx: F32  # B5: input gradient as stored (after BFP), values of grad_format
    d_gamma: F64  # B2
    d_beta: F64  # B2
    dy_c: F32  # B1: output gradient as the datapath sees it
    x_hat: F32  # B2: round(round(x - mu) * s), compute_format
    k_beta: F64  # B3: round(sum(dy) * (1/n)), fused
    k_gamma: F64  # B3: round(sum(dy * x_hat) * (1/n)), fused
    correction: F64 | None  # B3 (range_exact): round(round(a * d_gamma) * C/K_n)
    dx_c: F32  # B4: before BFP


@dataclass(frozen=True)
class InferenceResult:
    y: F32
    x_c: F32
    y_c: F32
    mean: F64
    scale: F64
    coeff: F64


class _SequentialSums:
    """Per-channel sums accumulated one value at a time in stream order, each addition rounded
    to the statistics format and saturating (``accumulation="sequential"``, spec section 4):
    s_1 = v_0, s_(i+1) = add(s_i, v_i). The same ``round`` as the exact sums: a read with a
    scale is one multiplication (one rounding)."""

    def __init__(self, values3: npt.NDArray[Any], cfg: LightNormConfig) -> None:
        st, rnd = cfg.stat_format, cfg.rounding
        vs = _stream(np.asarray(values3, dtype=np.float64))
        total = None
        if st == FloatFormat(8, 23) and rnd is Rounding.RNE:
            # IEEE binary32 with RNE: numpy's add.accumulate is exactly this sequence of
            # float32 additions; channels whose sum left the finite range are redone below
            # (saturation), as are those holding a NaN / Inf (same result, kept simple).
            with np.errstate(all="ignore"):
                total = np.add.accumulate(vs.astype(np.float32), axis=1)[:, -1].astype(np.float64)
            redo = ~np.isfinite(total) | ~np.isfinite(vs).all(axis=1)
            if redo.any():
                total[redo] = self.sequential(vs[redo], st, rnd)
        else:
            total = self.sequential(vs, st, rnd)
        self.total = total

    @staticmethod
    def sequential(vs: F64, st: FloatFormat, rnd: Rounding) -> F64:
        """s_1 = v_0, s_(i+1) = add(s_i, v_i) in ``st`` (saturating), rows of ``vs`` = channels."""
        total = vs[:, 0].copy()  # an element value: exact in st (checked by the config)
        with np.errstate(all="ignore"):
            for i in range(1, vs.shape[1]):
                total = add(total, vs[:, i], st, rnd, sat)
        return total

    def round(
        self, fmt: FloatFormat, rounding: Any = "rne", overflow: Any = "inf", scale: float = 1.0
    ) -> F64:
        """round(scale * sum) to ``fmt`` (a format holding the statistics format): the sum as
        it is for scale 1, else one multiplication."""
        if scale == 1.0:
            return quantize(self.total, fmt, rounding, overflow)
        return mul_exact_inputs(self.total, scale, fmt, rounding, overflow)


def _channel_sums(values3: npt.NDArray[Any], lsb: int, cfg: LightNormConfig) -> Any:
    """The per-channel sums of (N, C, B) element values (LSB 2^lsb) as ``cfg.accumulation``
    says: exact (rounded once when read) or sequential."""
    if cfg.accumulation is Accumulation.SEQUENTIAL:
        return _SequentialSums(values3, cfg)
    return _exact_channel_sums(values3, lsb)


def _stream(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(N, C, *spatial) -> (C, n) in stream order."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


def _unstream(s: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    moved = (shape[1], shape[0], *shape[2:])
    return np.moveaxis(s.reshape(moved), 0, 1)


def chunk_bounds(count: int, num_chunks: int) -> list[tuple[int, int]]:
    """Stream-index ranges [start, stop) of ``num_chunks`` chunks (a layer's K_n,
    LayerConstants.num_chunks / LightNormConfig.chunk_count).

    Length m = n // num_chunks each, the last chunk also takes the remainder.
    """
    m = count // num_chunks
    return [(k * m, (k + 1) * m if k < num_chunks - 1 else count) for k in range(num_chunks)]


def layer_constants(count: int, cfg: LightNormConfig, eps: float = 1e-5) -> LayerConstants:
    """The constants of a layer with ``count`` values per channel (raises if count is too small).

    Range statistics use K_n = cfg.chunk_count(n) chunks (K itself for n >= 2K, spec section 4).
    """
    if count < cfg.min_count():
        raise ValueError(
            f"n (values per channel) must be >= {cfg.min_count()} for a training pass "
            f"(statistics {cfg.statistics.value!r}), got n = {count}"
        )
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    st, rnd = cfg.stat_format, cfg.rounding
    kn = cfg.chunk_count(count)
    m = count // kn
    c = range_constant(cfg.range_constant, m) if cfg.statistics is Statistics.RANGE else 0.0
    q = lambda v, f=st: float(quantize(np.float64(v), f, rnd, sat))  # noqa: E731
    return LayerConstants(
        count=count,
        chunk_len=m,
        num_chunks=kn,
        inv_count=float(recip(float(count), st, rnd, sat)),
        inv_count_unbiased=float(recip(float(count - 1), cfg.running_format, rnd, sat)),
        range_const=q(c),
        range_const_per_chunk=q(c / kn),
        eps=q(eps),
    )


def _check_input(name: str, x: Any, channels: int | None = None) -> npt.NDArray[Any]:
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must have rank >= 2 (N, C, ...), got shape {arr.shape}")
    if channels is not None and arr.shape[1] != channels:
        raise ValueError(f"{name} has {arr.shape[1]} channels, expected {channels}")
    return arr


def _check_param(name: str, v: Any, channels: int, finite: bool = True) -> F64:
    arr = np.asarray(v, dtype=np.float64)
    if arr.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


# Implementation notes (speed without changing a bit; docs/spec.md is the contract):
# - Element tensors are kept as float32 in the (N, C, *spatial) layout, viewed as (N, C, B).
#   Every value of every FP(E <= 8, M <= 23) format is a float32 value, so this is exact.
#   Per-channel operands broadcast as (1, C, 1); only the chunk extrema need the stream
#   order (one transposed copy per chunk). Element passes run block by block
#   (arith._blocks) so that temporaries stay in cache.
# - Operators on values of known formats use arith's fast paths (_add_values: exact float64
#   sum, no TwoSum, when the formats' spans allow; _mul_values: float32 products when
#   exact); they fall back to the general operators otherwise. A per-channel chain of them
#   on a narrow format is a table lookup (_ChannelMap).
# - Sums use _exact_channel_sums (a plain float64 sum when it provably fits 53 bits).
# - Where numpy's result is not defined by the values alone (the sign of a zero maximum),
#   the stream formulation's own reduction is used. NaN payloads are not part of the
#   contract (the hardware emits the canonical NaN) and may differ from it.


def _bfp_keeps_format(fmt: FloatFormat, cfg: LightNormConfig) -> bool:
    """True when quantize(bfp_quantize(q), fmt) == bfp_quantize(q) for every q of ``fmt``.

    Let b = R(x / 2^s) * 2^s, s = E - man_bits + 1, for an element x of fmt with exponent
    <= E. If 2^s <= x's ulp, b = x. Otherwise b lies on the grid 2^s > fmt's subnormal step
    and keeps at most M significant bits of x, unless it rounds up to 2^(e_x + 1), which is
    in fmt unless it is 2^(emax + 1): only possible under rule MAX when the largest element
    carries (man_bits <= M) into E = emax + 1, ruled out by exp_max <= emax. The other
    cases are the saturated (2^man_bits - 1) * 2^s (E clamped at exp_max, or a carry in a
    SECOND_MAX group), a value of fmt when man_bits <= M + 1 and otherwise impossible when
    exp_max >= emax (no clamp; and x has <= M + 1 < man_bits bits: no carry). SECOND_MAX
    passes larger elements through. NaN stays NaN, +-Inf stays (under "saturate" q has no Inf).
    """
    b = cfg.bfp
    assert b is not None
    m = fmt.man_bits
    return (
        b.rule is SharedExpRule.SECOND_MAX
        or b.man_bits == m + 1
        or (b.man_bits > m + 1 and b.exp_max >= fmt.emax)
        or (b.man_bits <= m and b.exp_max <= fmt.emax)
    )


def _stored(v: Any, fmt: FloatFormat, cfg: LightNormConfig, rounded: bool = False) -> F32:
    """Element format, then (if enabled) a store to and load from BFP, then the element format.

    Returns float32 (exact: values of fmt). ``rounded``: v already holds outputs of
    quantize(., fmt, rounding, overflow), which quantize maps to themselves (it is
    idempotent), so the first rounding is skipped.
    """
    rnd, ovf = cfg.rounding, cfg.overflow
    if rounded:
        q = np.asarray(v, dtype=np.float32)
        if cfg.bfp is None:
            return q.copy()
    else:
        q = quantize(np.asarray(v), fmt, rnd, ovf).astype(np.float32, copy=False)
    if cfg.bfp is None:
        return q
    b = _bfp_values(q, cfg.bfp, 1, rnd)  # a new array
    return b if _bfp_keeps_format(fmt, cfg) else quantize(b, fmt, rnd, ovf)


_ElementFn = Callable[[npt.NDArray[Any], npt.NDArray[np.intp]], npt.NDArray[Any]]
_Block = tuple[slice, slice, slice]


@functools.lru_cache(maxsize=None)
def _table_keys(fmt: FloatFormat) -> tuple[F32, npt.NDArray[np.intp]]:
    """The float32 inputs of a per-channel table of ``fmt`` and their keys (see _ChannelMap).

    Key = float32 bits >> (23 - M): every value of fmt has zero bits below (at most M
    fraction bits, also its subnormals), so the key identifies it. The inputs are the
    values of fmt and the NaN patterns with zero bits below the key.
    """
    keys = np.arange(1 << (9 + fmt.man_bits), dtype=np.uint32)
    vals = (keys << np.uint32(23 - fmt.man_bits)).view(np.float32)
    with np.errstate(invalid="ignore"):
        member = (quantize(vals, fmt) == vals) | np.isnan(vals)
    return vals[member], keys[member].astype(np.intp)


class _ChannelMap:
    """y = fn(x, c) over (N, C, B) blocks x whose elements are values of ``fmt``.

    fn is an elementwise chain of exact operators with per-channel operands, so y depends
    only on (c, x), and a narrow format has few values (fp10_e5m4: 994 plus NaNs). When that
    pays, fn is evaluated once for every (channel, value of fmt) into a table indexed by
    c * 2^(9+M) + key(x) (see _table_keys): each element then gets exactly fn(x, c). A NaN
    with payload bits below the key is not in the table and is evaluated directly.
    """

    def __init__(self, fn: _ElementFn, fmt: FloatFormat, channels: int, total: int) -> None:
        self.fn = fn
        self.channels = np.arange(channels, dtype=np.intp)[None, :, None]
        self.table: F32 | None = None
        width = 1 << (9 + fmt.man_bits)
        if fmt.man_bits <= 10 and channels * width * 2 <= total:
            vals, keys = _table_keys(fmt)
            table = np.zeros((channels, width), dtype=np.float32)
            with np.errstate(invalid="ignore", over="ignore"):  # the NaN and Inf inputs
                table[:, keys] = fn(vals[None, :], self.channels[0])
            self.table = table.reshape(-1)
            self.shift = np.uint32(23 - fmt.man_bits)
            self.low = np.uint32((1 << (23 - fmt.man_bits)) - 1)
            self.offsets = self.channels * width

    def __call__(self, xb: F32) -> npt.NDArray[Any]:
        if self.table is None:
            return self.fn(xb, self.channels)
        bits = xb.view(np.uint32)
        key = np.right_shift(bits, self.shift)
        out = np.take(self.table, np.add(key, self.offsets, dtype=np.intp))
        below = np.bitwise_and(bits, self.low, out=key)
        if below.any():  # only a NaN has bits below the key
            pos = np.nonzero(below)
            out[pos] = self.fn(xb[pos], pos[1])
        return out


def _centered_fn(mean: F64, cfg: LightNormConfig) -> _ElementFn:
    """x -> round(x - mu) to compute_format (x: compute values, mu: a stat value)."""
    cf, st, rnd, ovf = cfg.compute_format, cfg.stat_format, cfg.rounding, cfg.overflow
    neg_mean = -mean

    def fn(v: npt.NDArray[Any], ch: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        return _add_values(v, neg_mean[ch], cf, rnd, ovf, cf, st)

    return fn


def _normalize_fn(mean: F64, coeff: F64, beta: F64, cfg: LightNormConfig) -> _ElementFn:
    """F4 / I3: x -> round(round(round(x - mu) * a) + beta), compute_format."""
    cf, st, rnd, ovf = cfg.compute_format, cfg.stat_format, cfg.rounding, cfg.overflow
    centered = _centered_fn(mean, cfg)

    def fn(v: npt.NDArray[Any], ch: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        p = _mul_values(centered(v, ch), coeff[ch], cf, rnd, ovf, cf, st)
        return _add_values(p, beta[ch], cf, rnd, ovf, cf, st).astype(np.float32, copy=False)

    return fn


def _square_fn(mean: F64, cfg: LightNormConfig) -> _ElementFn:
    """F2 (variance): x -> q = round(d * d), d = round(x - mu), compute_format."""
    cf, rnd, ovf = cfg.compute_format, cfg.rounding, cfg.overflow
    centered = _centered_fn(mean, cfg)

    def fn(v: npt.NDArray[Any], ch: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        d = centered(v, ch)
        return _mul_values(d, d, cf, rnd, ovf, cf, cf).astype(np.float32, copy=False)

    return fn


def _scale_fn(
    centered: _ElementFn | None,
    factor: F64,
    fmt: FloatFormat,
    fv: FloatFormat,
    cfg: LightNormConfig,
) -> _ElementFn:
    """v -> round(centered(v) * factor_c) to fmt (v itself when centered is None); the
    operands are values of fv (or compute_format after centered) and of stat_format."""
    st, rnd, ovf = cfg.stat_format, cfg.rounding, cfg.overflow
    fa = cfg.compute_format if centered is not None else fv

    def fn(v: npt.NDArray[Any], ch: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        d = centered(v, ch) if centered is not None else v
        return _mul_values(d, factor[ch], fmt, rnd, ovf, fa, st).astype(np.float32, copy=False)

    return fn


def _chunk_extrema(
    x3: F32, bounds: list[tuple[int, int]]
) -> tuple[F64, F64, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per chunk max, min (float64) and the stream index of their first occurrence, (C, K_n).

    x3 is the (N, C, B) tensor: stream index i of a channel is element (i // B, i % B).
    numpy's arg-max/arg-min return the first occurrence and the first NaN, as the spec says.
    """
    channels, inner = x3.shape[1], x3.shape[2]
    if all(a % inner == 0 and b % inner == 0 for a, b in bounds):
        # Chunks of whole (C, B) slices: transpose one chunk at a time into stream order.
        def chunk(a: int, b: int) -> F32:
            part = x3[a // inner : b // inner].transpose(1, 0, 2)
            return np.ascontiguousarray(part).reshape(channels, b - a)
    else:
        xs = np.ascontiguousarray(np.moveaxis(x3, 1, 0)).reshape(channels, -1)

        def chunk(a: int, b: int) -> F32:
            return xs[:, a:b]

    shape = (channels, len(bounds))
    cmax, cmin = np.empty(shape), np.empty(shape)
    amax, amin = np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.int64)
    for j, (a, b) in enumerate(bounds):
        rows = chunk(a, b)
        cmax[:, j], cmin[:, j] = rows.max(axis=-1), rows.min(axis=-1)
        amax[:, j], amin[:, j] = rows.argmax(axis=-1) + a, rows.argmin(axis=-1) + a
    # The sign of a zero extremum (+0 and -0 compare equal) depends on numpy's reduction
    # order, which depends on the array's dtype and memory layout: take it from the same
    # reduction as the stream formulation, _stream of the float64 (N, C, B) tensor sliced
    # per chunk (a copy in stream order, or a transposed view when B == 1).
    zero_max, zero_min = cmax == 0.0, cmin == 0.0
    if np.any(zero_max) or np.any(zero_min):
        xs64 = _stream(x3.astype(np.float64))
        for j, (a, b) in enumerate(bounds):
            if np.any(zero_max[:, j]):
                cmax[:, j] = np.where(zero_max[:, j], xs64[:, a:b].max(axis=-1), cmax[:, j])
            if np.any(zero_min[:, j]):
                cmin[:, j] = np.where(zero_min[:, j], xs64[:, a:b].min(axis=-1), cmin[:, j])
    return cmax, cmin, amax, amin


def _as3(v: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(N, C, *spatial) -> (N, C, B), B = prod(spatial) (a view when v is contiguous)."""
    return v.reshape(v.shape[0], v.shape[1], -1)


def _store_blocks(
    v3: npt.NDArray[Any], fmt: FloatFormat, cfg: LightNormConfig, rounded: bool = False
) -> F32:
    """:func:`_stored` of an (N, C, B) tensor, block by block (see arith._blocks)."""
    out = np.empty(v3.shape, dtype=np.float32)

    def body(blk: _Block) -> None:
        out[blk] = _stored(v3[blk], fmt, cfg, rounded)

    _each_block(v3.shape, body)
    return out


def _normalize_blocks(
    x3: F32, mean: F64, coeff: F64, beta: F64, cfg: LightNormConfig
) -> tuple[F32, F32]:
    """F4 + F5 / I3: (y_c, y) of an (N, C, B) tensor, block by block."""
    fn = _normalize_fn(mean, coeff, beta, cfg)
    normalize = _ChannelMap(fn, cfg.compute_format, x3.shape[1], x3.size)
    y_c = np.empty(x3.shape, dtype=np.float32)
    y = np.empty(x3.shape, dtype=np.float32)

    def body(blk: _Block) -> None:
        y_c[blk] = yb = normalize(x3[blk])
        y[blk] = _stored(yb, cfg.compute_format, cfg, rounded=True)

    _each_block(x3.shape, body)
    return y_c, y


def forward_train(
    x: Any,
    gamma: Any,
    beta: Any,
    cfg: LightNormConfig,
    running_mean: Any = None,
    running_var: Any = None,
    eps: float = 1e-5,
    momentum: float = 0.1,
) -> ForwardResult:
    """The training forward pass (spec section 6): statistics of this batch, normalize, update
    the running statistics when both are given (momentum as in torch: new = (1-m)*old + m*batch)."""
    x = _check_input("x", x)
    channels = x.shape[1]
    gamma_in = _check_param("gamma", gamma, channels)
    beta_in = _check_param("beta", beta, channels)
    count = x.size // channels
    k = layer_constants(count, cfg, eps)
    st, rnd = cfg.stat_format, cfg.rounding
    cf = cfg.compute_format

    # F1: the input as stored (element format, BFP) and read back into the datapath.
    x3 = _store_blocks(_as3(x), cf, cfg)
    lsb = cf.emin - cf.man_bits

    # F2: statistics.
    acc_x = _channel_sums(x3, lsb, cfg)
    sum_x = acc_x.round(st, rnd, sat)
    mean = acc_x.round(st, rnd, sat, scale=k.inv_count)
    cmax = cmin = amax = amin = rmean = sigma = var = None
    if cfg.statistics is Statistics.RANGE:
        cmax, cmin, amax, amin = _chunk_extrema(x3, chunk_bounds(count, k.num_chunks))
        both = np.concatenate([cmax, -cmin], axis=-1) / k.num_chunks
        rmean = sum_round(both, st, axis=-1, rounding=rnd, overflow=sat)
        sigma = mul_exact_inputs(rmean, k.range_const, st, rnd, sat)
        scale = recip(add(sigma, k.eps, st, rnd, sat), st, rnd, sat)
    else:
        square = _ChannelMap(_square_fn(mean, cfg), cf, channels, x3.size)
        sq = np.empty(x3.shape, dtype=np.float32)

        def body(blk: _Block) -> None:
            sq[blk] = square(x3[blk])

        _each_block(x3.shape, body)
        acc_sq = _channel_sums(sq, lsb, cfg)
        var = acc_sq.round(st, rnd, sat, scale=k.inv_count)
        scale = rsqrt(add(var, k.eps, st, rnd, sat), st, rnd, sat)

    # F3: per-channel coefficients.
    g = quantize(gamma_in, st, rnd, sat)
    b = quantize(beta_in, st, rnd, sat)
    coeff = mul_exact_inputs(g, scale, st, rnd, sat)

    # F4 + F5: normalize, store.
    y_c, y = _normalize_blocks(x3, mean, coeff, b, cfg)

    # F6: running statistics.
    rm_new = rv_new = None
    if running_mean is not None and running_var is not None:
        rm = _check_param("running_mean", running_mean, channels, finite=False)
        rv = _check_param("running_var", running_var, channels, finite=False)
        rf = cfg.running_format
        if sigma is not None:
            batch_var = mul_exact_inputs(sigma, sigma, rf, rnd, sat)
        else:
            batch_var = acc_sq.round(rf, rnd, sat, scale=k.inv_count_unbiased)
        mom = float(quantize(np.float64(momentum), rf, rnd, sat))
        keep = float(quantize(np.float64(1.0 - momentum), rf, rnd, sat))
        rm_q, rv_q = quantize(rm, rf, rnd, sat), quantize(rv, rf, rnd, sat)
        rm_new = add(
            mul_exact_inputs(rm_q, keep, rf, rnd, sat),
            mul_exact_inputs(mean, mom, rf, rnd, sat),
            rf,
            rnd,
            sat,
        ).astype(np.float32)
        rv_new = add(
            mul_exact_inputs(rv_q, keep, rf, rnd, sat),
            mul_exact_inputs(batch_var, mom, rf, rnd, sat),
            rf,
            rnd,
            sat,
        ).astype(np.float32)

    return ForwardResult(
        y=y.reshape(x.shape),
        x_c=x3.reshape(x.shape),
        y_c=y_c.reshape(x.shape),
        sum_x=sum_x,
        mean=mean,
        chunk_max=cmax,
        chunk_min=cmin,
        chunk_argmax=amax,
        chunk_argmin=amin,
        range_mean=rmean,
        sigma=sigma,
        var=var,
        scale=scale,
        gamma=g,
        beta=b,
        coeff=coeff,
        running_mean=rm_new,
        running_var=rv_new,
        constants=k,
    )


def backward(dy: Any, fwd: ForwardResult, cfg: LightNormConfig) -> BackwardResult:
    """The backward pass (spec section 7) from the output gradient and the forward's state.

    Uses of the forward: x_c (re-read from storage), mean, scale, coeff (a = gamma * s),
    the chunk arg-max/arg-min (range_exact) and the layer constants.
    """
    x_c = fwd.x_c
    dy = _check_input("dy", dy, x_c.shape[1])
    if dy.shape != x_c.shape:
        raise ValueError(f"dy has shape {dy.shape}, expected {x_c.shape}")
    cf, gf, st = cfg.compute_format, cfg.grad_format, cfg.stat_format
    rnd, ovf = cfg.rounding, cfg.overflow
    k = fwd.constants
    channels = x_c.shape[1]
    x3 = _as3(np.asarray(x_c, dtype=np.float32))
    dy_in = _as3(dy)

    # B1 + B2 pass 1: the output gradient as stored and read back; x_hat, dy * x_hat.
    dy3 = np.empty(x3.shape, dtype=np.float32)
    x_hat = np.empty(x3.shape, dtype=np.float32)
    prod = np.empty(x3.shape, dtype=np.float32)
    normalized = _scale_fn(_centered_fn(fwd.mean, cfg), fwd.scale, cf, cf, cfg)
    to_x_hat = _ChannelMap(normalized, cf, channels, x3.size)

    def pass1(blk: _Block) -> None:
        dy3[blk] = dyb = _stored(dy_in[blk], gf, cfg)
        x_hat[blk] = xh = to_x_hat(x3[blk])
        prod[blk] = _mul_values(dyb, xh, gf, rnd, ovf, gf, cf)

    _each_block(x3.shape, pass1)
    acc_dy = _channel_sums(dy3, gf.emin - gf.man_bits, cfg)
    acc_prod = _channel_sums(prod, gf.emin - gf.man_bits, cfg)
    d_beta = acc_dy.round(st, rnd, sat)
    d_gamma = acc_prod.round(st, rnd, sat)

    # B3: per-channel terms (the accumulators times 1/n, rounded once).
    k_beta = acc_dy.round(st, rnd, sat, scale=k.inv_count)
    k_gamma = acc_prod.round(st, rnd, sat, scale=k.inv_count)
    a = fwd.coeff[None, :, None]
    dy_cfg = cfg.replace(compute_format=gf)  # round(dy - k_beta): the same step on gf values
    centered = _centered_fn(k_beta, dy_cfg)

    # B4 (+ B5): pass 2.
    dx_c = np.empty(x3.shape, dtype=np.float32)
    correction = None
    if cfg.grad_mode is GradMode.BN:
        to_centered = _ChannelMap(centered, gf, channels, x3.size)
        to_t = _ChannelMap(_scale_fn(None, k_gamma, gf, cf, cfg), cf, channels, x3.size)
        dx = np.empty(x3.shape, dtype=np.float32)

        def pass2(blk: _Block) -> None:
            t = to_t(x_hat[blk])
            inner = _add_values(to_centered(dy3[blk]), -t, gf, rnd, ovf, gf, gf)
            dx_c[blk] = dxb = _mul_values(inner, a, gf, rnd, ovf, gf, st)
            dx[blk] = _stored(dxb, gf, cfg, rounded=True)

        _each_block(x3.shape, pass2)
    else:
        assert fwd.chunk_argmax is not None and fwd.chunk_argmin is not None
        to_dx = _ChannelMap(_scale_fn(centered, fwd.coeff, gf, gf, dy_cfg), gf, channels, x3.size)

        def pass2_range(blk: _Block) -> None:
            dx_c[blk] = to_dx(dy3[blk])

        _each_block(x3.shape, pass2_range)
        correction = mul_exact_inputs(
            mul_exact_inputs(fwd.coeff, d_gamma, st, rnd, sat),
            k.range_const_per_chunk,
            st,
            rnd,
            sat,
        )
        # Stream index i of channel c is element (i // B, c, i % B) of the (N, C, B) tensor.
        inner_len = x3.shape[2]
        rows = np.arange(channels)[:, None]
        amax, amin = fwd.chunk_argmax, fwd.chunk_argmin
        at_max_idx = (amax // inner_len, rows, amax % inner_len)
        at_min_idx = (amin // inner_len, rows, amin % inner_len)
        corr = np.broadcast_to(correction[:, None], amax.shape)
        distinct = amax != amin
        at_max = dx_c[at_max_idx].astype(np.float64)
        at_min = dx_c[at_min_idx].astype(np.float64)
        dx_c[at_max_idx] = np.where(distinct, sub(at_max, corr, gf, rnd, ovf), at_max)
        dx_c[at_min_idx] = np.where(distinct, add(at_min, corr, gf, rnd, ovf), at_min)
        dx = _store_blocks(dx_c, gf, cfg, rounded=True)

    return BackwardResult(
        dx=dx.reshape(x_c.shape),
        d_gamma=d_gamma,
        d_beta=d_beta,
        dy_c=dy3.reshape(x_c.shape),
        x_hat=x_hat.reshape(x_c.shape),
        k_beta=k_beta,
        k_gamma=k_gamma,
        correction=correction,
        dx_c=dx_c.reshape(x_c.shape),
    )


def forward_infer(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: Any,
    running_var: Any,
    cfg: LightNormConfig,
    eps: float = 1e-5,
) -> InferenceResult:
    """Inference (spec section 8): mu and var from the running statistics.

    I1: mu = round(running_mean), v = round(running_var) to stat_format;
    I2: s = rsqrt(round(v + eps)), a = round(gamma * s); I3: the training normalize datapath.
    """
    x = _check_input("x", x)
    channels = x.shape[1]
    gamma_in = _check_param("gamma", gamma, channels)
    beta_in = _check_param("beta", beta, channels)
    rm = _check_param("running_mean", running_mean, channels)
    rv = _check_param("running_var", running_var, channels)
    if np.any(rv < 0):
        raise ValueError("running_var must be >= 0")
    st, rnd = cfg.stat_format, cfg.rounding
    eps_q = float(quantize(np.float64(eps), st, rnd, sat))
    mean = quantize(rm, st, rnd, sat)
    scale = rsqrt(add(quantize(rv, st, rnd, sat), eps_q, st, rnd, sat), st, rnd, sat)
    coeff = mul_exact_inputs(quantize(gamma_in, st, rnd, sat), scale, st, rnd, sat)
    b = quantize(beta_in, st, rnd, sat)
    x3 = _store_blocks(_as3(x), cfg.compute_format, cfg)
    y_c, y = _normalize_blocks(x3, mean, coeff, b, cfg)
    return InferenceResult(
        y=y.reshape(x.shape),
        x_c=x3.reshape(x.shape),
        y_c=y_c.reshape(x.shape),
        mean=mean,
        scale=scale,
        coeff=coeff,
    )


def ideal_forward(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[F64, F64, F64]:
    """Float64 batch norm (biased variance): returns (y, mean, var)."""
    xs = _stream(np.asarray(x, dtype=np.float64))
    mean = xs.mean(axis=-1)
    var = xs.var(axis=-1)
    g = np.asarray(gamma, dtype=np.float64)[:, None]
    b = np.asarray(beta, dtype=np.float64)[:, None]
    y = (xs - mean[:, None]) / np.sqrt(var[:, None] + eps) * g + b
    return _unstream(y, np.shape(x)), mean, var


def ideal_backward(x: Any, dy: Any, gamma: Any, eps: float = 1e-5) -> tuple[F64, F64, F64]:
    """Float64 batch-norm gradients: returns (dx, d_gamma, d_beta)."""
    xs = _stream(np.asarray(x, dtype=np.float64))
    dys = _stream(np.asarray(dy, dtype=np.float64))
    mean = xs.mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(xs.var(axis=-1, keepdims=True) + eps)
    x_hat = (xs - mean) * inv
    d_beta = dys.sum(axis=-1)
    d_gamma = (dys * x_hat).sum(axis=-1)
    n = xs.shape[-1]
    g = np.asarray(gamma, dtype=np.float64)[:, None]
    dx = g * inv * (dys - d_beta[:, None] / n - x_hat * d_gamma[:, None] / n)
    return _unstream(dx, np.shape(x)), d_gamma, d_beta
