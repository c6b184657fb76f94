"""docs/spec.md re-implemented value by value with exact rationals: the oracle of test_reference.

Nothing here uses lightnorm's arithmetic: every operator is Fraction arithmetic followed by
``exact_ref.round_fraction`` (the independent rounding oracle), every sum is an exact
Fraction sum, BFP is written from the spec's formulas. Only the configuration object and
the float64 host constant C(m) (lightnorm.config.range_constant) are shared with the model.
It is slow (pure Python) and meant for tensors of a few hundred values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from exact_ref import round_fraction, round_rsqrt

from lightnorm.config import Accumulation, GradMode, LightNormConfig, Statistics, range_constant


class Ops:
    """The spec's operators for one configuration."""

    def __init__(self, cfg: LightNormConfig, per_channel: bool = False):
        # Spec section 2: per-channel results (stat and running formats) always saturate;
        # element results follow the configured overflow.
        self.per_channel = per_channel
        self.cfg = cfg
        self.rnd = cfg.rounding.value
        self.ovf = cfg.overflow.value

    def r(self, q: Fraction | float, fmt) -> float:
        # Spec section 2: per-channel results (stat and running formats) always saturate;
        # element results (compute and grad formats) follow the configured overflow.
        cfg = self.cfg
        per_channel = fmt in (cfg.stat_format, cfg.running_format) and fmt not in (
            cfg.compute_format,
            cfg.grad_format,
        )
        ovf = "saturate" if per_channel or self.per_channel else self.ovf
        return round_fraction(Fraction(q), fmt.exp_bits, fmt.man_bits, self.rnd, ovf)

    def q(self, v: float, fmt) -> float:
        """quantize a float (keeps the sign of zero)."""
        return v if v == 0 else self.r(Fraction(v), fmt)

    def add(self, a: float, b: float, fmt) -> float:
        exact = Fraction(a) + Fraction(b)
        if exact == 0:  # IEEE: +0 unless both operands are -0
            return -0.0 if math.copysign(1, a) < 0 and math.copysign(1, b) < 0 else 0.0
        return self.r(exact, fmt)

    def sub(self, a: float, b: float, fmt) -> float:
        return self.add(a, -b, fmt)

    def mul(self, a: float, b: float, fmt) -> float:
        exact = Fraction(a) * Fraction(b)
        if exact == 0:
            return math.copysign(0.0, math.copysign(1, a) * math.copysign(1, b))
        return self.r(exact, fmt)

    def recip(self, v: float, fmt) -> float:
        return self.r(1 / Fraction(v), fmt)

    def rsqrt(self, v: float, fmt) -> float:
        return round_rsqrt(Fraction(v), fmt.exp_bits, fmt.man_bits, self.rnd, self.ovf)


def channel_sum(vals, scale, fmt, pc: Ops) -> float:
    """round(scale * sum(vals)) to ``fmt`` as the configuration accumulates: the exact
    Fraction sum rounded once, or (accumulation 'sequential') the values added one at a time
    in stream order in the statistics format (saturating), then one multiplication by
    ``scale`` (none for scale 1)."""
    cfg = pc.cfg
    if cfg.accumulation is Accumulation.SEQUENTIAL:
        total = vals[0]
        for v in vals[1:]:
            total = pc.add(total, v, cfg.stat_format)
        return pc.q(total, fmt) if scale == 1 else pc.mul(total, scale, fmt)
    return pc.r(sum(Fraction(v) for v in vals) * Fraction(scale), fmt)


def _ilog2(q: Fraction) -> int:
    """floor(log2(q)) for q > 0, exactly."""
    e = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    return e


