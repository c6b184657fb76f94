"""Independent exact oracles for the lightnorm number-format layer.

Nothing here imports lightnorm.  Everything is derived from the IEEE-754-like
contract of a binary format with 1 sign bit, E exponent bits and M fraction bits:

    bias = 2**(E-1) - 1, emin = 1 - bias, emax = bias
    exponent field 0            -> (-1)^s * 0.f * 2**emin      (zero / subnormals)
    exponent field 1..2**E-2    -> (-1)^s * 1.f * 2**(field - bias)
    exponent field 2**E-1       -> Inf (f == 0) / NaN (f != 0)

Two oracles are provided and cross-checked against each other by the tests:

* ``round_fraction`` / ``round_rsqrt``: scalar, exact, Python-int arithmetic on a
  ``fractions.Fraction`` (or on the exact square root, via ``math.isqrt``).
* ``round_scaled``: vectorised numpy integer arithmetic on values given exactly as
  ``(-1)^sign * n * 2**k`` with integer ``0 <= n < 2**62``.  ``oracle_quantize`` uses
  it to round arbitrary float64 arrays exactly.

Rounding: "rne" (nearest, ties to even significand) or "rtz" (toward zero).
Overflow: "inf" (IEEE: rne -> +-Inf once the value rounds past max_normal with an
unbounded exponent, rtz -> +-max_normal) or "saturate" (+-max_normal).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = [
    "fmt_params",
    "max_normal",
    "min_normal",
    "min_subnormal",
    "round_fraction",
    "round_rsqrt",
    "round_scaled",
    "oracle_quantize",
    "float_to_scaled",
    "decode_bits",
    "all_patterns",
    "finite_values",
    "positive_finite_values",
    "n_positive_finite",
    "pattern_sample",
    "sampled_values",
    "midpoints",
    "neighbours",
    "bits_of",
    "assert_same_bits",
]


# --------------------------------------------------------------------------------------
# format parameters (first principles)
# --------------------------------------------------------------------------------------
def fmt_params(E: int, M: int):
    bias = 2 ** (E - 1) - 1
    return bias, 1 - bias, bias  # bias, emin, emax


def max_normal(E: int, M: int) -> Fraction:
    _, _, emax = fmt_params(E, M)
    return Fraction(2 ** (M + 1) - 1) * Fraction(2) ** (emax - M)


def min_normal(E: int, M: int) -> Fraction:
    _, emin, _ = fmt_params(E, M)
    return Fraction(2) ** emin


def min_subnormal(E: int, M: int) -> Fraction:
    _, emin, _ = fmt_params(E, M)
    return Fraction(2) ** (emin - M)


def _check_modes(rounding, overflow):
    if rounding not in ("rne", "rtz"):
        raise ValueError(f"oracle: bad rounding {rounding!r}")
    if overflow not in ("inf", "saturate"):
        raise ValueError(f"oracle: bad overflow {overflow!r}")


# --------------------------------------------------------------------------------------
# scalar exact oracle
# --------------------------------------------------------------------------------------
def _finish(
    neg: bool, k: int, q: int, e: int, E: int, M: int, rounding: str, overflow: str
) -> float:
    """k * 2**q is the rounded magnitude (e = the binade exponent used, >= emin)."""
    _, _, emax = fmt_params(E, M)
    if e > emax or k > 2 ** (M + 1) - 1 and e == emax:
        # the rounded value (unbounded exponent) exceeds max_normal
        if overflow == "inf" and rounding == "rne":
            mag = math.inf
        else:
            mag = math.ldexp(2 ** (M + 1) - 1, emax - M)
    else:
        mag = math.ldexp(k, q)  # exact: k < 2**(M+2), q within float64 range
    return -mag if neg else mag


def round_fraction(q, E: int, M: int, rounding: str = "rne", overflow: str = "inf") -> float:
    """Exact rational ``q`` rounded once to the format (E, M); returns a Python float.

    A negative ``q`` that rounds to zero gives -0.0.  ``q == 0`` gives +0.0 (a Fraction
    carries no sign of zero: the caller handles -0 inputs)."""
    _check_modes(rounding, overflow)
    q = Fraction(q)
    n, d = q.numerator, q.denominator  # d > 0
    if n == 0:
        return 0.0
    neg = n < 0
    n = -n if neg else n
    _, emin, _ = fmt_params(E, M)
    # e = floor(log2(n/d))
    e = n.bit_length() - d.bit_length()
    # n/d >= 2**e  <=>  n * 2**-e >= d
    if (n << -e if e < 0 else n) < (d << e if e > 0 else d):
        e -= 1
    e = max(e, emin)
    qe = e - M  # exponent of one unit in the last place
    if qe >= 0:
        num, den = n, d << qe
    else:
        num, den = n << -qe, d
    k, r = divmod(num, den)
    if rounding == "rne":
        c = 2 * r - den  # sign of (fraction part - 1/2)
        if c > 0 or (c == 0 and k & 1):
            k += 1
    return _finish(neg, k, qe, e, E, M, rounding, overflow)


def round_rsqrt(v, E: int, M: int, rounding: str = "rne", overflow: str = "inf") -> float:
    """1/sqrt(v) for rational v > 0, rounded once to (E, M), exactly (integer sqrt)."""
    _check_modes(rounding, overflow)
    v = Fraction(v)
    if v <= 0:
        raise ValueError("round_rsqrt needs v > 0")
    a, b = v.numerator, v.denominator  # y = 1/sqrt(v) = sqrt(b/a)
    _, emin, _ = fmt_params(E, M)

    def ge_pow2(e):  # y >= 2**e  <=>  b/a >= 4**e  <=>  b >= a*4**e
        return (b << -2 * e if e < 0 else b) >= (a << 2 * e if e > 0 else a)

    # estimate floor(log2 y) then fix it up
    e = (b.bit_length() - a.bit_length()) // 2
    while not ge_pow2(e):
        e -= 1
    while ge_pow2(e + 1):
        e += 1
    e = max(e, emin)
    qe = e - M
    # y / 2**qe = sqrt(b * 4**-qe / a) = sqrt(num/den)
    if qe >= 0:
        num, den = b, a << (2 * qe)
    else:
        num, den = b << (-2 * qe), a
    k = math.isqrt(num // den)  # floor(sqrt(num/den)) == isqrt(floor(num/den))
    if rounding == "rne":
        # compare sqrt(num/den) with k + 1/2:  num/den vs (2k+1)^2/4
        c = 4 * num - (2 * k + 1) ** 2 * den
        if c > 0 or (c == 0 and k & 1):
            k += 1
    return _finish(False, k, qe, e, E, M, rounding, overflow)


# --------------------------------------------------------------------------------------
# vectorised exact oracle (numpy integers)
# --------------------------------------------------------------------------------------
def _bit_length(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.int64)
    bl = np.zeros(n.shape, np.int64)
    t = n.copy()
    for s in (32, 16, 8, 4, 2, 1):
        m = t >= (np.int64(1) << s)
        bl += np.where(m, s, 0)
        t = np.where(m, t >> s, t)
    bl += (t > 0).astype(np.int64)
    return bl


def round_scaled(
    sign, n, k, E: int, M: int, rounding: str = "rne", overflow: str = "inf"
) -> np.ndarray:
    """Round (-1)**sign * n * 2**k (elementwise, exact integers, 0 <= n < 2**62) to (E, M).

    Returns float64 values of the format (+-Inf on overflow per the modes); zero keeps
    the given sign (n == 0 -> +-0.0 by ``sign``; a negative value rounding to 0 -> -0.0).
    """
    _check_modes(rounding, overflow)
    _, emin, emax = fmt_params(E, M)
    sign, n, k = np.broadcast_arrays(
        np.asarray(sign, bool), np.asarray(n, np.int64), np.asarray(k, np.int64)
    )
    if np.any(n < 0) or np.any(n >= (np.int64(1) << 62)):
        raise ValueError("round_scaled: n out of range")
    bl = _bit_length(n)
    e = np.maximum(bl - 1 + k, emin)
    qe = e - M
    shift = qe - k
    big = shift > 62
    sc = np.clip(shift, 0, 62)
    kq_right = n >> sc
    rem = n & ((np.int64(1) << sc) - 1)
    half = np.where(sc > 0, np.int64(1) << np.maximum(sc - 1, 0), 0)
    # shift <= 0: exact; n << -shift < 2**(M+1) (value < 2**(e+1))
    left = np.clip(-shift, 0, 62)
    kq = np.where(shift <= 0, n << left, np.where(big, 0, kq_right))
    if rounding == "rne":
        up = (shift > 0) & ~big & ((rem > half) | ((rem == half) & ((kq & 1) == 1)))
        kq = kq + up.astype(np.int64)
    ovf = (e > emax) | ((e == emax) & (kq > 2 ** (M + 1) - 1))
    mag = np.ldexp(kq.astype(np.float64), qe.astype(np.int32))
    mx = math.ldexp(2 ** (M + 1) - 1, emax - M)
    if overflow == "inf" and rounding == "rne":
        mag = np.where(ovf, np.inf, mag)
    else:
        mag = np.where(ovf, mx, mag)
    return np.where(sign, -mag, mag)


def float_to_scaled(x):
    """Exact decomposition of finite float64 x: x == (-1)**sign * n * 2**k, n < 2**53."""
    x = np.asarray(x, np.float64)
    sign = np.signbit(x)
    a = np.abs(x)
    m, ex = np.frexp(a)
    n = np.ldexp(m, 53).astype(np.int64)
    k = ex.astype(np.int64) - 53
    return sign, n, k


def oracle_quantize(x, E: int, M: int, rounding: str = "rne", overflow: str = "inf") -> np.ndarray:
    """Exact quantize of any float64/float32 array (NaN, +-Inf handled per the contract).
    Returns float64."""
    x = np.asarray(x, np.float64)
    fin = np.isfinite(x)
    xs = np.where(fin, x, 0.0)
    s, n, k = float_to_scaled(xs)
    out = round_scaled(s, n, k, E, M, rounding, overflow)
    _, _, emax = fmt_params(E, M)
    mx = math.ldexp(2 ** (M + 1) - 1, emax - M)
    inf_val = mx if overflow == "saturate" else np.inf
    out = np.where(np.isinf(x), np.copysign(inf_val, x), out)
    out = np.where(np.isnan(x), np.nan, out)
    return out


# --------------------------------------------------------------------------------------
# enumeration helpers
# --------------------------------------------------------------------------------------
def decode_bits(bits, E: int, M: int) -> np.ndarray:
    """Values of bit patterns (float64); NaN for NaN patterns."""
    bits = np.asarray(bits, np.int64)
    bias, emin, _ = fmt_params(E, M)
    s = (bits >> (E + M)) & 1
    f = (bits >> M) & ((1 << E) - 1)
    fr = bits & ((1 << M) - 1)
    sub = np.ldexp(fr.astype(np.float64), np.full(bits.shape, emin - M, np.int32))
    nor = np.ldexp((fr + (1 << M)).astype(np.float64), (f - bias - M).astype(np.int32))
    mag = np.where(f == 0, sub, nor)
    top = f == (1 << E) - 1
    mag = np.where(top & (fr == 0), np.inf, mag)
    mag = np.where(top & (fr != 0), np.nan, mag)
    return np.where(s == 1, -mag, mag)


def all_patterns(E: int, M: int) -> np.ndarray:
    return np.arange(2 ** (1 + E + M), dtype=np.int64)


def n_positive_finite(E: int, M: int) -> int:
    """Number of finite patterns with sign 0 (including +0)."""
    return ((1 << E) - 1) << M


def positive_finite_values(E: int, M: int) -> np.ndarray:
    """All finite values >= +0 in increasing order (float64), including +0."""
    return decode_bits(np.arange(n_positive_finite(E, M), dtype=np.int64), E, M)


def finite_values(E: int, M: int) -> np.ndarray:
    """All finite values, both signs, including +0 and -0 (float64)."""
    p = positive_finite_values(E, M)
    return np.concatenate([-p[::-1], p])


def pattern_sample(E: int, M: int, limit: int = 100_000, rng=None) -> np.ndarray:
    """Sorted positive finite patterns: all of them if there are at most ``limit``, else
    the smallest ones (zero, subnormals), both sides of every binade boundary (including
    subnormal/normal), the largest ones below max_normal, and random ones."""
    n = n_positive_finite(E, M)
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    w = min(2 ** (M + 1), 2048)
    parts = [np.arange(w), n - 1 - np.arange(w)]
    fields = np.arange(1, (1 << E) - 1, dtype=np.int64) << M
    off = np.arange(-8, 8, dtype=np.int64)
    parts.append((fields[:, None] + off[None, :]).ravel())
    if rng is None:
        rng = np.random.default_rng(12345)
    parts.append(rng.integers(0, n, max(0, limit - sum(len(p) for p in parts))))
    p = np.unique(np.concatenate(parts).astype(np.int64))
    return p[(p >= 0) & (p < n)]


def sampled_values(E: int, M: int, limit: int = 100_000, rng=None) -> np.ndarray:
    """Finite values of both signs (float64) from ``pattern_sample``."""
    v = decode_bits(pattern_sample(E, M, limit, rng), E, M)
    return np.concatenate([-v[::-1], v])


def midpoints(E: int, M: int, limit: int | None = None, rng=None) -> np.ndarray:
    """Positive midpoints between consecutive non-negative finite values (0 and
    min_subnormal, every binade boundary) and max_normal + half ulp, plus their
    negatives.  All of them by default; with ``limit`` those above the patterns of
    ``pattern_sample``.  Exact in float64 (they need M + 2 bits)."""
    n = n_positive_finite(E, M)
    p = np.arange(n, dtype=np.int64) if limit is None else pattern_sample(E, M, limit, rng)
    lo = decode_bits(p, E, M)
    hi = decode_bits(p + 1, E, M)  # p == n-1: the Inf pattern
    _, _, emax = fmt_params(E, M)
    top = math.ldexp(2 ** (M + 1) - 1, emax - M) + math.ldexp(1.0, emax - M - 1)
    pos = np.where(p == n - 1, top, (lo + np.where(np.isinf(hi), 0.0, hi)) / 2)
    return np.concatenate([-pos[::-1], pos])


def neighbours(x, dtype=np.float64) -> np.ndarray:
    """x's immediate neighbours below and above in ``dtype`` (nextafter)."""
    x = np.asarray(x, dtype)
    return np.concatenate([np.nextafter(x, dtype(-np.inf)), np.nextafter(x, dtype(np.inf))])


