# SPDX-License-Identifier: Apache-2.0
"""Block floating point (BFP): the off-chip storage format of LightNorm (docs/spec.md, section 5).

A group is ``group_size`` = g values along the channel axis at one (n, h, w) position. The
group stores one shared exponent field of ``exp_bits`` bits and, per element, a sign bit and
an unsigned ``man_bits``-bit magnitude (no implicit bit). Element value:
    (-1)^sign * mant * 2^(E - (man_bits - 1)),   E = field - bias,  bias = 2^(exp_bits-1) - 1.
So the largest element of a group keeps ``man_bits`` significant bits. Channels beyond C in
the last group (C not a multiple of g) are padding lanes holding +0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lightnorm.formats import Rounding, _exponent_of, _pow2, as_rounding

__all__ = ["BFPFormat", "BFPTensor", "SharedExpRule", "bfp_pack", "bfp_quantize", "bfp_unpack"]

_NO_EXP = -(1 << 20)  # exponent given to zeros so that they never set the shared exponent


class SharedExpRule(str, enum.Enum):
    """How a group's shared exponent E is chosen from its elements' exponents floor(log2|x|).

    MAX: E = the largest element exponent (every element fits; the default, what the RTL does).
    SECOND_MAX: the authors' code: E = the second-largest exponent of the group's nonzero
        elements (the largest if only one is nonzero); elements whose exponent exceeds E pass
        through unquantized. Emulation only: not a storable format (no bit-level pack).
    """

    MAX = "max"
    SECOND_MAX = "second_max"


@dataclass(frozen=True)
class BFPFormat:
    """A block-floating-point storage format.

    Attributes:
        man_bits: magnitude bits per element (sign not counted, no implicit bit), 2..16.
        group_size: g, values sharing one exponent: a power of two, 1..64.
        exp_bits: width of the shared exponent field, 4..10; the all-ones field is reserved
            for groups holding a non-finite value.
        rule: how the shared exponent is chosen (:class:`SharedExpRule`).
    """

    man_bits: int = 5
    group_size: int = 16
    exp_bits: int = 8
    rule: SharedExpRule = SharedExpRule.MAX

    def __post_init__(self) -> None:
        for field, lo, hi in (("man_bits", 2, 16), ("group_size", 1, 64), ("exp_bits", 4, 10)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"BFPFormat.{field} must be an int, got {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"BFPFormat.{field} must be in [{lo}, {hi}], got {value}")
            object.__setattr__(self, field, int(value))
        if self.group_size & (self.group_size - 1):
            raise ValueError(f"BFPFormat.group_size must be a power of two, got {self.group_size}")
        try:
            object.__setattr__(self, "rule", SharedExpRule(self.rule))
        except ValueError:
            choices = [r.value for r in SharedExpRule]
            raise ValueError(
                f"BFPFormat.rule must be one of {choices}, got {self.rule!r}"
            ) from None

    @property
    def name(self) -> str:
        name = f"bfp_m{self.man_bits}_g{self.group_size}"
        if self.exp_bits != 8:
            name += f"_e{self.exp_bits}"
        if self.rule is not SharedExpRule.MAX:
            name += f"_{self.rule.value}"
        return name

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_min(self) -> int:
        """Smallest shared exponent E (field 0)."""
        return -self.bias

    @property
    def exp_max(self) -> int:
        """Largest shared exponent E of a finite group (field 2^exp_bits - 2)."""
        return (1 << self.exp_bits) - 2 - self.bias

    @property
    def bits_per_value(self) -> float:
        """Storage cost per value: sign + magnitude + shared exponent / g."""
        return 1 + self.man_bits + self.exp_bits / self.group_size

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BFPTensor:
    """A packed tensor: ``exp_field`` (..., G) and ``sign``/``mant`` (..., G, g), uint arrays.

    ``shape`` and ``axis`` describe the original tensor; the grouped axis was moved last and
    padded to G * g channels.
    """

    fmt: BFPFormat
    exp_field: npt.NDArray[np.uint16]
    sign: npt.NDArray[np.uint8]
    mant: npt.NDArray[np.uint32]
    shape: tuple[int, ...]
    axis: int


def _grouped(x: Any, g: int, axis: int) -> tuple[npt.NDArray[np.float64], int]:
    a = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    c = a.shape[-1]
    pad = (-c) % g
    if pad:
        a = np.concatenate([a, np.zeros((*a.shape[:-1], pad))], axis=-1)
    return a.reshape(*a.shape[:-1], a.shape[-1] // g, g), c


def _shared_exponent(
    grouped: npt.NDArray[np.float64], fmt: BFPFormat, rnd: Rounding | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Element exponents (zeros -> _NO_EXP) and the clamped shared exponent of each group.

    With ``rnd`` (rule MAX), E moves up by one where the largest magnitude's rounding carries.
    """
    mag = np.abs(grouped)
    nz = (mag != 0.0) & np.isfinite(mag)
    e = np.where(nz, _exponent_of(np.where(nz, mag, 1.0)), _NO_EXP)
    if fmt.rule is SharedExpRule.MAX or fmt.group_size == 1:
        shared = e.max(axis=-1)
        if rnd is not None:  # the carry of the largest magnitude (spec section 5)
            gmax = np.where(nz, mag, 0.0).max(axis=-1)
            top = np.where(gmax > 0, shared, 0)
            carry = _round(np.ldexp(gmax, -(top - fmt.man_bits + 1)), rnd)
            shared = np.where(carry >= float(1 << fmt.man_bits), shared + 1, shared)
    else:
        srt = np.sort(e, axis=-1)
        second = srt[..., -2]
        shared = np.where(second == _NO_EXP, srt[..., -1], second)
    shared = np.where(shared == _NO_EXP, fmt.exp_min, shared)
    return e, np.clip(shared, fmt.exp_min, fmt.exp_max)


