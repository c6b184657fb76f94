# SPDX-License-Identifier: Apache-2.0
"""Floating-point formats of LightNorm and the one rounding step every model uses.

A :class:`FloatFormat` FP(E, M) has 1 sign bit, ``exp_bits`` = E exponent bits with bias
2^(E-1)-1 and ``man_bits`` = M fraction bits. It is IEEE-754-like: exponent field 0 holds
zero and subnormals, the all-ones field holds Inf (fraction 0) and NaN (fraction != 0).

:func:`quantize` is the single rounding function of the project (docs/spec.md, section 2):
the hardware's rounding module ``lightnorm_round`` implements exactly the same mapping.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FORMATS",
    "FloatFormat",
    "Overflow",
    "Rounding",
    "decode",
    "encode",
    "quantize",
]


class Rounding(str, enum.Enum):
    """Rounding modes.

    RNE: round to nearest, ties to even significand (IEEE 754 roundTiesToEven); the default.
    RTZ: round toward zero (truncation), the rounding of the authors' published code.
    """

    RNE = "rne"
    RTZ = "rtz"


class Overflow(str, enum.Enum):
    """What a finite result beyond the largest finite value becomes.

    INF: IEEE 754 rules: under RNE, a value that rounds past ``max_normal`` becomes +-Inf;
        under RTZ a finite value never overflows to Inf (it becomes +-max_normal); Inf stays Inf.
    SATURATE: every result of magnitude above ``max_normal``, Inf inputs included, becomes
        +-max_normal. NaN stays NaN in both modes.
    """

    INF = "inf"
    SATURATE = "saturate"


def as_rounding(value: Rounding | str) -> Rounding:
    """Return ``value`` as a :class:`Rounding`, or raise ValueError naming ``rounding``."""
    try:
        return Rounding(value)
    except ValueError:
        choices = [r.value for r in Rounding]
        raise ValueError(f"rounding must be one of {choices}, got {value!r}") from None


def as_overflow(value: Overflow | str) -> Overflow:
    """Return ``value`` as an :class:`Overflow`, or raise ValueError naming ``overflow``."""
    try:
        return Overflow(value)
    except ValueError:
        choices = [o.value for o in Overflow]
        raise ValueError(f"overflow must be one of {choices}, got {value!r}") from None


_NAME_RE = re.compile(r"^fp(\d+)_e(\d+)m(\d+)$")
_ALIASES = {
    "bfloat16": "fp16_e8m7",
    "float16": "fp16_e5m10",
    "float32": "fp32_e8m23",
}


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-like binary floating-point format FP(E, M).

    Attributes:
        exp_bits: E, exponent field width, 2..8 (the model computes in float64, so every
            value of an E <= 8, M <= 23 format and every product of two of them is exact).
        man_bits: M, stored fraction bits (the implicit leading 1 is not counted), 1..23.
    """

    exp_bits: int
    man_bits: int

    def __post_init__(self) -> None:
        for field, lo, hi in (("exp_bits", 2, 8), ("man_bits", 1, 23)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"FloatFormat.{field} must be an int, got {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"FloatFormat.{field} must be in [{lo}, {hi}], got {value}")
            object.__setattr__(self, field, int(value))

    @classmethod
    def from_name(cls, name: str) -> FloatFormat:
        """Parse a canonical name ``fp{1+E+M}_e{E}m{M}`` or an alias (bfloat16, float16,
        float32)."""
        canonical = _ALIASES.get(name, name)
        match = _NAME_RE.match(canonical) if isinstance(canonical, str) else None
        if match is None:
            raise ValueError(f"unknown float format name {name!r} (expected e.g. 'fp10_e5m4')")
        total, e, m = (int(g) for g in match.groups())
        if total != 1 + e + m:
            raise ValueError(f"float format name {name!r}: width {total} != 1 + {e} + {m}")
        return cls(e, m)

    @property
    def name(self) -> str:
        return f"fp{self.total_bits}_e{self.exp_bits}m{self.man_bits}"

    @property
    def total_bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        return self.bias

    @property
    def max_normal(self) -> float:
        return float((2.0 - 2.0**-self.man_bits) * 2.0**self.emax)

    @property
    def min_normal(self) -> float:
        return float(2.0**self.emin)

    @property
    def min_subnormal(self) -> float:
        return float(2.0 ** (self.emin - self.man_bits))

    def __str__(self) -> str:
        return self.name


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat(5, 4),  # FP10 1/5/4: LightNorm's default compute format
        FloatFormat(6, 3),  # FP10 1/6/3: the authors' gradient format
        FloatFormat(5, 6),  # FP12
        FloatFormat(6, 5),  # FP12
        FloatFormat(6, 8),  # FP15
        FloatFormat(8, 7),  # bfloat16
        FloatFormat(5, 10),  # float16
        FloatFormat(8, 23),  # float32
        FloatFormat(5, 2),  # float8_e5m2
    )
}