# --------------------------------------------------------------------------------------
# bit-exact comparisons
# --------------------------------------------------------------------------------------
def bits_of(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.float64:
        return a.view(np.uint64)
    if a.dtype == np.float32:
        return a.view(np.uint32)
    if a.dtype == np.float16:
        return a.view(np.uint16)
    raise TypeError(f"bits_of: unsupported dtype {a.dtype}")


def _hex(v, dtype):
    arr = np.asarray([v], dtype)
    return f"{float(arr[0])!r} (0x{int(bits_of(arr)[0]):0{arr.itemsize * 2}x})"


def assert_same_bits(got, expected, inputs=None, what="", inputs2=None):
    """Bit-for-bit equality (NaN-aware: any NaN matches any NaN; sign of zero checked).
    ``got`` and ``expected`` must have the same dtype and shape."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != expected {expected.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != expected {expected.shape}"
    gn, en = np.isnan(got), np.isnan(expected)
    bad = (gn != en) | (~gn & ~en & (bits_of(got) != bits_of(expected)))
    if np.any(bad):
        idx = np.argwhere(bad)[0]
        i = tuple(idx)
        msg = [f"{what}: {int(bad.sum())} of {bad.size} mismatch; first at index {i}:"]
        if inputs is not None:
            xin = np.broadcast_to(np.asarray(inputs), got.shape)
            msg.append(f"input {_hex(xin[i], xin.dtype)}")
        if inputs2 is not None:
            xin2 = np.broadcast_to(np.asarray(inputs2), got.shape)
            msg.append(f"input2 {_hex(xin2[i], xin2.dtype)}")
        msg.append(f"expected {_hex(expected[i], expected.dtype)}")
        msg.append(f"got {_hex(got[i], got.dtype)}")
        raise AssertionError("  ".join(msg))