def _element_mantissas(
    grouped: npt.NDArray[np.float64], shared: npt.NDArray[np.int64], fmt: BFPFormat, rnd: Rounding
) -> npt.NDArray[np.float64]:
    """mant = min(R(|x| / 2^(E - man_bits + 1)), 2^man_bits - 1) with R = rint or trunc."""
    scale = _pow2(-(shared - fmt.man_bits + 1))[..., None]
    with np.errstate(invalid="ignore"):
        scaled = np.abs(grouped) * scale
    q = np.rint(scaled) if rnd is Rounding.RNE else np.trunc(scaled)
    return np.minimum(q, float((1 << fmt.man_bits) - 1))


def bfp_pack(
    x: Any, fmt: BFPFormat, axis: int = 1, rounding: Rounding | str = Rounding.RNE
) -> BFPTensor:
    """Pack ``x`` into BFP groups along ``axis`` (rule MAX only: SECOND_MAX is not storable).

    Per group: e = the largest element exponent, plus one if the largest magnitude's
    rounding to man_bits carries out; E = clamp(e, exp_min, exp_max) (all-zero group:
    exp_min); each element's magnitude |x| / 2^(E - man_bits + 1) is rounded with
    ``rounding`` and saturated to 2^man_bits - 1 (only acts when E was clamped at exp_max).
    A group holding a NaN or Inf gets the reserved all-ones exponent field; in it
    an element with mant 0 is +-Inf and any other is NaN (finite neighbours become NaN).
    """
    if fmt.rule is not SharedExpRule.MAX:
        raise ValueError(f"fmt.rule {fmt.rule.value!r} is an emulation only and cannot be packed")
    rnd = as_rounding(rounding)
    grouped, _ = _grouped(x, fmt.group_size, axis)
    _, shared = _shared_exponent(grouped, fmt, rnd)
    mant = _element_mantissas(grouped, shared, fmt, rnd)
    special = ~np.all(np.isfinite(grouped), axis=-1)
    field = np.where(special, (1 << fmt.exp_bits) - 1, shared + fmt.bias)
    mant = np.where(special[..., None], np.where(np.isinf(grouped), 0.0, 1.0), mant)
    sign = np.signbit(grouped) & ~np.isnan(grouped)
    return BFPTensor(
        fmt=fmt,
        exp_field=field.astype(np.uint16),
        sign=sign.astype(np.uint8),
        mant=mant.astype(np.uint32),
        shape=tuple(np.shape(x)),
        axis=axis,
    )


