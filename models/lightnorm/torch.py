# SPDX-License-Identifier: Apache-2.0
"""LightNorm for PyTorch: drop-in replacements of nn.BatchNorm1d / nn.BatchNorm2d.

:class:`LightNorm1d` and :class:`LightNorm2d` compute exactly what docs/spec.md specifies: the
outputs, the input gradient, d_gamma / d_beta (``weight.grad`` / ``bias.grad``) and the running
statistics are bit-identical to :mod:`lightnorm.reference` (the numpy oracle) for every
configuration. They keep nn.BatchNorm's contract: constructor order and defaults, parameters,
buffers (running_mean, running_var, num_batches_tracked), state_dict keys, momentum convention
(momentum=None is a cumulative average), train/eval behaviour. LightNorm options are
keyword-only (``config=``, ``backend=``). :func:`convert_batchnorm` / :func:`revert_batchnorm`
swap modules explicitly; torch itself is never patched.

How the numerics are implemented in torch ops (device-agnostic; no numpy on the data path):

- Every value of a format FP(E <= 8, M <= 23) is an exact float32 value. Kept element tensors
  (x and dy as read back from storage) are float16 when the format fits it exactly (E <= 5,
  M <= 10: fp10_e5m4), else float32; outputs have the input's dtype.
- ``_quant`` is the one rounding step (spec section 2). float64 (and float32 with rtz): with
  e = floor(log2|x|) from the bit pattern, k = clamp(e, emin, emax + 1) - M, the result is
  2^k * R(x * 2^-k), R = round half even or trunc, both scalings exact. float32 with rne, for
  formats with E <= 7: Veltkamp's split rounds to M + 1 bits, ties to even (checked on all
  2^32 float32 inputs for fp10_e5m4, eager and compiled), an addition of 1.5 * 2^(lsb + 23)
  rounds on the subnormal grid. Then the overflow policy.
- mul(a, b): the product of two format values is exact in float64, and in float32 when the
  significands and exponent ranges fit; rounded once.
- add/sub(a, b): in float32 when rounding to nearest, both operands have at most the result's
  p = M + 1 <= 11 bits (double rounding through 24 >= 2p + 2 bits is innocuous, Figueroa
  1995; checked on every pair of fp10_e5m4 values); else in float64: exact when the operand
  formats span <= 53 bits (fp10_e5m4: 2^-18 ... 2^17), otherwise TwoSum and, where the error
  is nonzero and the float64 sum is a breakpoint of the result format (a value or a midpoint),
  a one-ulp nudge toward the exact sum before the one rounding (as lightnorm.arith does).
- recip(v): 1/v in float64 is correctly rounded and never lands on a breakpoint of a format
  with <= 24-bit significands unless it is exact (|1 - v*t| >= 2^-49 for such t): one
  ``_quant`` of it is correct. rsqrt(v): 1/sqrt(v) in float64 (error < 2 ulp); within 4 ulp of
  a breakpoint B the side of B is decided exactly by the sign of B^2 v - 1 (Dekker product),
  then the nudge.
- Exact accumulators (spec section 4): n values of a format f are integer multiples of
  2^(emin - M) below 2^(emax + 1). When (emax + 1 - (emin - M)) + ceil(log2 n) <= 53 their
  float64 sum is exact in any order (fp10_e5m4: n <= 2^19); when <= 63 the int64 sum of the
  scaled integers is (n <= 2^29); wider formats (fp32, fp10_e6m3) use the exact fallback: the
  values are split into windows of 53 - ceil(log2 n) bits between the tensor's highest and
  lowest set bit, each window summed exactly in float64, the windows recombined as Python
  integers. A sum is rounded once, round(c * sum): exact product (Dekker) and the breakpoint
  nudge, or lightnorm.arith.round_scaled_int for Python-integer sums.
- BFP (spec section 5): groups of ``group_size`` channels at one (n, h, w) position, rule max
  (with the carry of the largest element and NaN/Inf poisoning) and the authors' second_max.
- Per-channel results (stat_format, running_format) saturate (spec section 2).

Execution: each step is a plain torch function: the element-wise passes (store + statistics,
variance sums, normalize, backward pass 1, backward pass 2) and small per-channel steps (the C
values of F2/F3/F6/B3). ``backend="native"`` runs the element-wise passes as fused C++ loops
(lightnorm/csrc/lightnorm_native.cpp, built at first use with the system compiler, see
lightnorm._native; CPU tensors of float32/float16/bfloat16, other inputs take the eager path)
and the per-channel steps with the same library's primitives. ``"compile"`` runs every step
through ``torch.compile`` (inductor; one compilation per step and configuration, cached on disk
by inductor; the first call of a new configuration takes tens of seconds), ``"eager"`` runs
them op by op. ``"auto"`` (default) is "native" when the kernels build, else it compiles
inputs of at least AUTO_COMPILE_MIN_NUMEL elements (falling back to eager if compilation
fails) and runs smaller ones eagerly. LIGHTNORM_TORCH_BACKEND=native|eager|compile overrides
"auto". Every path gives the same bits.

Scope beyond the spec: in eval mode with running statistics the module also has a backward
(docs/spec.md defines none): with mu, s, a of section 8, dx = stored(mul(stored(dy), a, gf)),
d_gamma = round(sum(dy * x_hat)), d_beta = round(sum(dy)) (B1, B2, B5 of section 7).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _NormBase

from lightnorm import _native
from lightnorm.arith import round_scaled_int
from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.config import GradMode, LightNormConfig, Statistics
from lightnorm.formats import FloatFormat, Overflow, Rounding, as_overflow, as_rounding
from lightnorm.reference import LayerConstants, layer_constants

__all__ = [
    "LightNorm1d",
    "LightNorm2d",
    "bfp_quantize",
    "convert_batchnorm",
    "quantize",
    "release_buffers",
    "revert_batchnorm",
]

# Per-channel primitives in the native kernels: on (per thread) while a "native" engine step
# runs; _quant, _add, _mul, _recip, _rsqrt and _round_sum of CPU tensors then run natively
# (float64 arrays, the same bits: each is one correct rounding).
_prims = threading.local()

_F64 = torch.float64
_I64 = torch.int64
_NO_EXP = -(1 << 20)  # exponent of zeros / non-finite values for the second_max rule
_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitter for float64


# --------------------------------------------------------------------------------------------
# Static descriptions (hashable: they key the compiled passes)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The element-wise passes (spec step names). External layout: tensors (N, C, S), per-channel
# vectors (C,) float64; `p` is the static description. Inside, every pass works on one grouped
# view (N, G, g, S) - g: the BFP group (1 without BFP), C padded with +0 lanes to G*g (zeros in,
# zeros out, so padding never reaches a BFP exponent) - and reduces over S only (partials per
# (n, c) row, combined exactly afterwards: row reductions fuse best with inductor's loops).
# Kept tensors are float16 or float32 (_store_dtype).
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _PStore:
    """F1 / B1 (+ F2 sums and range chunk extrema): stored(v, f) and its statistics."""

    f: _Fmt
    bfp: _Bfp | None
    lay: _Layout
    kind: str | None  # exact-sum kind of the stored values, None: no sums ('wide': outside)
    extrema: bool  # row max/min (N, C) (range statistics with chunks of whole samples)


def _pass_store(v: Tensor, *, p: _PStore) -> tuple[Tensor, ...]:
    c = v.shape[1]
    vc = _storage(_group(v, p.lay), p.f, p.bfp)
    out: tuple[Tensor, ...] = (_ungroup(vc.to(_store_dtype(p.f)), c),)
    if p.kind is not None and p.kind != "wide":
        out += _sum_parts(vc, p.f, p.kind, c)
    if p.extrema:
        out += (_rows(vc.amax(dim=-1), c), _rows(vc.amin(dim=-1), c))
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
    *,
    p: _PBwd2,
) -> Tensor:
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


# --------------------------------------------------------------------------------------------
# Running the passes: eager or torch.compile
# --------------------------------------------------------------------------------------------

_BACKENDS = ("auto", "native", "compile", "eager")
# Without the native kernels, "auto" compiles the passes of tensors with at least this many
# elements; smaller ones run eagerly (a few ms per step), which spares a short run or a test the
# compilation (tens of s).
AUTO_COMPILE_MIN_NUMEL = 1 << 16
_compile_lock = threading.Lock()
_compiled: dict[tuple[str, Any], Callable[..., Any]] = {}
_compile_broken: list[str] = []  # set once when "auto" had to fall back to eager


def _resolve_backend(backend: str, numel: int | None = None) -> str:
    """'compile', 'try-compile' (auto) or 'eager'; 'auto' itself when numel is None (validation)."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("LIGHTNORM_TORCH_BACKEND", "auto")
        if env not in _BACKENDS:
            raise ValueError(
                f"LIGHTNORM_TORCH_BACKEND must be one of {list(_BACKENDS)}, got {env!r}"
            )
        backend = env
    if backend == "auto" and numel is not None:
        if _native.load() is not None:
            return "native"
        # no native kernels (no C++ compiler): compile, falling back to eager on failure
        return "try-compile" if numel >= AUTO_COMPILE_MIN_NUMEL else "eager"
    if backend == "native" and numel is not None and _native.load() is None:
        raise RuntimeError(
            f"backend='native': the native kernels are unavailable: {_native.error()}"
        )
    return backend


