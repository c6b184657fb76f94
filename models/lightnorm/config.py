# SPDX-License-Identifier: Apache-2.0
"""LightNorm configurations: one frozen, validated dataclass and the named presets.

The presets are the single table that simulation, synthesis, the torch module and the
training study name (docs/spec.md, section 1). Each of the three approximations is
switched on its own: low precision (the formats), range statistics (``statistics``) and
BFP storage (``bfp``); "fp32-bn" is conventional FP32 batch norm through the same code.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.formats import FloatFormat, Overflow, Rounding

__all__ = [
    "PRESETS",
    "Accumulation",
    "GradMode",
    "LightNormConfig",
    "RangeConstant",
    "Statistics",
    "range_constant",
]


class Statistics(str, enum.Enum):
    """How the per-channel scale is estimated.

    RANGE: range BN: sigma_hat = C(m) * (mean of chunk maxima - mean of chunk minima), one pass.
    VARIANCE: conventional BN: var = mean((x - mu)^2), a second pass over x; s = rsqrt(var+eps).
    """

    RANGE = "range"
    VARIANCE = "variance"


class RangeConstant(str, enum.Enum):
    """The constant C(m) of range BN, m = n // K the chunk length.

    LIGHTNORM: 1 / sqrt(2 ln m) (the LightNorm paper).
    BANNER: 0.175 * (1 + sqrt(pi * ln 4)) / sqrt(2 ln m) ~= 0.540 / sqrt(2 ln m)
        (Banner et al.'s code).
    GAUSS: 1 / d2(m), d2(m) = E[max - min] of m iid standard normal values, so that sigma_hat
        is unbiased for Gaussian data.
    """

    LIGHTNORM = "lightnorm"
    BANNER = "banner"
    GAUSS = "gauss"


class GradMode(str, enum.Enum):
    """Which input gradient the backward pass computes.

    BN: the batch-norm formula dx = gamma*s*(dy - mean(dy) - x_hat * mean(dy * x_hat)).
    RANGE_EXACT: the exact gradient of range BN: gamma*s*(dy - mean(dy)) for every element and
        the sigma term -+ gamma*s*d_gamma*C/K only at each chunk's arg-max / arg-min.
    """

    BN = "bn"
    RANGE_EXACT = "range_exact"


class Accumulation(str, enum.Enum):
    """How the per-channel sums (sum x, sum (x - mu)^2, sum dy, sum dy * x_hat) accumulate.

    EXACT: exactly (a fixed-point accumulator wide enough for n values), rounded once when read
        (spec section 4): the order of the values does not matter.
    SEQUENTIAL: one value at a time in stream order, each addition rounded to stat_format and
        saturating like every per-channel result (spec section 4): a conventional floating-point
        accumulator per channel. A read that scales the sum (mu = sum * 1/n) is one more
        multiplication in stat_format. Needs a stat_format that holds every element value.
    """

    EXACT = "exact"
    SEQUENTIAL = "sequential"


def _expected_range(m: int) -> float:
    """d2(m) = integral of 1 - Phi(x)^m - (1 - Phi(x))^m dx, by the trapezoid rule (float64)."""
    xs = np.linspace(-16.0, 16.0, 32001)
    erfc = np.vectorize(math.erfc)
    phi_lo = 0.5 * erfc(xs / math.sqrt(2.0))  # 1 - Phi(x)
    with np.errstate(divide="ignore"):
        f = 1.0 - np.exp(m * np.log1p(-phi_lo)) - np.exp(m * np.log(phi_lo))
    return float(np.sum((f[1:] + f[:-1]) * 0.5) * (xs[1] - xs[0]))


def range_constant(kind: RangeConstant | str, m: int) -> float:
    """C(m) in float64 (the host computes it; the core receives it rounded to stat_format)."""
    kind = RangeConstant(kind)
    if m < 2:
        raise ValueError(f"m (chunk length n // K_n) must be >= 2 for range statistics, got {m}")
    if kind is RangeConstant.LIGHTNORM:
        return 1.0 / math.sqrt(2.0 * math.log(m))
    if kind is RangeConstant.BANNER:
        return 0.175 * (1.0 + math.sqrt(math.pi * math.log(4.0))) / math.sqrt(2.0 * math.log(m))
    return 1.0 / _expected_range(m)


_FP32 = FloatFormat(8, 23)
_FP10 = FloatFormat(5, 4)


def _as_enum(cls: type[enum.Enum], field: str, value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        choices = [v.value for v in cls]
        raise ValueError(
            f"LightNormConfig.{field} must be one of {choices}, got {value!r}"
        ) from None


@dataclass(frozen=True)
class LightNormConfig:
    """Everything that defines LightNorm's numerics (docs/spec.md).

    Attributes:
        compute_format: forward element datapath (x, x - mu, y, x_hat).
        grad_format: backward element datapath (dy, dy * x_hat, dx).
        stat_format: per-channel scalars (sums, mu, sigma_hat, s, gamma, beta, a, d_gamma, ...).
        running_format: running mean / variance kept for inference.
        rounding: rounding of every operator and of BFP packing.
        overflow: overflow policy of every operator.
        statistics: range (one pass) or variance (two passes).
        num_chunks: K, chunks per channel for range statistics, a power of two 1..64.
        range_constant: which C(m).
        grad_mode: BN-style or exact range-BN input gradient.
        bfp: BFP storage of x, y, dy, dx; None stores the element format itself.
        accumulation: exact per-channel sums rounded once, or sequential ones rounded at
            every addition (a conventional floating-point accumulator, "fp32-bn-seq").
    """

    compute_format: FloatFormat = _FP10
    grad_format: FloatFormat = _FP10
    stat_format: FloatFormat = _FP10
    running_format: FloatFormat = _FP32
    rounding: Rounding = Rounding.RNE
    overflow: Overflow = Overflow.INF
    statistics: Statistics = Statistics.RANGE
    num_chunks: int = 8
    range_constant: RangeConstant = RangeConstant.LIGHTNORM
    grad_mode: GradMode = GradMode.BN
    bfp: BFPFormat | None = dataclasses.field(default_factory=BFPFormat)
    accumulation: Accumulation = Accumulation.EXACT

    def __post_init__(self) -> None:
        for field in ("compute_format", "grad_format", "stat_format", "running_format"):
            value = getattr(self, field)
            if isinstance(value, str):
                value = FloatFormat.from_name(value)
            if not isinstance(value, FloatFormat):
                raise ValueError(f"LightNormConfig.{field} must be a FloatFormat, got {value!r}")
            object.__setattr__(self, field, value)
        for field, cls in (
            ("rounding", Rounding),
            ("overflow", Overflow),
            ("statistics", Statistics),
            ("range_constant", RangeConstant),
            ("grad_mode", GradMode),
            ("accumulation", Accumulation),
        ):
            object.__setattr__(self, field, _as_enum(cls, field, getattr(self, field)))
        k = self.num_chunks
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 64 or k & (k - 1):
            raise ValueError(
                f"LightNormConfig.num_chunks must be a power of two in [1, 64], got {k!r}"
            )
        if self.bfp is not None and not isinstance(self.bfp, BFPFormat):
            raise ValueError(f"LightNormConfig.bfp must be a BFPFormat or None, got {self.bfp!r}")
        if self.grad_mode is GradMode.RANGE_EXACT and self.statistics is not Statistics.RANGE:
            raise ValueError("LightNormConfig.grad_mode 'range_exact' needs statistics 'range'")
        if self.accumulation is Accumulation.SEQUENTIAL:
            st = self.stat_format
            for field in ("compute_format", "grad_format"):
                f = getattr(self, field)
                if st.exp_bits < f.exp_bits or st.man_bits < f.man_bits:
                    raise ValueError(
                        f"LightNormConfig.accumulation 'sequential' needs a stat_format that "
                        f"holds every {field} value: {st} does not hold {f}"
                    )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LightNormConfig:
        """The named configuration ``name`` (see PRESETS), with fields replaced by ``overrides``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides) if overrides else PRESETS[name]

    def __str__(self) -> str:
        bfp = self.bfp.name if self.bfp is not None else "none"
        return (
            f"compute={self.compute_format} grad={self.grad_format} stat={self.stat_format} "
            f"running={self.running_format} rounding={self.rounding.value} "
            f"overflow={self.overflow.value} statistics={self.statistics.value} "
            f"K={self.num_chunks} C={self.range_constant.value} grad_mode={self.grad_mode.value} "
            f"bfp={bfp} accumulation={self.accumulation.value}"
        )

    def replace(self, **changes: Any) -> LightNormConfig:
        return dataclasses.replace(self, **changes)

    def min_count(self) -> int:
        """Smallest n = N*H*W per channel of a training pass (inference takes any n >= 1).

        2 for both statistics: range statistics of a small layer use fewer chunks
        (:meth:`chunk_count`), as spec section 4 defines.
        """
        return 2

    def chunk_count(self, count: int) -> int:
        """K_n, the chunks of the range statistics of a layer with n = ``count`` values per
        channel (spec section 4): min(K, 2^(floor(log2 n) - 1)) for n >= 2, the largest power
        of two <= K whose chunk length m = n // K_n is >= 2. K itself for every n >= 2K (so
        nothing changes there); 1 for n < 2 (no training pass has such an n)."""
        if count < 2:
            return 1
        return min(self.num_chunks, 1 << (int(count).bit_length() - 2))