def bfp_unpack(packed: BFPTensor) -> npt.NDArray[np.float64]:
    """The float64 values of a packed tensor, in the original shape (padding dropped)."""
    fmt = packed.fmt
    field = packed.exp_field.astype(np.int64)
    special = field == (1 << fmt.exp_bits) - 1
    shared = np.where(special, 0, field - fmt.bias)
    mag = packed.mant.astype(np.float64) * _pow2(shared - fmt.man_bits + 1)[..., None]
    mag = np.where(special[..., None], np.where(packed.mant == 0, np.inf, np.nan), mag)
    val = np.where(packed.sign.astype(bool), -mag, mag)
    moved_shape = list(packed.shape)
    c = moved_shape.pop(packed.axis)
    flat = val.reshape(*val.shape[:-2], -1)[..., :c]
    return np.moveaxis(flat.reshape(*moved_shape, c), -1, packed.axis)


def bfp_quantize(
    x: Any, fmt: BFPFormat, axis: int = 1, rounding: Rounding | str = Rounding.RNE
) -> npt.NDArray[np.float64]:
    """Values of ``x`` after a store to and load from BFP (= unpack(pack(x)) for rule MAX).

    Under SECOND_MAX, elements whose exponent exceeds the shared exponent keep their input
    value (the authors' pass-through).
    """
    rnd = as_rounding(rounding)
    return _bfp_values(np.asarray(x, dtype=np.float64), fmt, axis, rnd)


def _round(v: npt.NDArray[Any], rnd: Rounding) -> npt.NDArray[Any]:
    return np.rint(v) if rnd is Rounding.RNE else np.trunc(v)


