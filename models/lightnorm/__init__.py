# SPDX-License-Identifier: Apache-2.0
"""LightNorm: bit-exact models of area- and energy-efficient batch normalization hardware.

Modules: formats (float formats, the one rounding step), arith (correctly rounded operators),
bfp (block floating point), config (LightNormConfig and presets), reference (the bit-exact
reference model of the core, and float64 ideal batch norm). docs/spec.md is the contract.
"""

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.config import PRESETS, GradMode, LightNormConfig, RangeConstant, Statistics
from lightnorm.formats import FORMATS, FloatFormat, Overflow, Rounding, quantize

__version__ = "0.1.0"

__all__ = [
    "FORMATS",
    "PRESETS",
    "BFPFormat",
    "FloatFormat",
    "GradMode",
    "LightNormConfig",
    "Overflow",
    "RangeConstant",
    "Rounding",
    "SharedExpRule",
    "Statistics",
    "quantize",
]