def _compiled_pass(fn: Callable[..., Any], p: Any) -> Callable[..., Any]:
    """torch.compile(fn with p bound), dynamic shapes. Each (pass, p) gets its own code object so
    that dynamo's per-code recompile limit never mixes configurations."""
    key = (fn.__name__, p)
    with _compile_lock:
        cached = _compiled.get(key)
        if cached is None:

            def entry(*args: Any) -> Any:
                return fn(*args, p=p)

            code = entry.__code__.replace(co_name=f"lightnorm{fn.__name__}_{len(_compiled)}")
            bound = types.FunctionType(
                code, entry.__globals__, code.co_name, None, entry.__closure__
            )
            # Per-channel steps work on C values: one thread (an OpenMP team for 64 values only
            # costs a wake-up, milliseconds on a busy machine).
            options: dict[str, Any] | None = None
            if fn.__name__.startswith("_chan"):
                options = {"cpp.threads": 1}
            cached = torch.compile(bound, dynamic=None, options=options)
            _compiled[key] = cached
    return cached


def _run(backend: str, fn: Callable[..., Any], p: Any, *args: Any) -> Any:
    """Run pass fn(*args, p=p) on the resolved backend ('auto' may fall back to eager;
    'native' runs the element-wise passes it covers natively and the rest eagerly)."""
    if backend == "native":
        native = _NATIVE_PASSES.get(fn.__name__)
        if native is not None and _native_ok(args):
            return native(*args, p=p)
        return fn(*args, p=p)
    if (
        backend == "eager"
        or (backend == "try-compile" and _compile_broken)
        or torch.compiler.is_compiling()
    ):
        return fn(*args, p=p)
    try:
        return _compiled_pass(fn, p)(*args)
    except Exception as exc:  # e.g. no C++ compiler for inductor
        if backend == "compile":
            raise
        _compile_broken.append(repr(exc))
        warnings.warn(
            f"lightnorm.torch: torch.compile failed ({exc!r}); using the eager path", stacklevel=3
        )
        return fn(*args, p=p)


# --------------------------------------------------------------------------------------------
# Native passes (lightnorm/csrc/lightnorm_native.cpp through lightnorm._native)
# --------------------------------------------------------------------------------------------
# The same passes as fused C++ loops: same inputs, same outputs, same bits (each operator is one
# correct rounding there too). A pass runs in float32 arithmetic when every operator in it passes
# the float32 checks used above (_f32_fmt, _add_f32, _mul_f32), else in float64 (products exact,
# sums by TwoSum and the breakpoint nudge). Exact sums: float64 rows ('f64' kinds) or 32-bit
# limbs (any width: 'i64' and 'wide' kinds, combined by _Acc.from_parts).

_NATIVE_MIN_PAR = 1 << 15  # below this many elements a pass runs on one thread
_NATIVE_MAX_COUNT = 1 << 31  # limb sums stay below 2^63 for fewer values per channel


