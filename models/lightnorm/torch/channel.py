# SPDX-License-Identifier: Apache-2.0
"""Per-channel steps (C values: mean, range, variance, running statistics, inference
coefficients, backward scalars) and the exact wide accumulators they round."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lightnorm.arith import round_scaled_int
from lightnorm.formats import Overflow, Rounding
from lightnorm.torch import _native
from lightnorm.torch.ops import (
    _F64,
    _I64,
    _SPLIT,
    _add,
    _ceil_log2,
    _Fmt,
    _ilogb,
    _mul,
    _nfmt,
    _pow2,
    _prim,
    _prims_on,
    _quant,
    _round_with_error,
    _sum_kind,
)
from lightnorm.torch.passes import _sum_parts


def _split(a: Tensor) -> tuple[Tensor, Tensor]:
    c = a * _SPLIT
    hi = c - (c - a)
    return hi, a - hi


def _two_prod_err(a: Tensor, b: Tensor, p: Tensor) -> Tensor:
    """Dekker: the exact error a*b - p of p = fl(a*b) (finite, no overflow)."""
    ah, al = _split(a)
    bh, bl = _split(b)
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _recip(v: Tensor, f: _Fmt) -> Tensor:
    """recip(v, f): round(1 / v) once (float64 division). 1/+-0 = +-Inf (+-max_normal under
    saturation), 1/+-Inf = +-0."""
    if _prims_on(v):
        return _prim(_native.PRIM_RECIP, f, v)
    return _quant(torch.ones_like(v) / v, f)


def _rsqrt(v: Tensor, f: _Fmt) -> Tensor:
    """rsqrt(v, f): round(1 / sqrt(v)) once; rsqrt(+-0) = +Inf (max_normal under saturation),
    rsqrt(+Inf) = +0, v < 0 -> NaN."""
    if _prims_on(v):
        return _prim(_native.PRIM_RSQRT, f, v)
    r = torch.ones_like(v) / torch.sqrt(v)
    ok = torch.isfinite(r) & (r > 0)
    rs = torch.where(ok, r, torch.ones_like(r))
    k = _ilogb(rs).clamp(f.emin, f.emax + 1) - (f.man + 1)
    bp = torch.round(rs * _pow2(-k, _F64)) * _pow2(k, _F64)  # nearest value/midpoint of f
    b2 = bp * bp  # exact (<= 25-bit significand)
    vs = torch.where(ok, v, torch.ones_like(v))
    prod = b2 * vs
    t = (prod - 1.0) + _two_prod_err(b2, vs, prod)  # sign of B^2 v - 1, exactly
    near = ok & ((rs - bp).abs() <= rs * 2.0**-50)
    step = torch.where(t < 0, 1, -1)  # truth above B: one ulp up, else down
    nudged = torch.where(t == 0, bp, (bp.view(_I64) + step).view(_F64))
    r = torch.where(near, nudged, r)
    return _quant(torch.where(v == 0, torch.full_like(r, math.inf), r), f)


@dataclass
class _Acc:
    """Exact per-channel sums: float64 values (exact), or Python ints in units of 2^lsb with
    NaN/Inf per channel in ``special`` (0 elsewhere), or the native passes' limb rows
    (``limbs`` (rows, C, L) int64, ``special`` (rows, C)), combined and rounded natively."""

    f64: Tensor | None = None
    ints: list[int] | None = None
    lsb: int = 0
    special: Tensor | None = None
    limbs: Tensor | None = None

    @staticmethod
    def from_parts(parts: tuple[Tensor, ...], f: _Fmt) -> _Acc:
        """From the row sums (rows, C) of a pass (their sum is exact as well); int64 rows
        (rows, C) in units of 2^lsb, or the native passes' limb rows (rows, C, L): value
        sum_i limb_i * 2^(32 i + lsb), each limb sum below 2^63 (rows * S < 2^31 values)."""
        if len(parts) == 1:
            return _Acc(f64=_plus_zero(parts[0].sum(dim=0)))  # an exact zero sum is +0
        if parts[0].dim() == 3 and _native.load() is not None:
            return _Acc(lsb=f.lsb, special=parts[1].contiguous(), limbs=parts[0].contiguous())
        ints = parts[0].sum(dim=0)
        if ints.dim() == 2:
            vals = [sum(v << (32 * i) for i, v in enumerate(row)) for row in ints.tolist()]
        else:
            vals = [int(t) for t in ints.tolist()]
        return _Acc(ints=vals, lsb=f.lsb, special=parts[1].sum(dim=0))

    @staticmethod
    def of_rows(t: Tensor, f: _Fmt) -> _Acc:
        """Exact sums of the rows of a small (C, m) tensor of values of f."""
        kind = _sum_kind(f, t.shape[1])
        if kind == "wide":
            return _exact_sum_wide(t.unsqueeze(0), f)
        parts = _sum_parts(t.reshape(1, t.shape[0], 1, t.shape[1]), f, kind, t.shape[0])
        return _Acc.from_parts(parts, f)


def _exact_sum_wide(v: Tensor, f: _Fmt) -> _Acc:
    """Exact sums over dims (0, 2) of v (A, C, B), values of f, in any width (windows)."""
    vd = v.to(_F64)
    fin = torch.isfinite(vd)
    special = torch.where(fin, 0.0, vd).sum(dim=(0, 2))
    vd = torch.where(fin, vd, 0.0)
    mag = vd.abs()
    top = float(mag.max())
    chans = v.shape[1]
    if top == 0.0:
        return _Acc(ints=[0] * chans, lsb=0, special=special)
    low = float(torch.where(mag > 0, mag, math.inf).min())
    hi_exp = math.frexp(top)[1]  # top < 2^hi_exp
    lsb = max(f.lsb, math.frexp(low)[1] - 1 - f.man)
    width = 53 - _ceil_log2(v.shape[0] * v.shape[2])
    totals = [0] * chans
    rest, bound = vd, hi_exp
    while True:
        nxt = bound - width
        if nxt <= lsb:
            part = rest
        else:
            part = torch.floor(rest * 2.0**-nxt) * 2.0**nxt
            rest = rest - part
        for ch, val in enumerate(part.sum(dim=(0, 2)).tolist()):
            totals[ch] += int(math.ldexp(val, -lsb))
        if nxt <= lsb:
            break
        bound = nxt
    return _Acc(ints=totals, lsb=lsb, special=special)


def _round_acc(acc: _Acc, c: float, f: _Fmt) -> Tensor:
    """acc.round(f, scale=c): round(c * sum) once (spec section 4)."""
    if acc.f64 is not None:
        return _round_sum(acc.f64, torch.tensor(c, dtype=_F64, device=acc.f64.device), f)
    if acc.limbs is not None:
        assert acc.special is not None
        rows, chans, nlimbs = acc.limbs.shape
        out = torch.empty(chans, dtype=_F64)
        _native.round_limbs(
            acc.limbs.data_ptr(),
            acc.special.data_ptr(),
            rows,
            chans,
            nlimbs,
            acc.lsb,
            [c],
            [_nfmt(f)],
            out.data_ptr(),
        )
        return out
    assert acc.ints is not None and acc.special is not None
    frac, exp = math.frexp(c)
    c_int, exp = int(math.ldexp(frac, 53)), exp - 53
    rnd = Rounding.RNE if f.rne else Rounding.RTZ
    ovf = Overflow.SATURATE if f.sat else Overflow.INF
    vals = [round_scaled_int(t * c_int, acc.lsb + exp, f.ff, rnd, ovf) for t in acc.ints]
    out = torch.tensor(vals, dtype=_F64, device=acc.special.device)
    return torch.where(acc.special != 0, _quant(acc.special * c, f), out)


def _plus_zero(s: Tensor) -> Tensor:
    """s with -0 replaced by +0 (an exact zero sum is +0), by clearing the sign bit of zeros
    (integer ops: immune to the compiler's -fno-signed-zeros)."""
    mask = torch.where(s == 0, 0x7FFFFFFFFFFFFFFF, -1)
    return (s.view(_I64) & mask).view(_F64)


def _round_sum(s: Tensor, c: Tensor, f: _Fmt) -> Tensor:
    """round(c * s) once (spec section 4: acc.round(f, scale=c)) of exact float64 sums s with
    a finite float64 constant c (a tensor, broadcast): the product and its exact error
    (Dekker), the breakpoint nudge, one rounding. NaN/Inf sums give quantize(s * c); c = 0
    gives +0 for finite sums."""
    if _prims_on(s):
        return _prim(_native.PRIM_ROUND_SUM, f, s, c)
    prod = s * c
    fin = torch.isfinite(prod)
    sf, pf = torch.where(fin, s, 0.0), torch.where(fin, prod, 0.0)
    err = torch.where(fin, _two_prod_err(sf, c.expand_as(sf), pf), 0.0)
    out = _round_with_error(prod, err, f)
    out = torch.where(torch.isfinite(s), out, _quant(prod, f))
    return torch.where(torch.isfinite(s) & (c == 0), torch.zeros_like(out), out)


# Per-layer constants travel as one float64 tensor (no recompilation when n or eps change).
_INV, _INV_UNBIASED, _RANGE_C, _RANGE_C_K, _EPS = range(5)


@dataclass(frozen=True)
class _PChan:
    """Static description of the per-channel steps."""

    cf: _Fmt
    gf: _Fmt
    st: _Fmt
    rf: _Fmt
    k: int  # K_n, the chunks of the layer's range statistics (K for n >= 2K)
    pre: bool  # accumulator roundings were done outside (Python integers): inputs are rounded
    aligned: bool = False  # range: extrema are row extrema (N, C), chunks of N / K_n samples


def _coeffs(scale: Tensor, gamma: Tensor, beta: Tensor, st: _Fmt) -> tuple[Tensor, Tensor]:
    """F3: a = mul(round(gamma), s, st) and round(beta), stat_format."""
    g = _quant(gamma.to(_F64), st)
    return _mul(g, scale, st, st, st), _quant(beta.to(_F64), st)


def _chan_mean(rows: Tensor, kc: Tensor, *, p: _PChan) -> Tensor:
    """F2: mu = round(sum(x) * inv_count) from exact row sums (N, C)."""
    return _round_sum(_plus_zero(rows.sum(dim=0)), kc[_INV], p.st)


def _chan_range(
    ext_max: Tensor,
    ext_min: Tensor,
    rmean: Tensor,
    gamma: Tensor,
    beta: Tensor,
    kc: Tensor,
    *,
    p: _PChan,
) -> tuple[Tensor, ...]:
    """F2 range + F3: r = round(sum_k(max_k - min_k) / K_n) (exact sum, unless p.pre: rmean
    given), sigma = mul(r, C), s = recip(add(sigma, eps)), a, beta; v_b = mul(sigma, sigma, rf)."""
    st, rf = p.st, p.rf
    if not p.pre:
        if p.aligned:  # chunk k = samples [k N/K_n, (k+1) N/K_n): reduce the row extrema
            ch = ext_max.shape[1]
            ext_max = ext_max.reshape(p.k, -1, ch).amax(dim=1).t()
            ext_min = ext_min.reshape(p.k, -1, ch).amin(dim=1).t()
        both = torch.cat([ext_max, -ext_min], dim=1).to(_F64)  # (C, 2K_n) values of cf: exact sum
        rmean = _round_sum(_plus_zero(both.sum(dim=1)), kc.new_full((1,), 1.0 / p.k), st)
    sigma = _mul(rmean, kc[_RANGE_C], st, st, st)
    scale = _recip(_add(sigma, kc[_EPS], st, st, st), st)
    coeff, b = _coeffs(scale, gamma, beta, st)
    return scale, coeff, b, _mul(sigma, sigma, rf, st, st)


def _chan_var(
    rows: Tensor,
    var: Tensor,
    batch_var: Tensor,
    gamma: Tensor,
    beta: Tensor,
    kc: Tensor,
    *,
    p: _PChan,
) -> tuple[Tensor, ...]:
    """F2 variance + F3: var = round(sum(q) * inv_count), s = rsqrt(add(var, eps)), a, beta;
    v_b = round(sum(q) * inv_count_unbiased) (rf) (unless p.pre: var, v_b given)."""
    st = p.st
    if not p.pre:
        sq = _plus_zero(rows.sum(dim=0))
        var, batch_var = _round_sum(sq, kc[_INV], st), _round_sum(sq, kc[_INV_UNBIASED], p.rf)
    scale = _rsqrt(_add(var, kc[_EPS], st, st, st), st)
    coeff, b = _coeffs(scale, gamma, beta, st)
    return scale, coeff, b, batch_var


def _chan_running(
    running_mean: Tensor,
    running_var: Tensor,
    mean: Tensor,
    batch_var: Tensor,
    mk: Tensor,
    *,
    p: _PChan,
) -> tuple[Tensor, Tensor]:
    """F6: running <- add(mul(round(running), keep, rf), mul(batch, mom, rf), rf);
    mk = (m, 1 - m)."""
    rf = p.rf
    mom, keep = _quant(mk[0], rf), _quant(mk[1], rf)
    out = []
    for buf, batch, fb in ((running_mean, mean, p.st), (running_var, batch_var, rf)):
        old = _quant(buf.to(_F64), rf)
        out.append(_add(_mul(old, keep, rf, rf, rf), _mul(batch, mom, rf, fb, rf), rf, rf, rf))
    return out[0], out[1]


def _chan_infer(
    running_mean: Tensor,
    running_var: Tensor,
    gamma: Tensor,
    beta: Tensor,
    eps: Tensor,
    *,
    p: _PChan,
) -> tuple[Tensor, ...]:
    """I1 + I2: mu = round(rm), v = round(rv), s = rsqrt(add(v, round(eps))), a, beta."""
    st = p.st
    mean = _quant(running_mean.to(_F64), st)
    var = _quant(running_var.to(_F64), st)
    scale = _rsqrt(_add(var, _quant(eps, st), st, st, st), st)
    coeff, b = _coeffs(scale, gamma, beta, st)
    return mean, scale, coeff, b


def _chan_bwd(
    rows_dy: Tensor,
    rows_p: Tensor,
    rounded: Tensor,
    coeff: Tensor,
    kc: Tensor,
    *,
    p: _PChan,
) -> tuple[Tensor, ...]:
    """B2 + B3: d_beta = round(sum dy), d_gamma = round(sum p), k_beta, k_gamma (times 1/n),
    corr = mul(mul(a, d_gamma), C/K) (stat_format). p.pre: rounded = (d_beta, d_gamma, k_beta,
    k_gamma) (4, C) given."""
    st = p.st
    if p.pre:
        d_beta, d_gamma, k_beta, k_gamma = rounded.unbind(0)
    else:
        sdy, sp = _plus_zero(rows_dy.sum(dim=0)), _plus_zero(rows_p.sum(dim=0))
        one = kc.new_ones(())
        d_beta, d_gamma = _round_sum(sdy, one, st), _round_sum(sp, one, st)
        k_beta, k_gamma = _round_sum(sdy, kc[_INV], st), _round_sum(sp, kc[_INV], st)
    corr = _mul(_mul(coeff, d_gamma, st, st, st), kc[_RANGE_C_K], st, st, st)
    return d_beta, d_gamma, k_beta, k_gamma, corr
