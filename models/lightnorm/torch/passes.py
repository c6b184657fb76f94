# SPDX-License-Identifier: Apache-2.0
"""The five element-wise passes (spec step names) as plain torch functions: store + statistics,
variance sums, normalize, backward pass 1, backward pass 2.

External layout: tensors (N, C, S), per-channel vectors (C,) float64; ``p`` is the static
description. Inside, every pass works on one grouped view (N, G, g, S) - g: the BFP group (1
without BFP), C padded with +0 lanes to G*g (zeros in, zeros out, so padding never reaches a BFP
exponent) - and reduces over S only (partials per (n, c) row, combined exactly afterwards: row
reductions fuse best with inductor's loops). Kept tensors are float16 or float32
(``_store_dtype``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lightnorm.torch.ops import _F64, _I64, _add, _Bfp, _Fmt, _mul, _storage, _store_dtype, _sub


@dataclass(frozen=True)
class _Layout:
    g: int  # channels per group


def _group(t: Tensor, lay: _Layout) -> Tensor:
    """(N, C, S) -> (N, G, g, S), channels padded with +0."""
    n, c, s = t.shape
    pad = (-c) % lay.g
    if pad:
        t = F.pad(t, (0, 0, 0, pad))
    return t.reshape(n, (c + pad) // lay.g, lay.g, s)


def _ungroup(t: Tensor, c: int) -> Tensor:
    """(N, G, g, S) -> (N, C, S) (padding lanes dropped)."""
    n, gg, g, s = t.shape
    t = t.reshape(n, gg * g, s)
    return t[:, :c] if gg * g != c else t


def _chan(v: Tensor, lay: _Layout) -> Tensor:
    """A per-channel vector (C,) as (1, G, g, 1), padded with +0."""
    pad = (-v.shape[0]) % lay.g
    if pad:
        v = F.pad(v, (0, pad))
    return v.reshape(1, -1, lay.g, 1)


def _rows(r: Tensor, c: int) -> Tensor:
    """Row reductions (N, G, g) -> (N, C)."""
    return r.reshape(r.shape[0], -1)[:, :c]


def _sum_parts(v: Tensor, f: _Fmt, kind: str, c: int) -> tuple[Tensor, ...]:
    """Exact row sums (N, C) over S of grouped values v of f: ('f64',) float64, or ('i64',)
    int64 in units of 2^lsb and the NaN/Inf sums float64. The rows add up exactly."""
    v = v.to(_F64)
    if kind == "f64":
        return (_rows(v.sum(dim=-1), c),)
    fin = torch.isfinite(v)
    ints = (torch.where(fin, v, 0.0) * float(2.0**-f.lsb)).to(_I64)
    special = torch.where(fin, 0.0, v).sum(dim=-1)
    return _rows(ints.sum(dim=-1), c), _rows(special, c)


def _stream_chunks(x_c: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Each channel's stream (C, n) (stream index i = n_i * S + s, row-major N, S) split into
    the first k-1 chunks (C, k-1, m) and the last chunk (C, n - (k-1) m) (k = K_n, m = n // k)."""
    n_, ch, s_ = x_c.shape
    count = n_ * s_
    m = count // k
    xs = x_c.permute(1, 0, 2).reshape(ch, count)
    return xs[:, : (k - 1) * m].reshape(ch, k - 1, m), xs[:, (k - 1) * m :]


