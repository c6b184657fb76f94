# SPDX-License-Identifier: Apache-2.0
"""The formats and operators of docs/spec.md as torch ops: static descriptions of a format
and a BFP format (hashable: they key the compiled passes), the one rounding step, correctly
rounded add/sub/mul, BFP storage, and the switch that runs the per-channel primitives natively."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.formats import FloatFormat, Overflow, Rounding
from lightnorm.torch import _native

# Per-channel primitives in the native kernels: on (per thread) while a "native" engine step
# runs; _quant, _add, _mul, _recip, _rsqrt and _round_sum of CPU tensors then run natively
# (float64 arrays, the same bits: each is one correct rounding).
_prims = threading.local()

_F64 = torch.float64
_I64 = torch.int64
_NO_EXP = -(1 << 20)  # exponent of zeros / non-finite values for the second_max rule
_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitter for float64


@dataclass(frozen=True)
class _Fmt:
    """A float format plus the rounding and overflow policy of every operator rounding to it."""

    man: int  # M
    emin: int
    emax: int
    maxn: float
    rne: bool
    sat: bool
    ff: FloatFormat

    @property
    def lsb(self) -> int:
        """Exponent of the smallest subnormal: every value is a multiple of 2^lsb."""
        return self.emin - self.man

    @staticmethod
    def of(ff: FloatFormat, rounding: Rounding, overflow: Overflow) -> _Fmt:
        return _Fmt(
            ff.man_bits,
            ff.emin,
            ff.emax,
            ff.max_normal,
            rounding is Rounding.RNE,
            overflow is Overflow.SATURATE,
            ff,
        )


@dataclass(frozen=True)
class _Bfp:
    """A BFP storage format plus the rounding of its mantissas."""

    mb: int  # man_bits
    g: int  # group_size
    emin: int
    emax: int
    second_max: bool
    rne: bool

    @staticmethod
    def of(b: BFPFormat | None, rounding: Rounding) -> _Bfp | None:
        if b is None:
            return None
        return _Bfp(
            b.man_bits,
            b.group_size,
            b.exp_min,
            b.exp_max,
            b.rule is SharedExpRule.SECOND_MAX,
            rounding is Rounding.RNE,
        )


def _ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def _sum_kind(f: _Fmt, n: int) -> str:
    """How n values of f are summed exactly: 'f64', 'i64' or 'wide' (see module docstring)."""
    bits = f.emax + 1 - f.lsb + _ceil_log2(n)
    if bits <= 53:
        return "f64"
    if bits <= 63:
        return "i64"
    return "wide"


def _exact_add(fa: _Fmt, fb: _Fmt) -> bool:
    """True when a + b of a value of fa and a value of fb is exact in float64."""
    return max(fa.emax, fb.emax) + 2 - min(fa.lsb, fb.lsb) <= 53


# --------------------------------------------------------------------------------------------
# Element-wise arithmetic (float64 tensors; traceable by torch.compile)
# --------------------------------------------------------------------------------------------


def _prims_on(t: Tensor) -> bool:
    return getattr(_prims, "on", False) and t.device.type == "cpu"


def _prim(op: int, f: _Fmt, a: Tensor, b: Tensor | None = None) -> Tensor:
    """A per-channel primitive in the native kernels (float64 result, a's shape broadcast with
    b's): the values of the torch-op implementation, not always its dtype."""
    if b is not None:
        a, b = torch.broadcast_tensors(a, b)
        b = b.to(_F64).contiguous()
    a = a.to(_F64).contiguous()
    out = torch.empty_like(a)
    _native.prim(
        op, a.numel(), a.data_ptr(), None if b is None else b.data_ptr(), out.data_ptr(), _nfmt(f)
    )
    return out


def _nfmt(f: _Fmt) -> Any:
    return _native.Fmt(f.man, f.emin, f.emax, int(f.rne), int(f.sat), 0, f.maxn)


class _NativePrims:
    """Context: the per-channel primitives run natively on this thread (when ``on``)."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __enter__(self) -> None:
        self.prev = getattr(_prims, "on", False)
        _prims.on = self.on

    def __exit__(self, *exc: object) -> None:
        _prims.on = self.prev


def _ilogb(x: Tensor) -> Tensor:
    """floor(log2|x|) from the bit pattern of a normal float32/float64 x (0 and subnormals give
    -127 / -1023, Inf/NaN 128 / 1024); int32 / int64."""
    if x.dtype == torch.float32:
        return ((x.view(torch.int32) >> 23) & 0xFF) - 127
    return ((x.view(_I64) >> 52) & 0x7FF) - 1023


def _pow2(k: Tensor, dtype: torch.dtype) -> Tensor:
    """2.0**k of dtype, built from the bit pattern (k an int32/int64 tensor in the normal range)."""
    if dtype == torch.float32:
        return ((k.to(torch.int32) + 127) << 23).view(torch.float32)
    return ((k.to(_I64) + 1023) << 52).view(_F64)


def _f32_fmt(f: _Fmt) -> bool:
    """float32 can hold every quantize step of f: 2^k and 2^-k (k in [lsb, emax + 1 - M]) and
    results up to 2^(emax + 2) are normal float32 values (formats with E <= 7)."""
    return f.lsb >= -126 and f.emax + 2 <= 126


_NARROW = (torch.float16, torch.bfloat16, torch.float32)  # exactly widened to float32


def _q_dtype(x: Tensor, f: _Fmt) -> torch.dtype:
    return torch.float32 if x.dtype in _NARROW and _f32_fmt(f) else _F64


def _store_dtype(f: _Fmt) -> torch.dtype:
    """dtype of a kept element tensor of f: float16 holds every value of a format with
    E <= 5, M <= 10 exactly (fp10_e5m4: half the memory traffic of float32), else float32."""
    return torch.float16 if f.emax <= 15 and f.lsb >= -24 and f.man <= 10 else torch.float32


def _quant(x: Tensor, f: _Fmt) -> Tensor:
    """quantize(x, f) (spec section 2): one rounding of the exact value x (float32 when x is
    float32 and f fits, else float64; the result has that dtype).

    k = clamp(floor(log2|x|), emin, emax + 1) - M; result = 2^k * R(x * 2^-k) with R = round
    half even (rne) or trunc (rtz), both scalings exact; zeros keep their sign, NaN stays NaN.
    Then |result| > max_normal: saturate -> +-max_normal (Inf inputs too); inf & rne -> +-Inf;
    inf & rtz -> +-max_normal for finite x, Inf stays Inf. (float32 and rne: _quant_rne32.)
    """
    if _prims_on(x):
        return _prim(_native.PRIM_QUANT, f, x)
    x = x.to(_q_dtype(x, f))
    if x.dtype == torch.float32 and f.rne:
        return _quant_rne32(x, f)
    k = _ilogb(x).clamp(f.emin, f.emax + 1) - f.man
    scaled = x * _pow2(-k, x.dtype)
    r = torch.round(scaled) if f.rne else torch.trunc(scaled)
    out = r * _pow2(k, x.dtype)
    big = out.abs() > f.maxn
    if f.sat:
        return torch.where(big, torch.copysign(torch.full_like(out, f.maxn), x), out)
    if f.rne:
        return torch.where(big, torch.copysign(torch.full_like(out, math.inf), x), out)
    return torch.where(
        big & torch.isfinite(x), torch.copysign(torch.full_like(out, f.maxn), x), out
    )


def _quant_rne32(x: Tensor, f: _Fmt) -> Tensor:
    """quantize(x, f), rne, of float32 x for a format with E <= 7, in float32 arithmetic only.

    x is first clamped to +-2^(emax + 2) (already an overflow; Inf -> that bound, NaN stays).
    |x| >= 2^emin: Veltkamp's split t = x * (2^(23 - M) + 1), x - ... = t - (t - x) rounds x to
    M + 1 significant bits, to nearest, ties to even (float32 RNE arithmetic, no FMA; checked
    on every float32 input for fp10_e5m4). |x| < 2^emin: (x + c) - c with c = 1.5 * 2^(lsb + 23)
    rounds x to a multiple of 2^lsb (float32 addition rounds there, ties to even), with x's
    sign (so a negative value rounding to zero gives -0). Then the overflow policy.
    """
    bound = float(2.0 ** (f.emax + 2))
    xc = x.clamp(-bound, bound)
    t = xc * float(2 ** (23 - f.man) + 1)
    hi = t - (t - xc)
    c = float(1.5 * 2.0 ** (f.lsb + 23))
    lo = torch.copysign((xc + c) - c, xc)
    out = torch.where(xc.abs() < float(2.0**f.emin), lo, hi)
    big = out.abs() > f.maxn
    return torch.where(
        big, torch.copysign(torch.full_like(out, f.maxn if f.sat else math.inf), xc), out
    )


def _is_breakpoint(s: Tensor, f: _Fmt) -> Tensor:
    """True where float64 s is a value of f or a midpoint between two (one more fraction bit)."""
    k = _ilogb(s).clamp(f.emin, f.emax + 1) - (f.man + 1)
    sc = s * _pow2(-k, _F64)
    return torch.isfinite(s) & (s != 0) & (sc == torch.trunc(sc))


def _round_with_error(s: Tensor, err: Tensor, f: _Fmt) -> Tensor:
    """Round the exact value s + err (|err| below half a float64 ulp of s) once to f."""
    nudge = _is_breakpoint(s, f) & (err != 0)
    step = torch.where((err > 0) == (s > 0), 1, -1)  # away from / toward zero, in ulps
    s = torch.where(nudge, (s.view(_I64) + step).view(_F64), s)
    return _quant(s, f)


def _add_f32(f: _Fmt, fa: _Fmt, fb: _Fmt) -> bool:
    """a + b rounded to float32 and then to f is round(a + b): round-to-nearest double rounding
    is innocuous when both operands have <= p bits (p = M + 1 of f) and float32 keeps
    24 >= 2p + 2 bits (Figueroa 1995; checked exhaustively for fp10_e5m4 in the tests)."""
    p = f.man + 1
    return (
        f.rne
        and 24 >= 2 * p + 2
        and fa.man <= f.man
        and fb.man <= f.man
        and all(_f32_fmt(g) for g in (f, fa, fb))
    )


def _add(a: Tensor, b: Tensor, f: _Fmt, fa: _Fmt, fb: _Fmt) -> Tensor:
    """add(a, b, f) (spec section 3) of a value of fa and a value of fb: round(a + b) once.

    float32 when _add_f32 holds; else float64: exact when the operand formats span <= 53 bits,
    otherwise TwoSum and the breakpoint nudge. Exact zero sums follow IEEE (+0 except
    (-0) + (-0)), as float addition does.
    """
    if _prims_on(a):
        return _prim(_native.PRIM_ADD, f, a, b)
    if _add_f32(f, fa, fb):
        return _quant(a.to(torch.float32) + b.to(torch.float32), f)
    a, b = a.to(_F64), b.to(_F64)
    s = a + b
    if _exact_add(fa, fb):
        return _quant(s, f)
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # TwoSum: a + b = s + err exactly (finite s)
    return _round_with_error(s, err, f)


def _sub(a: Tensor, b: Tensor, f: _Fmt, fa: _Fmt, fb: _Fmt) -> Tensor:
    """sub(a, b, f) = add(a, -b, f) (spec section 3)."""
    return _add(a, -b, f, fa, fb)


def _mul_f32(f: _Fmt, fa: _Fmt, fb: _Fmt) -> bool:
    """The product of a value of fa and a value of fb is exact in float32 (the significands
    have <= 24 bits together and the range fits) and f fits float32."""
    return (
        fa.man + fb.man + 2 <= 24
        and fa.lsb + fb.lsb >= -149
        and fa.emax + fb.emax + 2 <= 126
        and _f32_fmt(f)
    )


def _f32_vals(f: _Fmt) -> bool:
    """Every value of f is a float32 value (formats up to FP32: M <= 23, lsb >= -149,
    emax <= 127)."""
    return f.man <= 23 and f.lsb >= -149 and f.emax <= 127


def _f32_breaks(f: _Fmt) -> bool:
    """Results of f for the native float32 arithmetic with exact sums (mode 3): f fits float32
    (_f32_fmt), its breakpoints (values and midpoints, M + 2 bits) are float32 values at least two
    float32 ulps apart (M <= 21), and half its smallest subnormal is above float32's normal
    range limit, 2^(lsb - 1) > 2^-126 (lsb >= -124)."""
    return _f32_fmt(f) and f.man <= 21 and f.lsb >= -124


def _add_f32x(f: _Fmt, fa: _Fmt, fb: _Fmt) -> bool:
    """a + b rounded once to f by float32 TwoSum and the breakpoint nudge (native mode 3):
    operands of any float32-valued formats, results per _f32_breaks."""
    return _f32_breaks(f) and _f32_vals(fa) and _f32_vals(fb)


def _mul_f32x(f: _Fmt, fa: _Fmt, fb: _Fmt) -> bool:
    """a * b rounded once to f from the float32 product (native mode 3): the significands have
    <= 24 bits together, so the product is exact when it is a normal float32 value; one below
    2^-126 rounds to zero in f either way, one overflowing float32 overflows f either way."""
    return _f32_breaks(f) and _f32_vals(fa) and _f32_vals(fb) and fa.man + fb.man + 2 <= 24


def _mul(a: Tensor, b: Tensor, f: _Fmt, fa: _Fmt, fb: _Fmt) -> Tensor:
    """mul(a, b, f) of a value of fa and a value of fb: the product is exact in float64 (and in
    float32 when _mul_f32 holds); rounded once."""
    if _prims_on(a):
        return _prim(_native.PRIM_MUL, f, a, b)
    dt = torch.float32 if _mul_f32(f, fa, fb) else _F64
    return _quant(a.to(dt) * b.to(dt), f)


def _bfp_grouped(vg: Tensor, b: _Bfp, f: _Fmt | None, gmax: Tensor | None = None) -> Tensor:
    """Store grouped values vg (..., g, S), group axis -2, values of element format f, to BFP
    and load them back (spec section 5); float32 when vg is float32 and f fits float32, else
    float64 (f None: any float64 values).

    Rule max: e = floor(log2(x_max)) of the group's largest magnitude x_max, plus one when
    R(x_max / 2^(e - mb + 1)) carries out to 2^mb; E = clamp(e, Emin, Emax) (all-zero group:
    Emin); mant = min(R(|v| / 2^(E - mb + 1)), 2^mb - 1); a group holding NaN/Inf is poisoned
    (Inf elements stay +-Inf, the others become NaN). Rule second_max: E = the second-largest
    element exponent of the group's finite nonzero elements (the largest if only one);
    elements above E and non-finite elements pass through.
    The clamp range is narrowed to [lsb, emax + 1] of f, which changes no result (nonzero
    values of f have exponents in [lsb, emax], a carry adds one; an all-zero group decodes to
    zeros for any E). ``gmax``: the group maxima of |vg| (..., 1, S), when the caller has them.
    """
    if f is None:
        vg, e_lo, e_hi = vg.to(_F64), b.emin, b.emax
    else:
        vg = vg.to(_q_dtype(vg, f))
        e_lo, e_hi = max(b.emin, f.lsb), min(b.emax, f.emax + 1)
    a = vg.abs()
    if b.second_max:
        fin_nz = (a != 0) & torch.isfinite(a)
        e = torch.where(fin_nz, _ilogb(a), _NO_EXP)
        if b.g == 1:
            shared = e
        else:
            top = e.topk(2, dim=-2).values
            first, second = top.narrow(-2, 0, 1), top.narrow(-2, 1, 1)
            shared = torch.where(second == _NO_EXP, first, second)
        shared = torch.where(shared == _NO_EXP, e_lo, shared).clamp(e_lo, e_hi)
    else:
        gmax = a.amax(dim=-2, keepdim=True) if gmax is None else gmax.to(vg.dtype)
        special = ~torch.isfinite(gmax)
        top = _ilogb(gmax).clamp(e_lo, e_hi)  # all-zero group: -> the lowest exponent
        lead = gmax * _pow2((b.mb - 1) - top, vg.dtype)
        lead = torch.round(lead) if b.rne else torch.trunc(lead)
        shared = torch.where(lead >= float(1 << b.mb), top + 1, top).clamp(e_lo, e_hi)
    sh = shared - (b.mb - 1)
    scaled = a * _pow2(-sh, vg.dtype)
    mant = (torch.round(scaled) if b.rne else torch.trunc(scaled)).clamp_max(float((1 << b.mb) - 1))
    val = torch.copysign(mant * _pow2(sh, vg.dtype), vg)
    if b.second_max:
        return torch.where((e > shared) | ~torch.isfinite(vg), vg, val)
    # |v| == Inf rather than torch.isinf: inductor vectorizes the former, not the latter
    poisoned = torch.where(vg.abs() == math.inf, vg, torch.full_like(vg, math.nan))
    return torch.where(special, poisoned, val)


def _bfp_keeps(f: _Fmt, b: _Bfp) -> bool:
    """BFP (rule max) with man_bits = M + 1 returns values of f for inputs in f: the largest
    element has <= M + 1 significant bits (no carry), every result is mant * 2^(E - M) with
    mant < 2^(M + 1) and E at most the group's largest exponent (or Emax), and a grid finer
    than f's subnormals leaves the element unchanged. The final quantize is then the identity."""
    return not b.second_max and b.mb == f.man + 1


def _storage(v: Tensor, f: _Fmt, b: _Bfp | None, rounded: bool = False) -> Tensor:
    """stored(v, f) (spec section 5) of grouped values v (..., g, S) (group axis -2, g = the BFP
    group size): quantize, then BFP store/load and quantize again, if BFP is enabled.

    ``rounded``: v already holds values of f (quantize is then the identity). For rule max the
    group maxima of |quantize(v)| are quantize(max |v|) (quantize is odd and monotone), taken
    from v directly; the last quantize is skipped when it is the identity (_bfp_keeps).
    """
    q = v if rounded else _quant(v, f)
    if b is None:
        return q
    gmax = None
    if not b.second_max and not rounded:
        gmax = _quant(v.abs().amax(dim=-2, keepdim=True), f)
    out = _bfp_grouped(q, b, f, gmax)
    return out if _bfp_keeps(f, b) else _quant(out, f)