class _BufferPool:
    """Output buffers of the native passes (x_c, y, dy_c, dx), kept for reuse.

    glibc hands freed multi-megabyte blocks back to the kernel, so fresh output tensors of
    that size are page-faulted in again on every step (before this pool, ``perf stat -e
    page-faults`` counted about 6 400 faults per training step of a (32, 64, 32, 32) layer).
    A buffer here is a numpy array lent as ``torch.from_numpy(array)``: the tensor's storage
    holds a reference to the array, so the array is free again exactly when its reference
    count is back to the pool's own (every tensor and view of it, in Python or held by
    autograd, is gone). Small buffers, and requests beyond ``cap`` live buffers of one shape,
    get a plain torch.empty.
    """

    MIN_BYTES = 1 << 20

    def __init__(self, cap: int = 16) -> None:
        self.cap = cap
        self.lock = threading.Lock()
        self.arrays: dict[tuple[tuple[int, ...], torch.dtype], list[np.ndarray]] = {}

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.MIN_BYTES:
            return torch.empty(shape, dtype=dtype)
        key = (tuple(shape), dtype)
        with self.lock:
            arrays = self.arrays.setdefault(key, [])
            for i in range(len(arrays)):
                if sys.getrefcount(arrays[i]) == 2:  # the list's reference + the argument
                    return torch.from_numpy(arrays[i])
            if len(arrays) >= self.cap:
                return torch.empty(shape, dtype=dtype)
            arr = np.empty(shape, dtype=_NP_DTYPES[dtype])
            arrays.append(arr)
            return torch.from_numpy(arr)

    def clear(self) -> None:
        with self.lock:
            self.arrays.clear()


_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32}
_pool = _BufferPool()


def release_buffers() -> None:
    """Drop the native backend's pooled output buffers (memory in use stays valid; buffers
    still lent out are freed when their last tensor goes)."""
    _pool.clear()


def _native_ok(args: tuple[Any, ...]) -> bool:
    """The native passes take CPU tensors with float32, float16 or bfloat16 elements (widened
    to float32 exactly) and fewer than 2^31 values per channel."""
    t = args[0]
    return (
        t.device.type == "cpu"
        and t.dtype in _NARROW
        and t.shape[0] * t.shape[2] < _NATIVE_MAX_COUNT
    )


def _nfmt(f: _Fmt) -> Any:
    return _native.Fmt(f.man, f.emin, f.emax, int(f.rne), int(f.sat), 0, f.maxn)


def _bfp_f32(b: _Bfp | None, f: _Fmt) -> bool:
    """BFP of values of f runs in float32: every scaling 2^(+-k) it uses is a normal float32."""
    if b is None:
        return True
    e_lo, e_hi = max(b.emin, f.lsb), min(b.emax, f.emax + 1)
    return e_lo - b.mb + 1 >= -126 and e_hi + 1 <= 127 and b.mb - 1 - e_lo <= 127


def _nbfp(b: _Bfp | None, f: _Fmt) -> Any:
    if b is None:
        return _native.Bfp()
    e_lo, e_hi = max(b.emin, f.lsb), min(b.emax, f.emax + 1)
    return _native.Bfp(
        1, b.mb, b.g, e_lo, e_hi, int(b.second_max), int(b.rne), int(_bfp_keeps(f, b))
    )


def _f32_in(t: Tensor) -> Tensor:
    return (t if t.dtype == torch.float32 else t.to(torch.float32)).contiguous()


def _stored_in(t: Tensor) -> Tensor:
    return (t if t.dtype in (torch.float16, torch.float32) else t.to(torch.float32)).contiguous()


def _vec(t: Tensor) -> Tensor:
    return t.detach().to(_F64).contiguous()


def _nlimbs(f: _Fmt) -> int:
    return ((f.emax + 1 - f.man - f.lsb) >> 5) + 3


def _native_args(pass_id: int, f32: bool, shape: torch.Size, **kw: Any) -> Any:
    n, c, s = shape
    a = _native.Args()
    a.pass_, a.arith, a.n, a.c, a.s = pass_id, 0 if f32 else 1, n, c, s
    a.nthreads = torch.get_num_threads() if n * c * s >= _NATIVE_MIN_PAR else 1
    for key, val in kw.items():
        setattr(a, key, val)
    # unused formats: the compute format (the kernels check one rounding/overflow per pass)
    if "fg" not in kw:
        a.fg = a.fc
    a.fs = a.fc
    return a


def _native_sums(
    a: Any, f: _Fmt, kind: str | None, n: int, c: int, slot: int
) -> tuple[Tensor, ...]:
    """Allocate the row sums of `kind` for slot 0/1 of a; the parts a torch pass returns."""
    if kind is None:
        return ()
    rows = torch.zeros((n, c), dtype=_F64)
    if kind == "f64":
        a.sum_kind = 1
        setattr(a, f"sum{slot}", rows.data_ptr())
        return (rows,)
    a.sum_kind, a.nlimbs, a.fs = 2, _nlimbs(f), _nfmt(f)
    limbs = torch.zeros((n, c, a.nlimbs), dtype=_I64)
    setattr(a, f"sum{slot}", rows.data_ptr())
    setattr(a, f"limb{slot}", limbs.data_ptr())
    return (limbs, rows)


def _native_store(v: Tensor, *, p: _PStore) -> tuple[Tensor, ...]:
    v = _f32_in(v)
    n, c, s = v.shape
    f32 = _f32_fmt(p.f) and _bfp_f32(p.bfp, p.f)
    a = _native_args(0, f32, v.shape, fc=_nfmt(p.f), bfp=_nbfp(p.bfp, p.f), in0=v.data_ptr())
    out = _pool.empty((n, c, s), _store_dtype(p.f))
    a.out0, a.out_half = out.data_ptr(), int(out.dtype == torch.float16)
    sums = _native_sums(a, p.f, p.kind, n, c, 0)
    ext: tuple[Tensor, ...] = ()
    if p.extrema:
        ext = (torch.empty((n, c), dtype=_F64), torch.empty((n, c), dtype=_F64))
        a.extrema, a.ext_max, a.ext_min = 1, ext[0].data_ptr(), ext[1].data_ptr()
    _native.call(a)
    return (out, *sums, *ext)


