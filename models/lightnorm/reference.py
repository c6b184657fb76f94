# SPDX-License-Identifier: Apache-2.0
"""Bit-exact reference model of LightNorm (the scoreboard's oracle), after docs/spec.md.

Tensors are (N, C, *spatial) like torch (rank >= 2, channel axis 1). Per channel the
hardware sees a stream of n = N * prod(spatial) values in row-major (N, *spatial) order;
``_stream`` turns a tensor into that (C, n) view. Every operator is correctly rounded to the
format the spec names (lightnorm.arith); sums are exact and rounded once.

Step names (F1..F6, B1..B5, I1..I3) are those of docs/spec.md and of the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lightnorm.arith import add, exact_sum, mul_exact_inputs, recip, rsqrt, sub, sum_round
from lightnorm.bfp import bfp_quantize
from lightnorm.config import GradMode, LightNormConfig, Statistics, range_constant
from lightnorm.formats import FloatFormat, quantize

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
    chunk_len: int  # m = n // K (the last chunk also takes the n % K remainder)
    inv_count: float  # round(1 / n)
    inv_count_unbiased: float  # round(1 / (n - 1)), for the running variance
    range_const: float  # round(C(m))
    range_const_per_chunk: float  # round(C(m) / K)
    eps: float  # round(eps)


@dataclass(frozen=True)
class ForwardResult:
    """Outputs and every intermediate of the training forward pass (per-channel arrays: (C,))."""

    y: F32  # F5: output as stored (after BFP), values of compute_format
    x_c: F32  # F1: input as the datapath sees it
    y_c: F32  # F4: output before BFP
    sum_x: F64  # F2: round(sum x)
    mean: F64  # F2: mu = round(sum(x) * (1/n)), fused
    chunk_max: F64 | None  # F2 (range): (C, K)
    chunk_min: F64 | None
    chunk_argmax: npt.NDArray[np.int64] | None  # stream index of the first maximum
    chunk_argmin: npt.NDArray[np.int64] | None
    range_mean: F64 | None  # F2 (range): r = round(sum(max - min) / K)
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
    correction: F64 | None  # B3 (range_exact): round(round(a * d_gamma) * C/K)
    dx_c: F32  # B4: before BFP


@dataclass(frozen=True)
class InferenceResult:
    y: F32
    x_c: F32
    y_c: F32
    mean: F64
    scale: F64
    coeff: F64


def _stream(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(N, C, *spatial) -> (C, n) in stream order."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


def _unstream(s: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    moved = (shape[1], shape[0], *shape[2:])
    return np.moveaxis(s.reshape(moved), 0, 1)


def chunk_bounds(count: int, num_chunks: int) -> list[tuple[int, int]]:
    """Stream-index ranges [start, stop) of the K chunks: length m = n // K, the last takes the rest."""
    m = count // num_chunks
    return [(k * m, (k + 1) * m if k < num_chunks - 1 else count) for k in range(num_chunks)]