def bfp_group(vals: list[float], cfg: LightNormConfig) -> list[float]:
    """One BFP group stored and read back (spec section 5), finite values only."""
    b = cfg.bfp
    assert b is not None
    exps = [_ilog2(abs(Fraction(v))) for v in vals if v != 0]
    if not exps:
        return [math.copysign(0.0, v) for v in vals]
    srt = sorted(exps)

    def rounded(q: Fraction) -> int:
        fl = math.floor(q)
        if cfg.rounding.value == "rne" and (
            q - fl > Fraction(1, 2) or (q - fl == Fraction(1, 2) and fl % 2)
        ):
            fl += 1
        return fl

    if b.rule.value == "max" or len(srt) < 2:
        e_sh = srt[-1]
        x_max = max(abs(Fraction(v)) for v in vals)
        if (
            b.rule.value == "max"
            and rounded(x_max / Fraction(2) ** (e_sh - b.man_bits + 1)) == 1 << b.man_bits
        ):
            e_sh += 1  # the largest magnitude's rounding carries: next binade
    else:
        e_sh = srt[-2]
    e_sh = min(max(e_sh, -b.bias), (1 << b.exp_bits) - 2 - b.bias)
    unit = Fraction(2) ** (e_sh - b.man_bits + 1)
    out = []
    for v in vals:
        if v != 0 and b.rule.value == "second_max" and _ilog2(abs(Fraction(v))) > e_sh:
            out.append(v)
            continue
        mant = min(rounded(abs(Fraction(v)) / unit), (1 << b.man_bits) - 1)
        out.append(math.copysign(float(mant * unit), v))
    return out