_LIGHTNORM_V1 = LightNormConfig()
_FP32_BN = LightNormConfig(
    compute_format=_FP32,
    grad_format=_FP32,
    stat_format=_FP32,
    statistics=Statistics.VARIANCE,
    bfp=None,
)
_LIGHTNORM_V2 = LightNormConfig(stat_format=FloatFormat(8, 7), grad_mode=GradMode.RANGE_EXACT)

PRESETS: dict[str, LightNormConfig] = {
    # The default approximate BN, numeric contract v2 (docs/spec.md section 12): FP10 E5M4
    # elements, per-channel scalars in E8M7, range BN (K=8) with the exact range-BN input
    # gradient, BFP m5 g16; trained with dynamic loss scaling (lightnorm.study.train). The RTL
    # core implements it built with StatExpBits = 8, StatManBits = 7 (grad mode: a run-time
    # setting). The dataclass's field defaults are contract v1.
    "lightnorm": _LIGHTNORM_V2,
    # Numeric contract v1 (docs/spec.md section 12): what "lightnorm" computed up to 2026-12.
    "lightnorm-v1": _LIGHTNORM_V1,
    # Numeric contract v2 (docs/spec.md section 12), the same as "lightnorm": v1 with
    # per-channel scalars in an 8-bit-exponent format (1/n, k_beta, k_gamma never underflow)
    # and the exact range-BN input gradient; trained with dynamic loss scaling.
    "lightnorm-v2": _LIGHTNORM_V2,
    # Conventional batch norm in FP32 through the same code path.
    "fp32-bn": _FP32_BN,
    # The conventional FP32 hardware baseline (bn_fp32_core): fp32-bn with a sequential FP32
    # accumulator per channel (each addition rounded, stream order) instead of exact sums.
    "fp32-bn-seq": _FP32_BN.replace(accumulation=Accumulation.SEQUENTIAL),
    # Ablations: one approximation at a time.
    "range-fp32": LightNormConfig(
        compute_format=_FP32, grad_format=_FP32, stat_format=_FP32, bfp=None
    ),
    "fp10-bn": LightNormConfig(statistics=Statistics.VARIANCE, bfp=None),
    "bfp-bn": LightNormConfig(
        compute_format=_FP32,
        grad_format=_FP32,
        stat_format=_FP32,
        statistics=Statistics.VARIANCE,
    ),
    # The authors' published code on in-range values: truncation, second-largest shared
    # exponent with pass-through, FP32 statistics, gradients in FP10 E6M3, BFP g=32.
    "authors": LightNormConfig(
        grad_format=FloatFormat(6, 3),
        stat_format=_FP32,
        rounding=Rounding.RTZ,
        bfp=BFPFormat(man_bits=5, group_size=32, rule=SharedExpRule.SECOND_MAX),
    ),
}