def layer_constants(count: int, cfg: LightNormConfig, eps: float = 1e-5) -> LayerConstants:
    """The constants of a layer with ``count`` values per channel (raises if count is too small)."""
    if count < cfg.min_count():
        raise ValueError(
            f"n (values per channel) must be >= {cfg.min_count()} for statistics "
            f"{cfg.statistics.value!r} with num_chunks={cfg.num_chunks}, got {count}"
        )
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    st, rnd, ovf = cfg.stat_format, cfg.rounding, cfg.overflow
    m = count // cfg.num_chunks
    c = range_constant(cfg.range_constant, m) if cfg.statistics is Statistics.RANGE else 0.0
    q = lambda v, f=st: float(quantize(np.float64(v), f, rnd, ovf))  # noqa: E731
    return LayerConstants(
        count=count,
        chunk_len=m,
        inv_count=float(recip(float(count), st, rnd, ovf)),
        inv_count_unbiased=float(recip(float(count - 1), cfg.running_format, rnd, ovf)),
        range_const=q(c),
        range_const_per_chunk=q(c / cfg.num_chunks),
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


def _to_storage(v: Any, fmt: FloatFormat, cfg: LightNormConfig) -> F64:
    """Element format, then (if enabled) a store to and load from BFP, then the element format."""
    q = quantize(np.asarray(v, dtype=np.float64), fmt, cfg.rounding, cfg.overflow)
    if cfg.bfp is None:
        return q
    b = bfp_quantize(q, cfg.bfp, axis=1, rounding=cfg.rounding)
    return quantize(b, fmt, cfg.rounding, cfg.overflow)


def _normalize(
    xs: F64, mean: F64, coeff: F64, beta: F64, cfg: LightNormConfig
) -> F64:
    """F4 / I3: y = round(round(round(x - mu) * a) + beta), compute_format."""
    f, rnd, ovf = cfg.compute_format, cfg.rounding, cfg.overflow
    d = sub(xs, mean[:, None], f, rnd, ovf)
    return add(mul_exact_inputs(d, coeff[:, None], f, rnd, ovf), beta[:, None], f, rnd, ovf)


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
    xs_shape = x.shape
    count = x.size // channels
    k = layer_constants(count, cfg, eps)
    st, rnd, ovf = cfg.stat_format, cfg.rounding, cfg.overflow
    cf = cfg.compute_format

    # F1: the input as stored (element format, BFP) and read back into the datapath.
    x_c = _to_storage(x, cf, cfg)
    xs = _stream(x_c)
    lsb = cf.emin - cf.man_bits

    # F2: statistics.
    acc_x = exact_sum(xs, axis=-1, lsb_exp=lsb)
    sum_x = acc_x.round(st, rnd, ovf)
    mean = acc_x.round(st, rnd, ovf, scale=k.inv_count)
    cmax = cmin = amax = amin = rmean = sigma = var = None
    if cfg.statistics is Statistics.RANGE:
        bounds = chunk_bounds(count, cfg.num_chunks)
        cmax = np.stack([xs[:, a:b].max(axis=-1) for a, b in bounds], axis=-1)
        cmin = np.stack([xs[:, a:b].min(axis=-1) for a, b in bounds], axis=-1)
        amax = np.stack([xs[:, a:b].argmax(axis=-1) + a for a, b in bounds], axis=-1)
        amin = np.stack([xs[:, a:b].argmin(axis=-1) + a for a, b in bounds], axis=-1)
        both = np.concatenate([cmax, -cmin], axis=-1) / cfg.num_chunks
        rmean = sum_round(both, st, axis=-1, rounding=rnd, overflow=ovf)
        sigma = mul_exact_inputs(rmean, k.range_const, st, rnd, ovf)
        scale = recip(add(sigma, k.eps, st, rnd, ovf), st, rnd, ovf)
    else:
        d = sub(xs, mean[:, None], cf, rnd, ovf)
        sq = mul_exact_inputs(d, d, cf, rnd, ovf)
        acc_sq = exact_sum(sq, axis=-1, lsb_exp=lsb)
        var = acc_sq.round(st, rnd, ovf, scale=k.inv_count)
        scale = rsqrt(add(var, k.eps, st, rnd, ovf), st, rnd, ovf)

    # F3: per-channel coefficients.
    g = quantize(gamma_in, st, rnd, ovf)
    b = quantize(beta_in, st, rnd, ovf)
    coeff = mul_exact_inputs(g, scale, st, rnd, ovf)

    # F4 + F5: normalize, store.
    y_c = _unstream(_normalize(xs, mean, coeff, b, cfg), xs_shape)
    y = _to_storage(y_c, cf, cfg)

    # F6: running statistics.
    rm_new = rv_new = None
    if running_mean is not None and running_var is not None:
        rm = _check_param("running_mean", running_mean, channels, finite=False)
        rv = _check_param("running_var", running_var, channels, finite=False)
        rf = cfg.running_format
        if sigma is not None:
            batch_var = mul_exact_inputs(sigma, sigma, rf, rnd, ovf)
        else:
            batch_var = acc_sq.round(rf, rnd, ovf, scale=k.inv_count_unbiased)
        mom = float(quantize(np.float64(momentum), rf, rnd, ovf))
        keep = float(quantize(np.float64(1.0 - momentum), rf, rnd, ovf))
        rm_q, rv_q = quantize(rm, rf, rnd, ovf), quantize(rv, rf, rnd, ovf)
        rm_new = add(
            mul_exact_inputs(rm_q, keep, rf, rnd, ovf),
            mul_exact_inputs(mean, mom, rf, rnd, ovf),
            rf, rnd, ovf,
        ).astype(np.float32)
        rv_new = add(
            mul_exact_inputs(rv_q, keep, rf, rnd, ovf),
            mul_exact_inputs(batch_var, mom, rf, rnd, ovf),
            rf, rnd, ovf,
        ).astype(np.float32)

    return ForwardResult(
        y=y.astype(np.float32),
        x_c=x_c.astype(np.float32),
        y_c=y_c.astype(np.float32),
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

    # B1: the output gradient as stored and read back.
    dy_c = _to_storage(dy, gf, cfg)
    dys = _stream(dy_c)
    xs = _stream(x_c).astype(np.float64)

    # B2: pass 1: x_hat, sums.
    x_hat = mul_exact_inputs(
        sub(xs, fwd.mean[:, None], cf, rnd, ovf), fwd.scale[:, None], cf, rnd, ovf
    )
    prod = mul_exact_inputs(dys, x_hat, gf, rnd, ovf)
    acc_dy = exact_sum(dys, axis=-1, lsb_exp=gf.emin - gf.man_bits)
    acc_prod = exact_sum(prod, axis=-1, lsb_exp=gf.emin - gf.man_bits)
    d_beta = acc_dy.round(st, rnd, ovf)
    d_gamma = acc_prod.round(st, rnd, ovf)

    # B3: per-channel terms (the accumulators times 1/n, rounded once).
    k_beta = acc_dy.round(st, rnd, ovf, scale=k.inv_count)
    k_gamma = acc_prod.round(st, rnd, ovf, scale=k.inv_count)
    a = fwd.coeff[:, None]

    # B4: pass 2.
    centered = sub(dys, k_beta[:, None], gf, rnd, ovf)
    correction = None
    if cfg.grad_mode is GradMode.BN:
        inner = sub(centered, mul_exact_inputs(x_hat, k_gamma[:, None], gf, rnd, ovf), gf, rnd, ovf)
        dxs = mul_exact_inputs(inner, a, gf, rnd, ovf)
    else:
        assert fwd.chunk_argmax is not None and fwd.chunk_argmin is not None
        dxs = mul_exact_inputs(centered, a, gf, rnd, ovf)
        correction = mul_exact_inputs(
            mul_exact_inputs(fwd.coeff, d_gamma, st, rnd, ovf), k.range_const_per_chunk, st, rnd, ovf
        )
        rows = np.arange(dxs.shape[0])[:, None]
        amax, amin = fwd.chunk_argmax, fwd.chunk_argmin
        corr = np.broadcast_to(correction[:, None], amax.shape)
        distinct = amax != amin
        at_max = dxs[rows, amax]
        at_min = dxs[rows, amin]
        dxs[rows, amax] = np.where(distinct, sub(at_max, corr, gf, rnd, ovf), at_max)
        dxs[rows, amin] = np.where(distinct, add(at_min, corr, gf, rnd, ovf), at_min)

    dx_c = _unstream(dxs, x_c.shape)
    dx = _to_storage(dx_c, gf, cfg)
    return BackwardResult(
        dx=dx.astype(np.float32),
        d_gamma=d_gamma,
        d_beta=d_beta,
        dy_c=dy_c.astype(np.float32),
        x_hat=_unstream(x_hat, x_c.shape).astype(np.float32),
        k_beta=k_beta,
        k_gamma=k_gamma,
        correction=correction,
        dx_c=dx_c.astype(np.float32),
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
    st, rnd, ovf = cfg.stat_format, cfg.rounding, cfg.overflow
    eps_q = float(quantize(np.float64(eps), st, rnd, ovf))
    mean = quantize(rm, st, rnd, ovf)
    scale = rsqrt(add(quantize(rv, st, rnd, ovf), eps_q, st, rnd, ovf), st, rnd, ovf)
    coeff = mul_exact_inputs(quantize(gamma_in, st, rnd, ovf), scale, st, rnd, ovf)
    b = quantize(beta_in, st, rnd, ovf)
    x_c = _to_storage(x, cfg.compute_format, cfg)
    y_c = _unstream(_normalize(_stream(x_c), mean, coeff, b, cfg), x.shape)
    y = _to_storage(y_c, cfg.compute_format, cfg)
    return InferenceResult(
        y=y.astype(np.float32),
        x_c=x_c.astype(np.float32),
        y_c=y_c.astype(np.float32),
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


def ideal_backward(
    x: Any, dy: Any, gamma: Any, eps: float = 1e-5
) -> tuple[F64, F64, F64]:
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
