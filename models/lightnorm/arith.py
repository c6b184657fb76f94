# SPDX-License-Identifier: Apache-2.0
"""Correctly rounded arithmetic on the formats of :mod:`lightnorm.formats`.

Every operator here returns the exact real result rounded ONCE to the target format with
:func:`lightnorm.formats.quantize`'s rules (docs/spec.md, section 3). These are the
operators of the hardware datapath: each RTL operator computes its raw result with enough
guard bits and a sticky bit and hands it to the one rounding module ``lightnorm_round``.

How exactness is obtained in float64:
- add/sub/mul: the float64 result s and its exact error e (TwoSum / Dekker TwoProduct) are
  formed; when e != 0 and s is a rounding breakpoint of the target (a representable value
  or a midpoint), s is nudged one float64 ulp toward the exact result before rounding.
  No other float64 value can lie between the exact result and s, so this is exact.
- recip/rsqrt: integer division / integer square root on the significand (Python ints).
- sum_round: exact integer accumulation of the inputs as fixed-point numbers, then one
  rounding (the Kulisch-style accumulator of the hardware).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lightnorm.formats import (
    FloatFormat,
    Overflow,
    Rounding,
    _exponent_of,
    _pow2,
    as_overflow,
    as_rounding,
    quantize,
)

__all__ = [
    "ExactSum",
    "add",
    "exact_sum",
    "mul",
    "mul_exact_inputs",
    "recip",
    "round_scaled_int",
    "rsqrt",
    "sub",
    "sum_round",
]

F64 = npt.NDArray[np.float64]


def _f64(x: Any) -> F64:
    return np.asarray(x, dtype=np.float64)


def _is_breakpoint(s: F64, fmt: FloatFormat) -> npt.NDArray[np.bool_]:
    """True where s is a value of ``fmt`` or a midpoint between two (one more fraction bit)."""
    _, k = np.frexp(s.reshape(-1))
    k = k.reshape(s.shape)
    np.subtract(k, 1, out=k)
    np.maximum(k, fmt.emin, out=k)
    np.subtract(k, fmt.man_bits + 1, out=k)
    scaled = np.ldexp(s, -k)
    return np.isfinite(s) & (s != 0.0) & (scaled == np.trunc(scaled))


def _round_with_error(s: F64, err: F64, fmt: FloatFormat, rnd: Rounding, ovf: Overflow) -> F64:
    nudge = (err != 0.0) & _is_breakpoint(s, fmt)
    if np.any(nudge):
        s = np.where(nudge, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return quantize(s, fmt, rnd, ovf)


def _two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    """Knuth's TwoSum: s = fl(a + b) and the exact error a + b - s."""
    s = a + b
    with np.errstate(invalid="ignore"):
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
    return s, np.where(np.isfinite(s), err, 0.0)