def _native_var(x_c: Tensor, mean: Tensor, *, p: _PVar) -> tuple[Tensor, ...]:
    x_c, mu = _stored_in(x_c), _vec(mean)
    n, c, _ = x_c.shape
    f32 = _add_f32(p.cf, p.cf, p.st) and _mul_f32(p.cf, p.cf, p.cf)
    a = _native_args(1, f32, x_c.shape, fc=_nfmt(p.cf), in0=x_c.data_ptr(), v0=mu.data_ptr())
    a.in0_half = int(x_c.dtype == torch.float16)
    sums = _native_sums(a, p.cf, p.kind, n, c, 0)
    _native.call(a)
    return sums


def _native_norm(x: Tensor, mean: Tensor, coeff: Tensor, beta: Tensor, *, p: _PNorm) -> Tensor:
    x = _f32_in(x) if p.store_input else _stored_in(x)
    vecs = [_vec(t) for t in (mean, coeff, beta)]
    f32 = _add_f32(p.cf, p.cf, p.st) and _mul_f32(p.cf, p.cf, p.st) and _bfp_f32(p.bfp, p.cf)
    a = _native_args(2, f32, x.shape, fc=_nfmt(p.cf), bfp=_nbfp(p.bfp, p.cf), in0=x.data_ptr())
    a.in0_half, a.mode = int(x.dtype == torch.float16), int(p.store_input)
    a.v0, a.v1, a.v2 = (t.data_ptr() for t in vecs)
    out = _pool.empty(tuple(x.shape), torch.float32)
    a.out0 = out.data_ptr()
    _native.call(a)
    return out


def _native_bwd1(
    dy: Tensor, x_c: Tensor, mean: Tensor, scale: Tensor, *, p: _PBwd1
) -> tuple[Tensor, ...]:
    dy, x_c = _f32_in(dy), _stored_in(x_c)
    n, c, s = dy.shape
    mu, sc = _vec(mean), _vec(scale)
    f32 = (
        _f32_fmt(p.gf)
        and _bfp_f32(p.bfp, p.gf)
        and _add_f32(p.cf, p.cf, p.st)
        and _mul_f32(p.cf, p.cf, p.st)
        and _mul_f32(p.gf, p.gf, p.cf)
    )
    a = _native_args(3, f32, dy.shape, fc=_nfmt(p.cf), fg=_nfmt(p.gf), bfp=_nbfp(p.bfp, p.gf))
    a.in0, a.in1, a.in1_half = dy.data_ptr(), x_c.data_ptr(), int(x_c.dtype == torch.float16)
    a.v0, a.v1 = mu.data_ptr(), sc.data_ptr()
    out = _pool.empty((n, c, s), _store_dtype(p.gf))
    a.out0, a.out_half = out.data_ptr(), int(out.dtype == torch.float16)
    sums = _native_sums(a, p.gf, p.kind, n, c, 0) + _native_sums(a, p.gf, p.kind, n, c, 1)
    _native.call(a)
    return (out, *sums)


def _native_bwd2(
    dy_c: Tensor,
    x_c: Tensor,
    mean: Tensor,
    scale: Tensor,
    k_beta: Tensor,
    k_gamma: Tensor,
    coeff: Tensor,
    corr: Tensor,
    marker: Tensor,
    *,
    p: _PBwd2,
) -> Tensor:
    dy_c, x_c = _stored_in(dy_c), _stored_in(x_c)
    vecs = [_vec(t) for t in (mean, scale, corr, k_beta, k_gamma, coeff)]
    cf, gf, st = p.cf, p.gf, p.st
    f32 = _f32_fmt(gf) and _bfp_f32(p.bfp, gf) and _mul_f32(gf, gf, st)
    if p.mode != "eval":
        f32 = f32 and _add_f32(gf, gf, st)
    if p.mode == "bn":
        f32 = f32 and (
            _add_f32(cf, cf, st)
            and _mul_f32(cf, cf, st)
            and _mul_f32(gf, cf, st)
            and _add_f32(gf, gf, gf)
        )
    mode = {"bn": 0, "range_exact": 1, "eval": 2}[p.mode]
    a = _native_args(4, f32, dy_c.shape, fc=_nfmt(cf), fg=_nfmt(gf), bfp=_nbfp(p.bfp, gf))
    a.mode, a.in0, a.in1 = mode, dy_c.data_ptr(), x_c.data_ptr()
    a.in0_half, a.in1_half = int(dy_c.dtype == torch.float16), int(x_c.dtype == torch.float16)
    a.v0, a.v1, a.v2, a.v3, a.v4, a.v5 = (t.data_ptr() for t in vecs)
    mk = None
    if p.mode == "range_exact":
        mk = marker.to(torch.int8).contiguous()
        a.marker = mk.data_ptr()
    out = _pool.empty(tuple(dy_c.shape), torch.float32)
    a.out0 = out.data_ptr()
    _native.call(a)
    return out


def _native_backend(backend: str, t: Tensor) -> str:
    """'native' stays 'native' only for tensors the native passes take (else 'eager')."""
    if backend == "native" and not _native_ok((t.reshape(t.shape[0], t.shape[1], -1),)):
        return "eager"
    return backend


def _pass_kind(f: _Fmt, count: int, backend: str) -> str:
    """The exact-sum kind of a pass: the native passes give limb rows ('i64' layout) for any
    width, so 'wide' becomes 'i64' there."""
    kind = _sum_kind(f, count)
    return "i64" if backend == "native" and kind == "wide" else kind


_NATIVE_PASSES: dict[str, Callable[..., Any]] = {
    "_pass_store": _native_store,
    "_pass_var": _native_var,
    "_pass_norm": _native_norm,
    "_pass_bwd1": _native_bwd1,
    "_pass_bwd2": _native_bwd2,
}