def stored(x: np.ndarray, fmt, ops: Ops) -> np.ndarray:
    """Element format, BFP store/load along axis 1 in groups of g channels, element format."""
    q = np.vectorize(lambda v: ops.q(float(v), fmt), otypes=[np.float64])(x)
    cfg = ops.cfg
    if cfg.bfp is None:
        return q
    out = q.copy()
    g = cfg.bfp.group_size
    moved = np.moveaxis(out, 1, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        for c0 in range(0, moved.shape[-1], g):
            vals = [float(v) for v in moved[pos][c0 : c0 + g]]
            moved[pos][c0 : c0 + g] = bfp_group(vals, cfg)
    return np.vectorize(lambda v: ops.q(float(v), fmt), otypes=[np.float64])(out)


def stream(x: np.ndarray, c: int) -> list[float]:
    """Channel c's values in row-major (N, *spatial) order, by explicit iteration."""
    shape = (x.shape[0], *x.shape[2:])
    return [float(x[(idx[0], c, *idx[1:])]) for idx in np.ndindex(shape)]


@dataclass
class Channel:
    sum_x: float
    mean: float
    chunk_max: list[float]
    chunk_min: list[float]
    argmax: list[int]
    argmin: list[int]
    range_mean: float
    sigma: float
    var: float
    scale: float
    coeff: float
    y: list[float]
    running_mean: float
    running_var: float


def effective_chunks(n: int, k: int) -> int:
    """K_n of spec section 4, by its definition: the largest power of two <= K whose chunks
    hold at least two values each (n // K_n >= 2)."""
    kn = k
    while kn > 1 and n // kn < 2:
        kn //= 2
    return kn


def forward(x, gamma, beta, rm, rv, cfg: LightNormConfig, eps=1e-5, momentum=0.1):
    ops, pc = Ops(cfg), Ops(cfg, per_channel=True)
    cf, st, rf = cfg.compute_format, cfg.stat_format, cfg.running_format
    xc = stored(np.asarray(x, dtype=np.float64), cf, ops)
    n = xc.size // xc.shape[1]
    k = effective_chunks(n, cfg.num_chunks)
    m = n // k
    inv_n = pc.recip(n, st)
    eps_q = pc.r(Fraction(eps), st)
    cq = (
        pc.r(Fraction(range_constant(cfg.range_constant, m)), st)
        if cfg.statistics is Statistics.RANGE
        else 0.0
    )
    chans = []
    for c in range(xc.shape[1]):
        s_ = stream(xc, c)
        sum_x = channel_sum(s_, 1, st, pc)
        mean = channel_sum(s_, inv_n, st, pc)
        cmax, cmin, amax, amin = [], [], [], []
        rmean = sigma = var = 0.0
        if cfg.statistics is Statistics.RANGE:
            for j in range(k):
                lo, hi = j * m, (j + 1) * m if j < k - 1 else n
                seg = s_[lo:hi]
                best_hi, best_lo = seg[0], seg[0]
                ihi = ilo = lo
                for i, v in enumerate(seg[1:], start=lo + 1):
                    if v > best_hi:
                        best_hi, ihi = v, i
                    if v < best_lo:
                        best_lo, ilo = v, i
                cmax.append(best_hi)
                cmin.append(best_lo)
                amax.append(ihi)
                amin.append(ilo)
            rmean = pc.r((sum(Fraction(v) for v in cmax) - sum(Fraction(v) for v in cmin)) / k, st)
            sigma = pc.mul(rmean, cq, st)
            scale = pc.recip(pc.add(sigma, eps_q, st), st)
            batch_var = pc.mul(sigma, sigma, rf)
        else:
            sq = [ops.mul(d, d, cf) for d in (ops.sub(v, mean, cf) for v in s_)]
            var = channel_sum(sq, inv_n, st, pc)
            scale = pc.rsqrt(pc.add(var, eps_q, st), st)
            batch_var = channel_sum(sq, pc.recip(n - 1, rf), rf, pc)
        g = pc.q(float(gamma[c]), st)
        b = pc.q(float(beta[c]), st)
        a = pc.mul(g, scale, st)
        y = [ops.add(ops.mul(ops.sub(v, mean, cf), a, cf), b, cf) for v in s_]
        mom, keep = pc.r(Fraction(momentum), rf), pc.r(Fraction(1.0 - momentum), rf)
        rm_c = pc.add(pc.mul(pc.q(float(rm[c]), rf), keep, rf), pc.mul(mean, mom, rf), rf)
        rv_c = pc.add(pc.mul(pc.q(float(rv[c]), rf), keep, rf), pc.mul(batch_var, mom, rf), rf)
        chans.append(
            Channel(sum_x, mean, cmax, cmin, amax, amin, rmean, sigma, var, scale, a, y, rm_c, rv_c)
        )
    y_full = np.zeros_like(xc)
    shape = (xc.shape[0], *xc.shape[2:])
    for c, ch in enumerate(chans):
        for i, idx in enumerate(np.ndindex(shape)):
            y_full[(idx[0], c, *idx[1:])] = ch.y[i]
    return xc, chans, stored(y_full, cf, ops)


def backward(xc, dy, chans: list[Channel], cfg: LightNormConfig):
    ops, pc = Ops(cfg), Ops(cfg, per_channel=True)
    cf, gf, st = cfg.compute_format, cfg.grad_format, cfg.stat_format
    dyc = stored(np.asarray(dy, dtype=np.float64), gf, ops)
    n = xc.size // xc.shape[1]
    k = effective_chunks(n, cfg.num_chunks)
    inv_n = pc.recip(n, st)
    cqk = (
        pc.r(Fraction(range_constant(cfg.range_constant, n // k) / k), st)
        if cfg.statistics is Statistics.RANGE
        else 0.0
    )
    dx_full = np.zeros_like(xc)
    grads = []
    shape = (xc.shape[0], *xc.shape[2:])
    for c, ch in enumerate(chans):
        xs, dys = stream(xc, c), stream(dyc, c)
        xh = [ops.mul(ops.sub(v, ch.mean, cf), ch.scale, cf) for v in xs]
        p = [ops.mul(d, h, gf) for d, h in zip(dys, xh, strict=True)]
        d_beta, d_gamma = channel_sum(dys, 1, st, pc), channel_sum(p, 1, st, pc)
        k_beta, k_gamma = channel_sum(dys, inv_n, st, pc), channel_sum(p, inv_n, st, pc)
        if cfg.grad_mode is GradMode.BN:
            dx = [
                ops.mul(ops.sub(ops.sub(d, k_beta, gf), ops.mul(h, k_gamma, gf), gf), ch.coeff, gf)
                for d, h in zip(dys, xh, strict=True)
            ]
            corr = None
        else:
            dx = [ops.mul(ops.sub(d, k_beta, gf), ch.coeff, gf) for d in dys]
            corr = pc.mul(pc.mul(ch.coeff, d_gamma, st), cqk, st)
            for i_max, i_min in zip(ch.argmax, ch.argmin, strict=True):
                if i_max != i_min:
                    dx[i_max] = ops.sub(dx[i_max], corr, gf)
                    dx[i_min] = ops.add(dx[i_min], corr, gf)
        grads.append((d_gamma, d_beta, k_beta, k_gamma, corr, xh))
        for i, idx in enumerate(np.ndindex(shape)):
            dx_full[(idx[0], c, *idx[1:])] = dx[i]
    return dyc, grads, stored(dx_full, gf, ops)