def _as_float_array(x: Any) -> npt.NDArray[np.floating[Any]]:
    arr = np.asarray(x)
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    raise ValueError(f"x must be a float32/float64 array, got dtype {arr.dtype}")


def _exponent_of(a: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """floor(log2(|a|)) for finite nonzero float64 ``a`` (subnormal float64 not needed here)."""
    bits = a.view(np.uint64)
    return ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023


def _pow2(e: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """2.0**e for integer arrays e in the float64 normal range, built from the bit pattern."""
    return ((e + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)


def quantize(
    x: Any,
    fmt: FloatFormat,
    rounding: Rounding | str = Rounding.RNE,
    overflow: Overflow | str = Overflow.INF,
) -> npt.NDArray[np.floating[Any]]:
    """Round every element of ``x`` to the nearest value of ``fmt`` (one rounding).

    Formula: for finite nonzero x let e = max(floor(log2|x|), fmt.emin) and
    ulp = 2^(e - M); the result is ulp * R(x / ulp) where R is rint (RNE) or trunc (RTZ).
    x / ulp is exact in float64 (a power-of-two scaling), so the one rounding is exact for any
    float32/float64 input. A carry out of the significand (e.g. 1.1111b -> 10.000b) is
    naturally correct because the result is formed as a value, not a bit field. Results above
    ``max_normal`` then follow ``overflow`` (see :class:`Overflow`). Zeros keep their sign,
    NaN stays NaN.

    Args:
        x: float32 or float64 array (other numerics are taken as float64).
        fmt: target format.
        rounding: "rne" (default) or "rtz".
        overflow: "inf" (default, IEEE 754) or "saturate".

    Returns:
        An array of the input dtype and shape holding values of ``fmt``.
    """
    rnd = as_rounding(rounding)
    ovf = as_overflow(overflow)
    arr = _as_float_array(x)
    return _quantize_flat(arr.reshape(-1), fmt, rnd, ovf).reshape(arr.shape)


def _quantize_flat(
    flat: npt.NDArray[Any], fmt: FloatFormat, rnd: Rounding, ovf: Overflow
) -> npt.NDArray[Any]:
    """:func:`quantize` of a 1-D float32/float64 array (validated arguments); a new array.

    Same values as the formula of :func:`quantize`, computed in fewer passes: frexp gives
    x = f * 2^K (0.5 <= |f| < 1; zeros, Inf and NaN give K = 0 and f = x), so
    floor(log2|x|) = K - 1 and, where K - 1 >= emin, x / ulp = f * 2^(M+1) (one multiply by a
    constant instead of a per-element ldexp); only the elements below the normal range of
    ``fmt`` (K - 1 < emin) take x / ulp = ldexp(f, K - emin + M). Every scaling is by a power
    of two and exact, so the one rounding (rint / trunc) is the only inexact step.
    """
    frac, k = np.frexp(flat)  # new arrays: frac holds the result from here on
    m = fmt.man_bits
    if k.size and int(k.min()) - 1 < fmt.emin:
        sub = np.flatnonzero(k < fmt.emin + 1)  # below the normal range (zeros too if emin > -1)
        scaled = np.ldexp(frac[sub], k[sub] - (fmt.emin - m))
        k[sub] = fmt.emin + 1  # their ulp is 2^(emin - M)
        np.multiply(frac, 2.0 ** (m + 1), out=frac)
        frac[sub] = scaled
    else:
        np.multiply(frac, 2.0 ** (m + 1), out=frac)
    with np.errstate(invalid="ignore"):  # NaN inputs
        if rnd is Rounding.RNE:
            np.rint(frac, out=frac)
        else:
            np.trunc(frac, out=frac)
    np.subtract(k, m + 1, out=k)  # k = log2(ulp)
    out = np.ldexp(frac, k, out=frac)
    # |x| < 2^emax (K - 1 < emax) cannot round above 2^emax <= max_normal, and Inf stays Inf
    # under Overflow.INF: the overflow rules below can only act when that test fails.
    if ovf is Overflow.SATURATE or (k.size and int(k.max()) + m >= fmt.emax):
        big = np.abs(out) > fmt.max_normal
        if np.any(big):
            maxv = np.copysign(np.asarray(fmt.max_normal, dtype=out.dtype), out)
            if ovf is Overflow.SATURATE:
                out = np.where(big, maxv, out)
            elif rnd is Rounding.RNE:
                out = np.where(big, np.copysign(np.asarray(np.inf, dtype=out.dtype), out), out)
            else:  # IEEE RTZ: finite values never overflow to Inf
                out = np.where(big & np.isfinite(flat), maxv, out)
    return out


def encode(x: Any, fmt: FloatFormat) -> npt.NDArray[np.uint32]:
    """Bit patterns (sign | exponent field | fraction) of values of ``fmt``.

    Raises ValueError naming ``x`` if an element is not exactly representable in ``fmt``.
    NaN encodes as the canonical quiet NaN (sign 0, exponent all ones, fraction 1 << (M-1)).
    """
    a = _as_float_array(x).astype(np.float64)
    q = quantize(a, fmt)
    exact = (q == a) | np.isnan(a)
    if not np.all(exact):
        bad = a[~exact].ravel()[0]
        raise ValueError(f"x holds a value not representable in {fmt.name}: {bad!r}")
    m = fmt.man_bits
    e_all_ones = (1 << fmt.exp_bits) - 1
    sign = np.signbit(a).astype(np.uint32)
    mag = np.abs(a)
    finite_nz = np.isfinite(mag) & (mag != 0.0)
    safe = np.where(finite_nz, mag, 1.0)
    e = _exponent_of(safe)
    normal = e >= fmt.emin
    field = np.where(normal, e + fmt.bias, 0)
    frac_scale = np.where(normal, e - m, fmt.emin - m)
    sig = (safe * _pow2(-frac_scale)).astype(np.int64)
    frac = np.where(normal, sig - (1 << m), sig)
    field = np.where(finite_nz, field, 0)
    frac = np.where(finite_nz, frac, 0)
    field = np.where(np.isinf(mag), e_all_ones, field)
    nan = np.isnan(a)
    field = np.where(nan, e_all_ones, field)
    frac = np.where(nan, 1 << (m - 1), frac)
    sign = np.where(nan, 0, sign)
    bits = (sign.astype(np.int64) << (fmt.exp_bits + m)) | (field << m) | frac
    return bits.astype(np.uint32)


def decode(bits: Any, fmt: FloatFormat) -> npt.NDArray[np.float64]:
    """Values (float64) of the bit patterns ``bits`` of ``fmt``; any NaN pattern gives NaN."""
    b = np.asarray(bits).astype(np.int64)
    if np.any((b < 0) | (b >= (1 << fmt.total_bits))):
        raise ValueError(f"bits must be integers in [0, 2**{fmt.total_bits})")
    m = fmt.man_bits
    frac = b & ((1 << m) - 1)
    field = (b >> m) & ((1 << fmt.exp_bits) - 1)
    sign = np.where((b >> (fmt.exp_bits + m)) & 1, -1.0, 1.0)
    normal_val = (frac + (1 << m)).astype(np.float64) * _pow2(field - fmt.bias - m)
    sub_val = frac.astype(np.float64) * 2.0 ** (fmt.emin - m)
    val = np.where(field == 0, sub_val, normal_val)
    special = field == (1 << fmt.exp_bits) - 1
    val = np.where(special, np.where(frac == 0, np.inf, np.nan), val)
    return sign * val