def add(
    a: Any,
    b: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """round(a + b) to ``fmt``: one rounding of the exact sum (IEEE addition).

    An exact zero sum is +0 except (-0) + (-0) = -0 (IEEE 754, both rounding modes here).
    """
    rnd, ovf = as_rounding(rounding), as_overflow(overflow)
    s, err = _two_sum(_f64(a), _f64(b))
    return _round_with_error(s, err, fmt, rnd, ovf)


def sub(
    a: Any,
    b: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """round(a - b) to ``fmt``: :func:`add` of a and -b."""
    return add(a, -_f64(b), fmt, rounding, overflow)


_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitter for float64


def _split(a: F64) -> tuple[F64, F64]:
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def mul(
    a: Any,
    b: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """round(a * b) to ``fmt``: one rounding of the exact product (IEEE multiplication)."""
    rnd, ovf = as_rounding(rounding), as_overflow(overflow)
    a, b = np.broadcast_arrays(_f64(a), _f64(b))
    p = a * b
    with np.errstate(invalid="ignore", over="ignore"):
        ah, al = _split(a)
        bh, bl = _split(b)
        err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    err = np.where(np.isfinite(err) & np.isfinite(p), err, 0.0)
    return _round_with_error(p, err, fmt, rnd, ovf)


def mul_exact_inputs(
    a: Any,
    b: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """:func:`mul` for operands that are values of formats with <= 26 significant bits.

    Then a * b is exact in float64 and the rounding is a single :func:`quantize` (the fast
    path of the reference model; equal to :func:`mul` under that precondition).
    """
    return quantize(_f64(a) * _f64(b), fmt, rounding, overflow)


def round_scaled_int(
    n: int,
    exp2: int,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
    sticky: bool = False,
) -> float:
    """Round the exact value n * 2**exp2 (n a Python int of any size) to ``fmt``.

    ``sticky`` says that the true value is slightly larger in magnitude than n * 2**exp2
    (a nonzero remainder below the last bit of n); n must then carry at least two bits
    below the rounding position, which the callers guarantee.
    """
    rnd, ovf = as_rounding(rounding), as_overflow(overflow)
    if n == 0:
        return 0.0
    neg = n < 0
    mag = -n if neg else n
    e = mag.bit_length() - 1 + exp2
    shift = max(e, fmt.emin) - fmt.man_bits - exp2
    if shift <= 0:
        q = mag << -shift
        rem_nonzero = sticky
    else:
        q = mag >> shift
        rem = mag & ((1 << shift) - 1)
        if rnd is Rounding.RNE:
            half = 1 << (shift - 1)
            if rem > half or (rem == half and (sticky or q & 1)):
                q += 1
        rem_nonzero = rem != 0 or sticky
    del rem_nonzero  # the rounding above already used it
    value = math.ldexp(q, max(e, fmt.emin) - fmt.man_bits) if q.bit_length() < 1000 else math.inf
    if value > fmt.max_normal:
        if ovf is Overflow.SATURATE or rnd is Rounding.RTZ:
            value = fmt.max_normal
        else:
            value = math.inf
    return -value if neg else value


def _map_scalar(fn: Any, v: Any) -> F64:
    arr = _f64(v)
    out = np.fromiter((fn(float(t)) for t in arr.ravel()), dtype=np.float64, count=arr.size)
    return out.reshape(arr.shape)


def recip(
    v: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """round(1 / v) to ``fmt``, correctly rounded (integer long division with sticky bit).

    recip(+-0) = +-Inf, recip(+-Inf) = +-0, recip(NaN) = NaN. In hardware this is a table of
    the 2^M significand reciprocals with guard and sticky bits feeding ``lightnorm_round``.
    """
    rnd, ovf = as_rounding(rounding), as_overflow(overflow)
    guard = fmt.man_bits + 4

    def one(t: float) -> float:
        if math.isnan(t):
            return math.nan
        if t == 0.0:
            return math.copysign(math.inf, t)
        if math.isinf(t):
            return math.copysign(0.0, t)
        m, e = math.frexp(abs(t))  # |t| = m * 2**e, 0.5 <= m < 1
        mi = int(math.ldexp(m, 53))  # |t| = mi * 2**(e-53)
        k = mi.bit_length() + guard
        q, r = divmod(1 << k, mi)  # 1/|t| = (q + r/mi) * 2**(-k-e+53)
        res = round_scaled_int(q, -k - e + 53, fmt, rnd, ovf, sticky=r != 0)
        return -res if t < 0 else res

    return _map_scalar(one, v)


def rsqrt(
    v: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> F64:
    """round(1 / sqrt(v)) to ``fmt``, correctly rounded (integer square root with sticky).

    rsqrt(+-0) = +Inf, rsqrt(+Inf) = +0, rsqrt(v < 0) = NaN, rsqrt(NaN) = NaN.
    """
    rnd, ovf = as_rounding(rounding), as_overflow(overflow)
    guard = fmt.man_bits + 4

    def one(t: float) -> float:
        if math.isnan(t) or t < 0:
            return math.nan
        if t == 0.0:
            return math.inf
        if math.isinf(t):
            return 0.0
        m, e = math.frexp(t)
        mi = int(math.ldexp(m, 53))
        e -= 53  # t = mi * 2**e
        if e % 2:
            mi <<= 1
            e -= 1
        k = mi.bit_length() // 2 + guard + 1
        q = math.isqrt((1 << (2 * k)) // mi)  # floor(2**k / sqrt(mi))
        exact = q * q * mi == 1 << (2 * k)
        return round_scaled_int(q, -k - e // 2, fmt, rnd, ovf, sticky=not exact)

    return _map_scalar(one, v)


_WINDOW = 40  # bits per exact-accumulation window; rows of up to 2**22 elements stay < 2**62


@dataclass(frozen=True)
class ExactSum:
    """Exact per-row sums: the content of the hardware's wide fixed-point accumulators.

    Row r holds ``totals[r] * 2**lsb_exp`` exactly (``totals`` is an int64 array when every
    sum fits, else a list of Python ints); ``special`` holds NaN/+-Inf for rows with
    non-finite inputs (0 elsewhere).
    """

    totals: npt.NDArray[np.int64] | list[int]
    lsb_exp: int
    special: F64
    shape: tuple[int, ...]

    def round(
        self,
        fmt: FloatFormat,
        rounding: Rounding | str = Rounding.RNE,
        overflow: Overflow | str = Overflow.INF,
        scale: float = 1.0,
    ) -> F64:
        """round(scale * sum) to ``fmt``, once (scale: a finite float64 such as 1/n).

        The hardware multiplies its accumulator by the constant's significand and rounds.
        """
        rnd, ovf = as_rounding(rounding), as_overflow(overflow)
        if not math.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale!r}")
        frac, exp = math.frexp(scale)
        scale_int = int(math.ldexp(frac, 53))
        exp -= 53
        while scale_int and scale_int % 2 == 0:
            scale_int //= 2
            exp += 1  # scale == scale_int * 2**exp, scale_int odd
        if isinstance(self.totals, np.ndarray) and (
            scale_int == 0 or np.all(np.abs(self.totals) < (1 << 53) // abs(scale_int))
        ):
            exact = self.totals.astype(np.float64) * float(scale_int)
            out = quantize(exact * 2.0 ** (self.lsb_exp + exp), fmt, rnd, ovf)
        else:
            out = np.array(
                [
                    round_scaled_int(int(t) * scale_int, self.lsb_exp + exp, fmt, rnd, ovf)
                    for t in self.totals
                ],
                dtype=np.float64,
            )
        with np.errstate(invalid="ignore"):
            out = np.where(self.special != 0.0, self.special * scale, out)
        return out.reshape(self.shape)


def exact_sum(x: Any, axis: int = -1, lsb_exp: int | None = None) -> ExactSum:
    """The exact sums of x along ``axis`` (order independent, as the hardware accumulators).

    Each element is an integer multiple of 2**L (L the lowest bit weight present, or
    ``lsb_exp`` when the caller knows it, e.g. emin - M for values of a format); it is split
    into 40-bit windows which are summed in int64 and recombined exactly.
    NaN anywhere, or +Inf with -Inf, gives NaN; an exact zero sum is +0.
    """
    a = np.moveaxis(_f64(x), axis, -1)
    shape = a.shape[:-1]
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[-1] > (1 << 22):
        raise ValueError(f"x: at most 2**22 elements per sum, got {rows.shape[-1]}")
    finite_rows = np.all(np.isfinite(rows), axis=-1)
    special = np.zeros(rows.shape[0])
    if not np.all(finite_rows):
        with np.errstate(invalid="ignore"):
            special = np.where(finite_rows, 0.0, np.sum(np.where(np.isfinite(rows), 0, rows), axis=-1))
        rows = np.where(finite_rows[:, None], rows, 0.0)
    nz = rows != 0.0
    if lsb_exp is None:
        lsb_exp = int(np.min(_exponent_of(np.abs(rows[nz])))) - 52 if np.any(nz) else 0
    y = rows * 2.0**-lsb_exp
    if not np.all(y == np.trunc(y)):
        raise ValueError(f"x: element not a multiple of 2**{lsb_exp} (lsb_exp)")
    sign = np.sign(y)
    y = np.abs(y)
    window = float(1 << _WINDOW)
    parts: list[npt.NDArray[np.int64]] = []
    while not parts or np.any(y != 0.0):
        hi = np.floor(y / window)
        parts.append(np.sum((sign * (y - hi * window)).astype(np.int64), axis=-1))
        y = hi
    if len(parts) == 1:
        return ExactSum(parts[0], lsb_exp, special, shape)
    totals = [0] * rows.shape[0]
    for w, part in enumerate(parts):
        for r, v in enumerate(part.tolist()):
            totals[r] += v << (w * _WINDOW)
    return ExactSum(totals, lsb_exp, special, shape)


def sum_round(
    x: Any,
    fmt: FloatFormat,
    axis: int = -1,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
    lsb_exp: int | None = None,
    scale: float = 1.0,
) -> F64:
    """round(scale * exact sum of x along ``axis``) to ``fmt``: :func:`exact_sum` then one rounding."""
    return exact_sum(x, axis, lsb_exp).round(fmt, rounding, overflow, scale)