def _chunk_args(x_c: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Stream indices (C, K_n) int64 of each chunk's first maximum and first minimum of the
    stored values x_c (N, C, S), k = K_n (torch.argmax / argmin return the first occurrence;
    -0 == +0; a NaN is both, the first NaN wins)."""
    head, tail = _stream_chunks(x_c, k)
    base = torch.arange(k, device=x_c.device) * (x_c.shape[0] * x_c.shape[2] // k)
    imax = torch.cat([head.argmax(dim=2), tail.argmax(dim=1, keepdim=True)], dim=1) + base
    imin = torch.cat([head.argmin(dim=2), tail.argmin(dim=1, keepdim=True)], dim=1) + base
    return imax, imin


@dataclass(frozen=True)
class _PStore:
    """F1 / B1 (+ F2 sums, range chunk extrema, range_exact chunk arg-max / arg-min): stored(v, f)
    and its statistics."""

    f: _Fmt
    bfp: _Bfp | None
    lay: _Layout
    kind: str | None  # exact-sum kind of the stored values, None: no sums ('wide': outside)
    extrema: bool  # row max/min (N, C) (range statistics with chunks of whole samples)
    chunks: int = 0  # K_n > 0: also each chunk's arg-max / arg-min (C, K_n) int64 (_chunk_args)


def _pass_store(v: Tensor, *, p: _PStore) -> tuple[Tensor, ...]:
    """(x_c, *sums, *row extrema, *chunk args): the parts p asks for, in this order."""
    c = v.shape[1]
    vc = _storage(_group(v, p.lay), p.f, p.bfp)
    out: tuple[Tensor, ...] = (_ungroup(vc.to(_store_dtype(p.f)), c),)
    if p.kind is not None and p.kind != "wide":
        out += _sum_parts(vc, p.f, p.kind, c)
    if p.extrema:
        out += (_rows(vc.amax(dim=-1), c), _rows(vc.amin(dim=-1), c))
    if p.chunks:
        out += _chunk_args(out[0], p.chunks)
    return out


@dataclass(frozen=True)
class _PVar:
    """F2 variance: d = sub(x, mu, cf); q = mul(d, d, cf); sum(q)."""

    cf: _Fmt
    st: _Fmt
    lay: _Layout
    kind: str


def _pass_var(x_c: Tensor, mean: Tensor, *, p: _PVar) -> tuple[Tensor, ...]:
    c = x_c.shape[1]
    d = _sub(_group(x_c, p.lay), _chan(mean, p.lay), p.cf, p.cf, p.st)
    q = _mul(d, d, p.cf, p.cf, p.cf)
    if p.kind == "wide":
        return (_ungroup(q.to(torch.float32), c),)
    return _sum_parts(q, p.cf, p.kind, c)


@dataclass(frozen=True)
class _PNorm:
    """F4 + F5 (and I3): y = stored(add(mul(sub(x, mu, cf), a, cf), beta, cf), cf)."""

    cf: _Fmt
    st: _Fmt
    bfp: _Bfp | None
    lay: _Layout
    store_input: bool  # the input is raw (inference: F1 first)


def _pass_norm(x: Tensor, mean: Tensor, coeff: Tensor, beta: Tensor, *, p: _PNorm) -> Tensor:
    c, lay = x.shape[1], p.lay
    xg = _group(x, lay)
    if p.store_input:
        xg = _storage(xg, p.cf, p.bfp)
    d = _sub(xg, _chan(mean, lay), p.cf, p.cf, p.st)
    y = _add(_mul(d, _chan(coeff, lay), p.cf, p.cf, p.st), _chan(beta, lay), p.cf, p.cf, p.st)
    return _ungroup(_storage(y, p.cf, p.bfp, rounded=True).to(torch.float32), c)


@dataclass(frozen=True)
class _PBwd1:
    """B1 + B2: dy_c = stored(dy, gf); x_hat = mul(sub(x, mu, cf), s, cf); p = mul(dy, x_hat, gf);
    sums of dy and p."""

    cf: _Fmt
    gf: _Fmt
    st: _Fmt
    bfp: _Bfp | None
    lay: _Layout
    kind: str


def _pass_bwd1(
    dy: Tensor, x_c: Tensor, mean: Tensor, scale: Tensor, *, p: _PBwd1
) -> tuple[Tensor, ...]:
    c, lay = x_c.shape[1], p.lay
    dyc = _storage(_group(dy, lay), p.gf, p.bfp)
    d = _sub(_group(x_c, lay), _chan(mean, lay), p.cf, p.cf, p.st)
    x_hat = _mul(d, _chan(scale, lay), p.cf, p.cf, p.st)
    prod = _mul(dyc, x_hat, p.gf, p.gf, p.cf)
    out: tuple[Tensor, ...] = (_ungroup(dyc.to(_store_dtype(p.gf)), c),)
    if p.kind == "wide":
        return out + (_ungroup(prod.to(torch.float32), c),)
    return out + _sum_parts(dyc, p.gf, p.kind, c) + _sum_parts(prod, p.gf, p.kind, c)


@dataclass(frozen=True)
class _PBwd2:
    """B4 + B5: dx = stored(dx_c, gf); dx_c per grad mode (spec section 7), or mul(dy, a) (eval)."""

    cf: _Fmt
    gf: _Fmt
    st: _Fmt
    bfp: _Bfp | None
    lay: _Layout
    mode: str  # 'bn' | 'range_exact' | 'eval'


def _pass_bwd2(
    dy_c: Tensor,
    x_c: Tensor,
    mean: Tensor,
    scale: Tensor,
    k_beta: Tensor,
    k_gamma: Tensor,
    coeff: Tensor,
    corr: Tensor,
    marker: Tensor,
    amax: Tensor,
    amin: Tensor,
    *,
    p: _PBwd2,
) -> Tensor:
    """range_exact: marker int8 (N, C, S), 1 at each chunk's arg-max and 2 at its arg-min where
    they differ (engine._marker). amax / amin, the chunk args (C, K_n) themselves, are what the
    native pass takes instead (lightnorm.torch.native._native_bwd2); unused here."""
    c, lay = x_c.shape[1], p.lay
    dy = _group(dy_c, lay)
    a = _chan(coeff, lay)
    if p.mode == "eval":
        dx = _mul(dy, a, p.gf, p.gf, p.st)
    elif p.mode == "bn":
        d = _sub(_group(x_c, lay), _chan(mean, lay), p.cf, p.cf, p.st)
        x_hat = _mul(d, _chan(scale, lay), p.cf, p.cf, p.st)
        centered = _sub(dy, _chan(k_beta, lay), p.gf, p.gf, p.st)
        inner = _sub(centered, _mul(x_hat, _chan(k_gamma, lay), p.gf, p.cf, p.st), p.gf, p.gf, p.gf)
        dx = _mul(inner, a, p.gf, p.gf, p.st)
    else:  # range_exact: t everywhere, t -+ corr at each chunk's arg-max / arg-min
        t = _mul(_sub(dy, _chan(k_beta, lay), p.gf, p.gf, p.st), a, p.gf, p.gf, p.st)
        cr = _chan(corr, lay)
        mk = _group(marker, lay)
        dx = torch.where(
            mk == 1,
            _sub(t, cr, p.gf, p.gf, p.st),
            torch.where(mk == 2, _add(t, cr, p.gf, p.gf, p.st), t),
        )
    return _ungroup(_storage(dx, p.gf, p.bfp, rounded=True).to(torch.float32), c)
