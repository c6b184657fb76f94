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
            raise ValueError(f"BFPFormat.rule must be one of {choices}, got {self.rule!r}") from None

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
    grouped: npt.NDArray[np.float64], fmt: BFPFormat
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Element exponents (zeros -> _NO_EXP) and the clamped shared exponent of each group."""
    mag = np.abs(grouped)
    nz = (mag != 0.0) & np.isfinite(mag)
    e = np.where(nz, _exponent_of(np.where(nz, mag, 1.0)), _NO_EXP)
    if fmt.rule is SharedExpRule.MAX or fmt.group_size == 1:
        shared = e.max(axis=-1)
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

    Per group: E = clamp(max element exponent, exp_min, exp_max) (all-zero group: exp_min);
    each element's magnitude |x| / 2^(E - man_bits + 1) is rounded with ``rounding`` and
    saturated to 2^man_bits - 1 (a carry out of the largest element, or E clamped at
    exp_max). A group holding a NaN or Inf gets the reserved all-ones exponent field; in it
    an element with mant 0 is +-Inf and any other is NaN (finite neighbours become NaN).
    """
    if fmt.rule is not SharedExpRule.MAX:
        raise ValueError(f"fmt.rule {fmt.rule.value!r} is an emulation only and cannot be packed")
    rnd = as_rounding(rounding)
    grouped, _ = _grouped(x, fmt.group_size, axis)
    _, shared = _shared_exponent(grouped, fmt)
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
    if fmt.rule is SharedExpRule.MAX:
        return bfp_unpack(bfp_pack(x, fmt, axis, rnd))
    grouped, c = _grouped(x, fmt.group_size, axis)
    e, shared = _shared_exponent(grouped, fmt)
    mant = _element_mantissas(grouped, shared, fmt, rnd)
    val = np.copysign(mant * _pow2(shared - fmt.man_bits + 1)[..., None], grouped)
    val = np.where((e > shared[..., None]) | ~np.isfinite(grouped), grouped, val)
    moved = val.reshape(*val.shape[:-2], -1)[..., :c]
    return np.moveaxis(moved, -1, axis)
