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
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from lightnorm.formats import (
    FloatFormat,
    Overflow,
    Rounding,
    _exponent_of,
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
    # Only elements with err != 0 can need the nudge: test the breakpoint condition on those.
    hit = np.flatnonzero(err)
    if hit.size:
        s_hit = s.reshape(-1)[hit]
        nudge = _is_breakpoint(s_hit, fmt)
        if np.any(nudge):
            s = np.array(s, dtype=np.float64)  # a copy: the caller's s stays untouched
            idx = hit[nudge]
            toward = np.where(err.reshape(-1)[idx] > 0, np.inf, -np.inf)
            s.reshape(-1)[idx] = np.nextafter(s_hit[nudge], toward)
    return quantize(s, fmt, rnd, ovf)


def _finite_overflow(r: F64, a: F64, b: F64) -> F64:
    """r with float64 overflows of finite operands replaced by +-DBL_MAX.

    The exact result is then finite and beyond every format's max_normal, so it must round
    like any such value (to +-max_normal under RTZ or saturate), not like an Inf input.
    """
    over = np.isinf(r) & np.isfinite(a) & np.isfinite(b)
    if np.any(over):
        r = np.where(over, np.copysign(np.finfo(np.float64).max, r), r)
    return r


def _two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    """Knuth's TwoSum: s = fl(a + b) and the exact error a + b - s (0 where s is not finite)."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    s = np.add(a, b, out=np.empty(shape))  # out= keeps 0-d results arrays
    with np.errstate(invalid="ignore"):
        bb = np.subtract(s, a, out=np.empty(shape))
        err = np.subtract(s, bb, out=np.empty(shape))
        np.subtract(a, err, out=err)  # a - (s - bb)
        np.subtract(b, bb, out=bb)  # b - bb
        np.add(err, bb, out=err)
    finite = np.isfinite(s)
    if not finite.all():
        err[~finite] = 0.0
    return s, err


def _sum_is_exact(fa: FloatFormat, fb: FloatFormat) -> bool:
    """True when a + b is exact in float64 for every pair of finite values a of fa, b of fb.

    Both are integer multiples of 2^L, L = min(emin - M) of the two formats, and
    |a + b| < 2^(emax_a + 1) + 2^(emax_b + 1) <= 2^(max emax + 2); so a + b = k * 2^L with
    |k| < 2^(max emax + 2 - L). When that exponent is <= 53, k fits the float64 significand
    (e.g. fp10_e5m4 + fp10_e5m4: 17 + 18 = 35 bits; every E <= 5 format with M <= 21).
    """
    lsb = min(fa.emin - fa.man_bits, fb.emin - fb.man_bits)
    return max(fa.emax, fb.emax) + 2 - lsb <= 53


def _add_values(
    a: npt.NDArray[Any],
    b: npt.NDArray[Any],
    fmt: FloatFormat,
    rnd: Rounding,
    ovf: Overflow,
    fa: FloatFormat,
    fb: FloatFormat,
) -> npt.NDArray[Any]:
    """:func:`add` of arrays holding values of the formats ``fa`` and ``fb`` (float32/64).

    Fast path: when :func:`_sum_is_exact` holds, the float64 sum is the exact sum (TwoSum's
    error would be 0, so :func:`add` would round s itself): one quantize. It also gives the
    IEEE signs of zero sums (+0, except (-0) + (-0) = -0) and the same Inf/NaN results.
    """
    if _sum_is_exact(fa, fb):
        s = np.add(a, b, dtype=np.float64)
        return quantize(s, fmt, rnd, ovf)
    return add(a, b, fmt, rnd, ovf)


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
    a, b = _f64(a), _f64(b)
    s, err = _two_sum(a, b)
    return _round_with_error(_finite_overflow(s, a, b), err, fmt, rnd, ovf)


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
    return _round_with_error(_finite_overflow(p, a, b), err, fmt, rnd, ovf)


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


def _product_fits_float32(fa: FloatFormat, fb: FloatFormat) -> bool:
    """True when a * b is exact in float32 for every pair of finite values a of fa, b of fb.

    a = i * 2^la, b = j * 2^lb with integer significands i < 2^(Ma+1), j < 2^(Mb+1) and
    la >= emin_a - Ma: a * b = (i * j) * 2^(la + lb) with i * j < 2^24 when Ma + Mb + 2 <= 24,
    its weight >= 2^-149 (float32's subnormal step) and its magnitude below 2^128 (e.g.
    fp10_e5m4 * fp10_e5m4: 10 bits, 2^-36 ... 2^32).
    """
    return (
        fa.man_bits + fb.man_bits + 2 <= 24
        and (fa.emin - fa.man_bits) + (fb.emin - fb.man_bits) >= -149
        and fa.emax + fb.emax + 2 <= 128
    )


def _mul_values(
    a: npt.NDArray[Any],
    b: npt.NDArray[Any],
    fmt: FloatFormat,
    rnd: Rounding,
    ovf: Overflow,
    fa: FloatFormat,
    fb: FloatFormat,
) -> npt.NDArray[Any]:
    """:func:`mul_exact_inputs` of arrays holding values of ``fa`` and ``fb`` (every format
    has <= 24 significant bits, so the float64 product is exact); the product is formed in
    float32 when :func:`_product_fits_float32` says it is exact there too. The result holds
    values of ``fmt`` (float32 or float64: the same values; quantize keeps the dtype).
    """
    if _product_fits_float32(fa, fb):
        return quantize(np.multiply(a, b, dtype=np.float32), fmt, rnd, ovf)
    return quantize(np.multiply(a, b, dtype=np.float64), fmt, rnd, ovf)


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
    e_res = max(e, fmt.emin) - fmt.man_bits
    value = math.ldexp(q, e_res) if e_res + q.bit_length() < 1000 else math.inf
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
        if t == 0.0:  # an infinite result: saturates like any result beyond max_normal
            return math.copysign(math.inf if ovf is Overflow.INF else fmt.max_normal, t)
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
            return math.inf if ovf is Overflow.INF else fmt.max_normal
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
        if np.any(self.special != 0.0):  # NaN / +-Inf rows, rounded like any result
            with np.errstate(invalid="ignore"):
                out = np.where(
                    self.special != 0.0, quantize(self.special * scale, fmt, rnd, ovf), out
                )
        return out.reshape(self.shape)


def exact_sum(x: Any, axis: int = -1, lsb_exp: int | None = None) -> ExactSum:
    """The exact sums of x along ``axis`` (order independent, as the hardware accumulators).

    Each element is an integer multiple of 2**L (L the lowest bit weight present, or
    ``lsb_exp`` when the caller knows it, e.g. emin - M for values of a format), so the sum
    is an exact integer multiple of 2**L (kept as int64 when every element is below 2**40
    units, else as Python ints; see :func:`_integer_row_sums` for how it is formed).
    NaN anywhere, or +Inf with -Inf, gives NaN; an exact zero sum is +0.
    """
    a = np.moveaxis(_f64(x), axis, -1)
    shape = a.shape[:-1]
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[-1] > (1 << 22):
        raise ValueError(f"x: at most 2**22 elements per sum, got {rows.shape[-1]}")
    rows, special = _split_special_rows(rows)
    nz = rows != 0.0
    if lsb_exp is None:
        lsb_exp = int(np.min(_exponent_of(np.abs(rows[nz])))) - 52 if np.any(nz) else 0
    top = int(np.max(_exponent_of(np.abs(rows[nz])))) if np.any(nz) else 0
    if lsb_exp < -1000 or top - lsb_exp > 1000:
        # The span exceeds float64's exponent range (e.g. 1e300 with 5e-324): exact
        # Python integers, element by element (slow, only for such rows).
        one = Fraction(2) ** -lsb_exp
        totals = []
        for row in rows:
            t = sum((Fraction(float(v)) * one for v in row), Fraction(0))
            if t.denominator != 1:
                raise ValueError(f"x: element not a multiple of 2**{lsb_exp} (lsb_exp)")
            totals.append(int(t))
        return ExactSum(totals, lsb_exp, special, shape)
    y = rows * 2.0**-lsb_exp
    if not np.all(y == np.trunc(y)):
        raise ValueError(f"x: element not a multiple of 2**{lsb_exp} (lsb_exp)")
    return ExactSum(_integer_row_sums(y), lsb_exp, special, shape)


def _split_special_rows(rows: F64) -> tuple[F64, F64]:
    """(rows with the non-finite rows zeroed, each row's special value: 0 or NaN/+-Inf).

    The float64 row sum is finite exactly when the row is (a NaN, or an Inf, reaches it),
    unless finite elements overflow it; only then is the per-element test needed.
    """
    special = np.zeros(rows.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):
        if rows.size == 0 or np.all(np.isfinite(rows.sum(axis=-1))):
            return rows, special
    finite_rows = np.all(np.isfinite(rows), axis=-1)
    if np.all(finite_rows):
        return rows, special
    with np.errstate(invalid="ignore"):
        special = np.where(finite_rows, 0.0, np.sum(np.where(np.isfinite(rows), 0, rows), axis=-1))
    return np.where(finite_rows[:, None], rows, 0.0), special


def _integer_row_sums(y: F64) -> npt.NDArray[np.int64] | list[int]:
    """Exact sums of the rows of ``y`` (finite float64 integers): int64 when |y| < 2**40
    everywhere (rows of <= 2**22 elements then stay below 2**62), else Python ints.

    A float64 sum of integers is exact in any order while every partial sum stays within
    2**53, i.e. when n * max|y| <= 2**53 (one numpy sum). Otherwise the rows are split in
    levels: q = rint(r / 2**T) with T chosen so that n * max|q| <= 2**53 (its sum is exact),
    r -= q * 2**T (exact: the bits of r below 2**T, at most log2(n) + 1 of them), until r = 0;
    the total is the sum over levels of sum(q) * 2**T, in Python ints.
    """
    rows, n = y.shape
    small = True
    if y.size:
        ymax = max(float(y.max()), -float(y.min()))
        small = ymax < float(1 << _WINDOW)
        if int(ymax) * n <= 1 << 53:
            sums = y.sum(axis=-1)
            return sums.astype(np.int64) if small else [int(v) for v in sums.tolist()]
    totals = [0] * rows
    if y.size:
        log_n = max(n - 1, 1).bit_length()  # n <= 2**log_n
        r = y.copy()
        while ymax != 0.0:
            top = math.frexp(ymax)[1]  # max|r| < 2**top
            t = max(top + log_n - 53, 0)
            q = np.rint(r * 2.0**-t) if t else r.copy()
            for i, v in enumerate(q.sum(axis=-1).tolist()):
                totals[i] += int(v) << t
            r -= q * 2.0**t
            ymax = max(float(r.max()), -float(r.min()))
    return np.array(totals, dtype=np.int64) if small else totals


_BLOCK = 1 << 17  # elements per block of the blocked loops (temporaries stay in cache)


def _blocks(
    shape3: tuple[int, int, int], target: int = _BLOCK
) -> Iterator[tuple[slice, slice, slice]]:
    """Index blocks (a, :, b) of about ``target`` elements covering an (A, C, B) array.

    Blocks keep every channel (the BFP groups lie along C), split A, and split B too when
    one A-slice alone is larger than ``target``.
    """
    outer, channels, inner = shape3
    per_outer = channels * inner
    if per_outer > target and inner > 1:
        step = max(1, target // max(channels, 1))
        for i in range(outer):
            for j in range(0, inner, step):
                yield slice(i, i + 1), slice(None), slice(j, min(j + step, inner))
    else:
        step = max(1, target // max(per_outer, 1))
        for i in range(0, outer, step):
            yield slice(i, min(i + step, outer)), slice(None), slice(None)


def _threads() -> int:
    """Threads of the block loops: $LIGHTNORM_THREADS if set (1: none), else min(4, CPUs)."""
    env = os.environ.get("LIGHTNORM_THREADS", "")
    try:
        return max(1, int(env)) if env else min(4, os.cpu_count() or 1)
    except ValueError:
        raise ValueError(f"LIGHTNORM_THREADS must be an integer, got {env!r}") from None


_pool_lock = threading.Lock()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (pid, workers) -> pool


def _block_pool() -> ThreadPoolExecutor | None:
    """The process's block-loop thread pool (None for one thread); a forked child makes its own."""
    workers = _threads()
    if workers <= 1:
        return None
    key = (os.getpid(), workers)
    with _pool_lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(workers, "lightnorm-block")
        return _pools[key]


def _each_block(
    shape3: tuple[int, int, int], body: Callable[[tuple[slice, slice, slice]], None]
) -> None:
    """body(blk) for every block of :func:`_blocks`, on the pool's threads when there are
    several blocks (numpy releases the GIL in its loops). The bodies write disjoint blocks,
    so the result does not depend on the order or the number of threads."""
    blocks = list(_blocks(shape3))
    pool = _block_pool() if len(blocks) > 1 else None
    if pool is None:
        for blk in blocks:
            body(blk)
        return
    for future in [pool.submit(body, blk) for blk in blocks]:
        future.result()  # re-raises an exception of body


def _exact_channel_sums(x3: npt.NDArray[Any], lsb_exp: int) -> ExactSum:
    """:func:`exact_sum` of the channels of x3 = (A, C, B) over axes 0 and 2 (stream order
    does not matter to an exact sum), for elements known to be multiples of 2**lsb_exp.

    Internal fast path of the reference model: the elements are values of a format (every
    value of FP(E, M) is a multiple of 2**(emin - M), and below 2**128), so the check of
    :func:`exact_sum` is skipped. Equal to ``exact_sum(stream, axis=-1, lsb_exp=lsb_exp)``
    of the (C, A*B) stream: the same integers (int64 when every element is below 2**40
    units, else Python ints) and the same special values.

    Method: levels as in :func:`_integer_row_sums`, on x itself: with |x| < 2**top and
    n <= 2**log_n per channel, q = rint(x / 2**t) for t = max(top + log_n - 53, lsb_exp) has
    n * |q| <= 2**53, so its float64 channel sums are exact in any order; the remainder
    x - q * 2**t (exact, |.| <= 2**(t-1)) goes to the next level. Values of a narrow format
    need one level with t = lsb_exp, where q = x / 2**t exactly: a plain float64 sum.
    """
    channels = x3.shape[1]
    count = x3.size // channels if channels else 0
    special = np.zeros(channels)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = x3.sum(axis=(0, 2), dtype=np.float64)  # finite unless the channel is not
    bad = ~np.isfinite(sums)
    if np.any(bad):
        rows = np.moveaxis(x3[:, bad, :], 1, 0).reshape(int(bad.sum()), -1).astype(np.float64)
        with np.errstate(invalid="ignore"):
            special[bad] = np.sum(np.where(np.isfinite(rows), 0, rows), axis=-1)
        x3 = np.where(bad[None, :, None], np.zeros((), x3.dtype), x3)
        sums[bad] = 0.0
    amax = max(float(x3.max()), -float(x3.min())) if x3.size else 0.0
    small = amax * 2.0**-lsb_exp < float(1 << _WINDOW)
    log_n = max(count - 1, 1).bit_length()  # count <= 2**log_n
    top = math.frexp(amax)[1]  # amax < 2**top
    totals = [0] * channels
    if amax == 0.0 or top + log_n - 53 <= lsb_exp:
        # One level, t = lsb_exp: the plain float64 sums are exact.
        for c, v in enumerate(sums.tolist()):
            totals[c] = int(v * 2.0**-lsb_exp)
    else:
        shape3 = x3.shape
        level_sums: list[tuple[int, F64]] = []
        t = top + log_n - 53
        while True:
            t = max(t, lsb_exp)
            level_sums.append((t, np.zeros(channels)))
            if t == lsb_exp:
                break
            t = t - 1 + log_n - 53  # the remainders are below 2**(t - 1) in magnitude
        for blk in _blocks(shape3):
            r = x3[blk].astype(np.float64)
            for t, acc in level_sums:
                q = np.rint(np.multiply(r, 2.0**-t))
                np.add(acc, q.sum(axis=(0, 2)), out=acc)
                r -= q * 2.0**t
                if not r.any():
                    break
        for t, acc in level_sums:
            for c, v in enumerate(acc.tolist()):
                totals[c] += int(v) << (t - lsb_exp)
    out: npt.NDArray[np.int64] | list[int] = np.array(totals, dtype=np.int64) if small else totals
    return ExactSum(out, lsb_exp, special, (channels,))


def sum_round(
    x: Any,
    fmt: FloatFormat,
    axis: int = -1,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
    lsb_exp: int | None = None,
    scale: float = 1.0,
) -> F64:
    """round(scale * exact sum of x along ``axis``) to ``fmt``.

    :func:`exact_sum` then one rounding.
    """
    return exact_sum(x, axis, lsb_exp).round(fmt, rounding, overflow, scale)