# --------------------------------------------------------------------------------------------
# Per-channel steps (C values; their primitives run natively under _NativePrims)
# --------------------------------------------------------------------------------------------


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
    NaN/Inf per channel in ``special`` (0 elsewhere)."""

    f64: Tensor | None = None
    ints: list[int] | None = None
    lsb: int = 0
    special: Tensor | None = None

    @staticmethod
    def from_parts(parts: tuple[Tensor, ...], f: _Fmt) -> _Acc:
        """From the row sums (rows, C) of a pass (their sum is exact as well); int64 rows
        (rows, C) in units of 2^lsb, or the native passes' limb rows (rows, C, L): value
        sum_i limb_i * 2^(32 i + lsb), each limb sum below 2^63 (rows * S < 2^31 values)."""
        if len(parts) == 1:
            return _Acc(f64=_plus_zero(parts[0].sum(dim=0)))  # an exact zero sum is +0
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
    k: int  # K
    pre: bool  # accumulator roundings were done outside (Python integers): inputs are rounded
    aligned: bool = False  # range: extrema are row extrema (N, C), chunks of N / K samples


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
    """F2 range + F3: r = round(sum_k(max_k - min_k) / K) (exact sum, unless p.pre: rmean given),
    sigma = mul(r, C), s = recip(add(sigma, eps)), a, beta; v_b = mul(sigma, sigma, rf)."""
    st, rf = p.st, p.rf
    if not p.pre:
        if p.aligned:  # chunk k = samples [k N/K, (k+1) N/K): reduce the row extrema
            ch = ext_max.shape[1]
            ext_max = ext_max.reshape(p.k, -1, ch).amax(dim=1).t()
            ext_min = ext_min.reshape(p.k, -1, ch).amin(dim=1).t()
        both = torch.cat([ext_max, -ext_min], dim=1).to(_F64)  # (C, 2K) values of cf: exact sum
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


# --------------------------------------------------------------------------------------------
# The engine: one per configuration
# --------------------------------------------------------------------------------------------


@dataclass
class _FwdState:
    """What the backward keeps from the forward (spec section 7)."""

    mean: Tensor
    scale: Tensor
    coeff: Tensor
    consts: LayerConstants | None  # None: eval mode (running statistics)
    kc: Tensor | None  # the constants as a tensor
    argmax: Tensor | None = None  # (C, K) stream indices (range_exact)
    argmin: Tensor | None = None


@dataclass
class _FwdOut:
    y: Tensor
    x_c: Tensor
    state: _FwdState
    batch_var: Tensor  # F6 v_b, running_format (range: sigma^2; variance: unbiased)


class _Engine:
    """LightNorm numerics for one LightNormConfig, on torch tensors."""

    def __init__(self, cfg: LightNormConfig) -> None:
        self.cfg = cfg
        rnd, ovf = cfg.rounding, cfg.overflow
        self.cf = _Fmt.of(cfg.compute_format, rnd, ovf)
        self.gf = _Fmt.of(cfg.grad_format, rnd, ovf)
        # Spec section 2: per-channel results (stat_format, running_format) always saturate.
        self.st = _Fmt.of(cfg.stat_format, rnd, Overflow.SATURATE)
        self.rf = _Fmt.of(cfg.running_format, rnd, Overflow.SATURATE)
        self.bfp = _Bfp.of(cfg.bfp, rnd)
        self.range = cfg.statistics is Statistics.RANGE
        self.range_exact = cfg.grad_mode is GradMode.RANGE_EXACT
        self.k = cfg.num_chunks
        self.g = 1 if cfg.bfp is None else cfg.bfp.group_size
        self._consts: dict[tuple[int, float, str], tuple[LayerConstants, Tensor]] = {}

    def constants(
        self, count: int, eps: float, device: torch.device
    ) -> tuple[LayerConstants, Tensor]:
        """The layer constants (lightnorm.reference.layer_constants, cached by n and eps) and
        the same as a float64 tensor for the per-channel steps."""
        key = (count, float(eps), str(device))
        c = self._consts.get(key)
        if c is None:
            k = layer_constants(count, self.cfg, eps)  # raises ValueError for a bad n / eps
            vals = [
                k.inv_count,
                k.inv_count_unbiased,
                k.range_const,
                k.range_const_per_chunk,
                k.eps,
            ]
            c = self._consts[key] = (k, torch.tensor(vals, dtype=_F64, device=device))
        return c

    def _pchan(self, pre: bool, aligned: bool = False) -> _PChan:
        return _PChan(self.cf, self.gf, self.st, self.rf, self.k, pre, aligned)

    def _acc(
        self, outs: tuple[Tensor, ...], stored: Tensor, f: _Fmt, kind: str, count: int
    ) -> _Acc:
        """The exact accumulator of a pass's row sums (kind 'i64'), or of stored values ('wide')."""
        if kind == "wide":
            return _exact_sum_wide(stored, f)
        return _Acc.from_parts(outs, f)

    # ---- F1..F6 -----------------------------------------------------------------------------

    def forward_train(
        self, x: Tensor, gamma: Tensor, beta: Tensor, eps: float, backend: str
    ) -> _FwdOut:
        st, cf = self.st, self.cf
        n_, ch, s_ = x.shape
        count = n_ * s_
        k, kc = self.constants(count, eps, x.device)
        backend = _native_backend(backend, x)
        kind = _pass_kind(cf, count, backend)
        aligned = self.range and n_ % self.k == 0
        lay = _Layout(self.g)
        outs = _run(backend, _pass_store, _PStore(cf, self.bfp, lay, kind, aligned), x)
        x_c = outs[0]
        nsum = {"f64": 1, "i64": 2, "wide": 0}[kind]
        if kind == "f64":
            mean = _run(backend, _chan_mean, self._pchan(False), outs[1], kc)
        else:
            acc_x = self._acc(outs[1 : 1 + nsum], x_c, cf, kind, count)
            mean = _round_acc(acc_x, k.inv_count, st)
        amax = amin = None
        if self.range:
            if aligned:
                ext_max, ext_min = outs[-2], outs[-1]
            else:
                ext_max, ext_min = self.chunk_extrema(x_c)
            if self.range_exact:
                amax, amin = self.chunk_args(x_c)
            pre = _sum_kind(cf, 2 * self.k) != "f64"
            rmean = mean
            if pre:
                if aligned:
                    ext_max = ext_max.reshape(self.k, -1, ch).amax(dim=1).t()
                    ext_min = ext_min.reshape(self.k, -1, ch).amin(dim=1).t()
                both = torch.cat([ext_max, -ext_min], dim=1).to(_F64)
                rmean = _round_acc(_Acc.of_rows(both, cf), 1.0 / self.k, st)
            scale, coeff, b, batch_var = _run(
                backend,
                _chan_range,
                self._pchan(pre, aligned and not pre),
                ext_max,
                ext_min,
                rmean,
                gamma,
                beta,
                kc,
            )
        else:
            vouts = _run(backend, _pass_var, _PVar(cf, st, lay, kind), x_c, mean)
            pre = kind != "f64"
            var = batch_var = mean
            if pre:
                acc_q = self._acc(vouts, vouts[0], cf, kind, count)
                var = _round_acc(acc_q, k.inv_count, st)
                batch_var = _round_acc(acc_q, k.inv_count_unbiased, self.rf)
            scale, coeff, b, batch_var = _run(
                backend, _chan_var, self._pchan(pre), vouts[0], var, batch_var, gamma, beta, kc
            )
        y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, False), x_c, mean, coeff, b)
        state = _FwdState(mean, scale, coeff, k, kc, amax, amin)
        return _FwdOut(y, x_c, state, batch_var)

    def _stream_chunks(self, x_c: Tensor) -> tuple[Tensor, Tensor]:
        """The stream (C, n) split into the first K-1 chunks (C, K-1, m) and the last chunk."""
        n_, ch, s_ = x_c.shape
        count = n_ * s_
        m = count // self.k
        xs = x_c.permute(1, 0, 2).reshape(ch, count)
        return xs[:, : (self.k - 1) * m].reshape(ch, self.k - 1, m), xs[:, (self.k - 1) * m :]

    def chunk_extrema(self, x_c: Tensor) -> tuple[Tensor, Tensor]:
        """F2 range: the max and min (C, K) of each chunk of the stream (any n)."""
        head, tail = self._stream_chunks(x_c)
        cmax = torch.cat([head.amax(dim=2), tail.amax(dim=1, keepdim=True)], dim=1)
        cmin = torch.cat([head.amin(dim=2), tail.amin(dim=1, keepdim=True)], dim=1)
        return cmax.to(_F64), cmin.to(_F64)

    def chunk_args(self, x_c: Tensor) -> tuple[Tensor, Tensor]:
        """Stream indices (C, K) of each chunk's first maximum and first minimum (torch.argmax /
        argmin return the first occurrence; -0 == +0; a NaN is both, the first NaN wins)."""
        head, tail = self._stream_chunks(x_c)
        base = torch.arange(self.k, device=x_c.device) * (x_c.shape[0] * x_c.shape[2] // self.k)
        imax = torch.cat([head.argmax(dim=2), tail.argmax(dim=1, keepdim=True)], dim=1) + base
        imin = torch.cat([head.argmin(dim=2), tail.argmin(dim=1, keepdim=True)], dim=1) + base
        return imax, imin

    def update_running(
        self,
        running_mean: Tensor,
        running_var: Tensor,
        mean: Tensor,
        batch_var: Tensor,
        momentum: float,
        backend: str,
    ) -> None:
        """F6, in place (momentum m as in torch; 1 - m in float64)."""
        mk = torch.tensor([momentum, 1.0 - momentum], dtype=_F64, device=mean.device)
        rm, rv = _run(
            backend,
            _chan_running,
            self._pchan(False),
            running_mean.detach(),
            running_var.detach(),
            mean,
            batch_var,
            mk,
        )
        running_mean.copy_(rm.to(running_mean.dtype))
        running_var.copy_(rv.to(running_var.dtype))

    # ---- I1..I3 -----------------------------------------------------------------------------

    def forward_infer(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: float,
        backend: str,
        keep_input: bool,
    ) -> tuple[Tensor, Tensor | None, _FwdState]:
        st, cf = self.st, self.cf
        backend = _native_backend(backend, x)
        eps_t = torch.tensor(float(eps), dtype=_F64, device=x.device)
        mean, scale, coeff, b = _run(
            backend, _chan_infer, self._pchan(False), running_mean, running_var, gamma, beta, eps_t
        )
        state = _FwdState(mean, scale, coeff, None, None)
        lay = _Layout(self.g)
        if not keep_input:
            y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, True), x, mean, coeff, b)
            return y, None, state
        x_c = _run(backend, _pass_store, _PStore(cf, self.bfp, lay, None, False), x)[0]
        y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, False), x_c, mean, coeff, b)
        return y, x_c, state

    # ---- B1..B5 -----------------------------------------------------------------------------

    def backward(
        self, dy: Tensor, x_c: Tensor, state: _FwdState, backend: str, need_dx: bool
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        st, cf, gf = self.st, self.cf, self.gf
        n_, ch, s_ = x_c.shape
        count = n_ * s_
        backend = _native_backend(backend, dy)
        kind = _pass_kind(gf, count, backend)
        lay = _Layout(self.g)
        outs = _run(
            backend,
            _pass_bwd1,
            _PBwd1(cf, gf, st, self.bfp, lay, kind),
            dy,
            x_c,
            state.mean,
            state.scale,
        )
        dy_c = outs[0]
        kc = state.kc if state.kc is not None else torch.zeros(5, dtype=_F64, device=x_c.device)
        if kind == "f64":
            d_beta, d_gamma, k_beta, k_gamma, corr = _run(
                backend, _chan_bwd, self._pchan(False), outs[1], outs[2], outs[1], state.coeff, kc
            )
        else:
            w = 0 if kind == "wide" else 2
            acc_dy = self._acc(outs[1 : 1 + w], dy_c, gf, kind, count)
            acc_p = self._acc(outs[1 + w : 1 + 2 * w], outs[-1], gf, kind, count)
            inv = state.consts.inv_count if state.consts is not None else 0.0
            rounded = torch.stack(
                [
                    _round_acc(acc_dy, 1.0, st),
                    _round_acc(acc_p, 1.0, st),
                    _round_acc(acc_dy, inv, st),
                    _round_acc(acc_p, inv, st),
                ]
            )
            d_beta, d_gamma, k_beta, k_gamma, corr = _run(
                backend, _chan_bwd, self._pchan(True), rounded, rounded, rounded, state.coeff, kc
            )
        if not need_dx:
            return None, d_gamma, d_beta
        marker = torch.zeros((1,), dtype=torch.int8, device=x_c.device)
        if state.consts is None:
            mode = "eval"
        else:
            mode = "range_exact" if self.range_exact else "bn"
            if self.range_exact:
                assert state.argmax is not None and state.argmin is not None
                marker = self._marker(x_c.shape, state.argmax, state.argmin)
        dx = _run(
            backend,
            _pass_bwd2,
            _PBwd2(cf, gf, st, self.bfp, lay, mode),
            dy_c,
            x_c,
            state.mean,
            state.scale,
            k_beta,
            k_gamma,
            state.coeff,
            corr,
            marker,
        )
        return dx, d_gamma, d_beta

    @staticmethod
    def _marker(shape: torch.Size, amax: Tensor, amin: Tensor) -> Tensor:
        """int8 (N, C, S): 1 at each chunk's arg-max, 2 at its arg-min, where they differ."""
        n_, ch, s_ = shape
        chan = torch.arange(ch, device=amax.device).view(ch, 1)
        distinct = amax != amin

        def flat(i: Tensor) -> Tensor:
            return (i // s_) * (ch * s_) + chan * s_ + i % s_

        marker = torch.zeros(n_ * ch * s_, dtype=torch.int8, device=amax.device)
        marker[flat(amax)[distinct]] = 1
        marker[flat(amin)[distinct]] = 2
        return marker.view(n_, ch, s_)


_engines: dict[LightNormConfig, _Engine] = {}


def _engine(cfg: LightNormConfig) -> _Engine:
    eng = _engines.get(cfg)
    if eng is None:
        eng = _engines.setdefault(cfg, _Engine(cfg))
    return eng


def _as_config(config: LightNormConfig | str) -> LightNormConfig:
    if isinstance(config, LightNormConfig):
        return config
    if isinstance(config, str):
        return LightNormConfig.from_preset(config)  # ValueError naming an unknown preset
    raise ValueError(f"config must be a LightNormConfig or a preset name, got {config!r}")


# --------------------------------------------------------------------------------------------
# Autograd
# --------------------------------------------------------------------------------------------


class _LightNormFunction(torch.autograd.Function):
    """y = LightNorm(x; gamma, beta). Forward: spec section 6 (batch statistics) or section 8
    (running statistics); backward: spec section 7 (never autograd through the quantizers).
    Extra outputs (non-differentiable): mu and v_b for the running statistics."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        eng: _Engine,
        eps: float,
        backend: str,
        running: tuple[Tensor, Tensor] | None,
        keep: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        shape, dtype = x.shape, x.dtype
        xs = x.detach().contiguous().reshape(shape[0], shape[1], -1)
        chans = shape[1]
        ones = torch.ones(chans, dtype=_F64, device=x.device)
        gamma = ones if weight is None else weight.detach()
        beta = torch.zeros_like(ones) if bias is None else bias.detach()
        if running is None:
            with _NativePrims(backend == "native"):
                out = eng.forward_train(xs, gamma, beta, eps, backend)
            x_c, state, y = out.x_c, out.state, out.y
            stats = (state.mean, out.batch_var)
        else:
            with _NativePrims(backend == "native"):
                y, x_in, state = eng.forward_infer(
                    xs, gamma, beta, *running, eps, backend, keep_input=keep
                )
            x_c = xs if x_in is None else x_in
            stats = (state.mean, state.mean)
        ctx.eng, ctx.state, ctx.backend = eng, state, backend
        ctx.meta = (shape, dtype)
        ctx.param_dtype = (
            weight.dtype if weight is not None else bias.dtype if bias is not None else dtype
        )
        ctx.save_for_backward(x_c)
        ctx.mark_non_differentiable(*stats)
        y = y.to(dtype).reshape(shape)
        if (
            x.dim() == 4
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            y = y.contiguous(memory_format=torch.channels_last)  # as nn.BatchNorm2d
        return y, stats[0], stats[1]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, *_: Any) -> tuple[Any, ...]:
        (x_c,) = ctx.saved_tensors
        shape, dtype = ctx.meta
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dys = dy.reshape(x_c.shape)
        with _NativePrims(ctx.backend == "native"):
            dx, d_gamma, d_beta = ctx.eng.backward(dys, x_c, ctx.state, ctx.backend, need_dx=need_x)
        gx = dx.to(dtype).reshape(shape) if dx is not None else None
        gw = d_gamma.to(ctx.param_dtype) if need_w else None
        gb = d_beta.to(ctx.param_dtype) if need_b else None
        return gx, gw, gb, None, None, None, None, None


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


class _LightNorm(_NormBase):
    """Common base of LightNorm1d / LightNorm2d (nn.BatchNorm's parameters, buffers and
    state_dict)."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
        config: LightNormConfig | str = "lightnorm",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.config = _as_config(config)
        _resolve_backend(backend)  # validate now
        self.backend = backend

    def extra_repr(self) -> str:
        name = next((k for k, v in _presets().items() if v == self.config), None)
        cfg = repr(name) if name is not None else repr(self.config)
        return f"{super().extra_repr()}, config={cfg}"

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not input.is_floating_point():
            raise ValueError(f"input must be a floating-point tensor, got dtype {input.dtype}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        for name in ("weight", "bias"):
            p = getattr(self, name)
            if p is not None and not bool(torch.isfinite(p).all()):
                raise ValueError(f"{name} (gamma/beta) must be finite")
        eng = _engine(self.config)
        backend = _resolve_backend(self.backend, input.numel())
        running = None
        if not use_batch:
            assert self.running_mean is not None and self.running_var is not None
            rm, rv = self.running_mean.detach(), self.running_var.detach()
            if not bool(torch.isfinite(rm).all() & torch.isfinite(rv).all()):
                raise ValueError("running_mean and running_var must be finite")
            if bool((rv < 0).any()):
                raise ValueError("running_var must be >= 0")
            running = (rm, rv)
        params = [p for p in (self.weight, self.bias) if p is not None]
        keep = torch.is_grad_enabled() and (
            input.requires_grad or any(p.requires_grad for p in params)
        )
        y, mean, batch_var = _LightNormFunction.apply(
            input, self.weight, self.bias, eng, self.eps, backend, running, keep
        )
        if use_batch and self.training and self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad(), _NativePrims(backend == "native"):
                eng.update_running(
                    self.running_mean, self.running_var, mean, batch_var, factor, backend
                )
        return y


class LightNorm1d(_LightNorm):
    """LightNorm over a 2D (N, C) or 3D (N, C, L) input: drop-in for nn.BatchNorm1d.

    Args (as nn.BatchNorm1d): num_features, eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True, track_running_stats=True, device=None, dtype=None; keyword-only: bias=True (as
    torch), config (a LightNormConfig or a preset name, default "lightnorm"), backend ("auto",
    "native", "compile" or "eager"). Numerics: docs/spec.md (n = N * L values per channel).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class LightNorm2d(_LightNorm):
    """LightNorm over a 4D (N, C, H, W) input: drop-in for nn.BatchNorm2d.

    Args (as nn.BatchNorm2d): num_features, eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True, track_running_stats=True, device=None, dtype=None; keyword-only: bias=True (as
    torch), config (a LightNormConfig or a preset name, default "lightnorm"), backend ("auto",
    "native", "compile" or "eager"). Numerics: docs/spec.md (n = N * H * W values per channel).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


def _presets() -> dict[str, LightNormConfig]:
    from lightnorm.config import PRESETS

    return PRESETS


_PAIRS: tuple[tuple[type[nn.Module], type[_LightNorm]], ...] = (
    (nn.BatchNorm1d, LightNorm1d),
    (nn.BatchNorm2d, LightNorm2d),
)


def _swap(
    model: nn.Module,
    pick: Callable[[str, nn.Module], type[nn.Module] | None],
    build: Callable[[nn.Module, type[nn.Module]], nn.Module],
) -> nn.Module:
    found = [(name, mod, pick(name, mod)) for name, mod in model.named_modules()]
    root = None
    for name, mod, target in found:
        if target is None:
            continue
        new = build(mod, target)
        new.train(mod.training)
        if name == "":
            root = new
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
    return model if root is None else root


def _move_state(src: nn.Module, dst: nn.Module) -> None:
    """dst takes src's parameters and buffers: the same tensor objects (no copy), so optimizers
    and references created before the swap stay valid."""
    for name in ("weight", "bias"):
        setattr(dst, name, getattr(src, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        dst.register_buffer(name, getattr(src, name))


def convert_batchnorm(
    model: nn.Module,
    config: LightNormConfig | str = "lightnorm",
    module_filter: Callable[[str, nn.Module], bool] | None = None,
    *,
    backend: str = "auto",
) -> nn.Module:
    """Replace every nn.BatchNorm1d / nn.BatchNorm2d of ``model`` by LightNorm1d / LightNorm2d.

    Only modules whose type is exactly nn.BatchNorm1d/2d are converted (subclasses such as
    fused norm+activation layers add behaviour LightNorm would drop); ``module_filter(name,
    module) -> bool`` further selects (name as in ``model.named_modules()``). The new modules
    take the old modules' parameters and buffers (the same tensor objects), hyper-parameters and
    train/eval mode. The conversion is in place: ``model`` is modified and returned; if
    ``model`` itself is a BatchNorm, the new module is returned. torch is not patched.
    """
    cfg = _as_config(config)
    _resolve_backend(backend)
    table = dict(_PAIRS)

    def pick(name: str, mod: nn.Module) -> type[nn.Module] | None:
        target = table.get(type(mod))
        if target is None or (module_filter is not None and not module_filter(name, mod)):
            return None
        return target

    def build(mod: nn.Module, target: type[nn.Module]) -> nn.Module:
        assert isinstance(mod, nn.modules.batchnorm._BatchNorm)
        new = target(
            mod.num_features,
            mod.eps,
            mod.momentum,
            mod.affine,
            mod.track_running_stats,
            device="meta",
            config=cfg,
            backend=backend,
        )
        _move_state(mod, new)
        return new

    return _swap(model, pick, build)


def revert_batchnorm(
    model: nn.Module, module_filter: Callable[[str, nn.Module], bool] | None = None
) -> nn.Module:
    """Replace every LightNorm1d / LightNorm2d of ``model`` by a plain nn.BatchNorm1d / 2d with
    the same parameters and buffers (the same tensor objects) and hyper-parameters; in place,
    like :func:`convert_batchnorm` (returns ``model``, or the new module if ``model`` is one)."""
    table = {light: bn for bn, light in _PAIRS}

    def pick(name: str, mod: nn.Module) -> type[nn.Module] | None:
        target = table.get(type(mod))  # type: ignore[arg-type]
        if target is None or (module_filter is not None and not module_filter(name, mod)):
            return None
        return target

    def build(mod: nn.Module, target: type[nn.Module]) -> nn.Module:
        assert isinstance(mod, _LightNorm)
        new = target(
            mod.num_features,
            mod.eps,
            mod.momentum,
            mod.affine,
            mod.track_running_stats,
            device="meta",
        )
        _move_state(mod, new)
        return new

    return _swap(model, pick, build)


# --------------------------------------------------------------------------------------------
# Tensor-level helpers (the same element functions as the module)
# --------------------------------------------------------------------------------------------


def quantize(
    x: Tensor,
    fmt: FloatFormat | str,
    rounding: Rounding | str = "rne",
    overflow: Overflow | str = "inf",
) -> Tensor:
    """lightnorm.formats.quantize for torch tensors: round every element of x once to fmt.

    Returns a tensor of x's dtype (float32 or float64) holding values of fmt.
    """
    ff = FloatFormat.from_name(fmt) if isinstance(fmt, str) else fmt
    f = _Fmt.of(ff, as_rounding(rounding), as_overflow(overflow))
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    return _quant(x.to(_F64), f).to(x.dtype)


def bfp_quantize(
    x: Tensor, fmt: BFPFormat, axis: int = 1, rounding: Rounding | str = "rne"
) -> Tensor:
    """lightnorm.bfp.bfp_quantize for torch tensors: store x to BFP (groups along ``axis``)
    and load it back; float64 result of x's shape."""
    b = _Bfp.of(fmt, as_rounding(rounding))
    assert b is not None
    xm = x.to(_F64).movedim(axis, 1)
    shp = xm.shape
    x3 = xm.reshape(shp[0], shp[1], -1)
    lay = _Layout(b.g)
    out = _ungroup(_bfp_grouped(_group(x3, lay), b, None), shp[1]).reshape(shp)
    return out.movedim(1, axis)