def _bfp_values(x: npt.NDArray[Any], fmt: BFPFormat, axis: int, rnd: Rounding) -> npt.NDArray[Any]:
    """:func:`bfp_quantize` of a float32 or float64 array, in its dtype; a new array.

    The grouped axis stays in place: x is viewed as (A, G, g, B) (padding lanes +0) and the
    per-group quantities are (A, G, 1, B) arrays broadcast over the g lanes. Same steps as
    pack + unpack: E from the group's largest magnitude (floor(log2) is monotonic, so it is
    the largest element exponent, plus one on a carry; NaN/Inf make that maximum non-finite:
    the group is special), mant = min(R(|x| * 2^-s), 2^man_bits - 1) with s = E - man_bits + 1,
    value = +-mant * 2^s. Every scaling is exact. For float32 x every result is a float32
    value: a finite result has <= man_bits <= 16 significant bits and is below 2^(E+1), with
    E <= 127 (else the work is done in float64, and the result is float64); when 2^s is finer
    than 2^-149 the element is on the grid and comes back unchanged (and a tiny |x| * 2^-s
    that underflows rounds to 0 either way).
    """
    shape = x.shape
    ax = axis % x.ndim if x.ndim else 0
    channels = shape[ax] if x.ndim else 1
    outer = int(np.prod(shape[:ax], dtype=np.int64))
    inner = int(np.prod(shape[ax + 1 :], dtype=np.int64))
    g = fmt.group_size
    x3 = x.reshape(outer, channels, inner)
    pad = (-channels) % g
    if pad:
        x3 = np.concatenate([x3, np.zeros((outer, pad, inner), dtype=x.dtype)], axis=1)
    x4 = x3.reshape(outer, x3.shape[1] // g, g, inner)
    mag = np.abs(x4)
    if fmt.rule is SharedExpRule.MAX:
        e = None
        gmax = mag.max(axis=2, keepdims=True)
        special = ~np.isfinite(gmax)
        top = np.frexp(gmax)[1] - 1
        # Spec section 5: if the largest magnitude's rounding carries out (R(x_max * 2^-s)
        # = 2^man_bits), E moves to the next binade, as an element format would.
        with np.errstate(invalid="ignore"):
            carry = _round(np.ldexp(np.where(special, 0.0, gmax), -(top - fmt.man_bits + 1)), rnd)
        top = top + (carry >= float(1 << fmt.man_bits))
        shared = np.where(gmax > 0, top, fmt.exp_min)  # all-zero (or special) group: exp_min
    else:
        # SECOND_MAX: the second-largest element exponent (the largest if it occurs twice,
        # or if only one element is nonzero), zeros and non-finite elements excluded: as the
        # sort of the element exponents in _shared_exponent.
        nz = (mag != 0.0) & np.isfinite(mag)
        e = np.frexp(mag)[1] - 1
        e[~nz] = _NO_EXP
        e1 = e.max(axis=2, keepdims=True)
        top_count = np.sum(e == e1, axis=2, keepdims=True)
        e2 = np.where(e == e1, _NO_EXP, e).max(axis=2, keepdims=True)
        second = np.where(top_count >= 2, e1, e2)
        shared = np.where(second == _NO_EXP, e1, second)
        shared = np.where(shared == _NO_EXP, fmt.exp_min, shared)
        special = None
    clamped = np.clip(shared, fmt.exp_min, fmt.exp_max)
    if x.dtype == np.float32 and int(clamped.max(initial=0)) >= 128:
        # A carry into 2^128 (exp_bits > 8) is beyond float32: compute in float64.
        return _bfp_values(x.astype(np.float64), fmt, axis, rnd)
    shift = (clamped - (fmt.man_bits - 1)).astype(np.int32)  # s: the LSB weight of the group
    if e is None:
        shift[gmax == 0.0] = 0  # all-zero group: any s gives 0 (keeps the scales in range)
    limit = float((1 << fmt.man_bits) - 1)
    finfo = np.finfo(x.dtype)
    lo, hi = int(shift.min(initial=0)), int(shift.max(initial=0))
    use_mul = all(finfo.minexp <= v < finfo.maxexp for v in (lo, hi, -lo, -hi))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        # |x| * 2^-s, rounded, saturated, times 2^s. Scaling by a power of two is exact, by
        # multiplication or ldexp alike (a result below the normal range is < 1/2 and
        # rounds to 0 either way); multiplication is faster when both 2^-s and 2^s are
        # normal numbers of the dtype.
        if use_mul:
            np.multiply(mag, np.ldexp(np.ones((), x.dtype), -shift), out=mag)
        else:
            np.ldexp(mag, -shift, out=mag)
        if rnd is Rounding.RNE:
            np.rint(mag, out=mag)
        else:
            np.trunc(mag, out=mag)
        # Rule MAX: only a group's largest magnitude can round past the limit (R is monotonic).
        saturates = e is not None or np.any(
            _round(np.ldexp(np.where(special, 0, gmax), -shift), rnd) > limit
        )
        if saturates:
            np.minimum(mag, limit, out=mag)
        if use_mul:
            np.multiply(mag, np.ldexp(np.ones((), x.dtype), shift), out=mag)
        else:
            np.ldexp(mag, shift, out=mag)
    # The sign of x (copysign on a nonnegative magnitude: OR in the sign bit).
    uint = np.uint32 if x.dtype == np.float32 else np.uint64
    sign_bit = uint(1) << uint(8 * x.dtype.itemsize - 1)
    mag_bits = mag.view(uint)
    np.bitwise_or(mag_bits, np.bitwise_and(x4.view(uint), sign_bit), out=mag_bits)
    if e is not None:
        # SECOND_MAX pass-through: larger exponents and non-finite elements keep x.
        keep = (e > clamped) | ~np.isfinite(x4)
        if np.any(keep):
            mag[keep] = x4[keep]
    elif np.any(special):
        # Reserved exponent: mant 0 (an Inf) reads back as +-Inf, anything else as NaN with
        # the element's sign bit (+ for a NaN input, whose sign is not stored).
        a_i, g_i, _, b_i = np.nonzero(special)
        vals = x4[a_i, g_i, :, b_i]
        nan = np.where(np.isnan(vals), np.nan, np.copysign(np.nan, vals))
        mag[a_i, g_i, :, b_i] = np.where(np.isinf(vals), vals, nan)
    out = mag.reshape(outer, -1, inner)
    if pad:
        out = out[:, :channels, :]
    return out.reshape(shape)
