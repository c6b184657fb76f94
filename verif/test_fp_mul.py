# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_mul vs lightnorm.arith.mul, bit-exact.

Sweeps (rnd_i, sat_i) = (RNE, inf), (RTZ, inf), (RNE, saturate), each over every operand pair
of the format when it has <= 2^20 pairs (fp10_e5m4) and exhaustive sweeps are on, else over all
edge-pattern pairs plus random pairs; then 2^12 random pairs with rnd_i / sat_i drawn per
vector (lightnorm_tb.vectors.binary_op_sweeps). Exhaustive sweeps run under Verilator; under
Icarus they run when LN_FULL_ICARUS=1, else the random subset. Other formats (fp12_e6m5,
fp32_e8m23): random + edge pairs.

Mixed formats (operand a in FP(AExpBits, AManBits), b in FP(BExpBits, BManBits), rounded once
to FP(ExpBits, ManBits); docs/spec.md section 3): the lane datapath's case fp10_e5m4 *
fp16_e8m7 -> fp10_e5m4 (d * a, d * s, xh * k_gamma, e * a of numeric contract v2), the operands
swapped, and a wider result (fp10_e5m4 * fp16_e8m7 -> fp16_e8m7). Exhaustive sweeps
(Verilator): every fp10_e5m4 pattern against a dense set of fp16_e8m7 patterns over the
exponents that bring a product into the result's range (and beyond, on both sides), plus the
fp16 edge patterns; Icarus: edge pairs and random mixed pairs.
"""

from __future__ import annotations

import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import (
    binary_op_sweeps,
    full_sweeps,
    mixed_ids,
    mixed_params,
    param_env,
)

from lightnorm.arith import mul
from lightnorm.formats import FloatFormat

FORMATS = [(5, 4), (6, 5), (8, 23)]
#: Mixed-format configurations: (ExpBits, ManBits, AExpBits, AManBits, BExpBits, BManBits).
MIXED = [(5, 4, 5, 4, 8, 7), (5, 4, 8, 7, 5, 4), (8, 7, 5, 4, 8, 7)]
SWEEPS = [{"rnd_i": 0, "sat_i": 0}, {"rnd_i": 1, "sat_i": 0}, {"rnd_i": 0, "sat_i": 1}]


async def _fp_mul_sweeps(dut) -> None:
    await binary_op_sweeps(dut, "fp_mul", lambda _setting: mul, SWEEPS, lambda _setting: "mul")


try:
    import cocotb

    fp_mul_sweeps = cocotb.test()(_fp_mul_sweeps)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=[FloatFormat(*f).name for f in FORMATS])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_mul(sim: str, fmt: tuple[int, int]) -> None:
    run_cocotb(
        "lightnorm_fp_mul",
        "test_fp_mul",
        {"ExpBits": fmt[0], "ManBits": fmt[1]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )


@pytest.mark.parametrize("cfg", MIXED, ids=mixed_ids(MIXED))
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_mul_mixed(sim: str, cfg: tuple[int, ...]) -> None:
    params = mixed_params(cfg)
    run_cocotb(
        "lightnorm_fp_mul",
        "test_fp_mul",
        params,
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim), **param_env(params)},
    )
