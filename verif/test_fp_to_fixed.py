# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_to_fixed: every input pattern of the element format, exact fixed-point values.

Expected fixed_o = value / 2^(emin - M) as an AccWidth-bit two's complement integer (the
representation lightnorm.arith.exact_sum accumulates with lsb_exp = emin - M), 0 for NaN / Inf;
nan_o / inf_o = {-Inf, +Inf} flags. Configurations: fp10_e5m4 at the minimum width (35 bits)
and at the accumulator width of the core (55 bits), fp12_e6m5 (68 bits: a port wider than 64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import all_patterns, dut_param, run_vectors_wide

from lightnorm.formats import FloatFormat, decode

# (ExpBits, ManBits, AccWidth)
CONFIGS = [(5, 4, 35), (5, 4, 55), (6, 5, 68)]


def expected_fixed(
    pats: np.ndarray, fmt: FloatFormat, acc_w: int
) -> tuple[list[int], list[int], list[int]]:
    vals = decode(pats, fmt)
    fixed, nan, inf = [], [], []
    for v in vals.tolist():
        if math.isnan(v) or math.isinf(v):
            fixed.append(0)
        else:
            n = int(math.ldexp(v, fmt.man_bits - fmt.emin))  # exact: v is a multiple of the LSB
            assert math.ldexp(n, fmt.emin - fmt.man_bits) == v
            fixed.append(n & ((1 << acc_w) - 1))
        nan.append(int(math.isnan(v)))
        inf.append((2 if v == -math.inf else 0) | (1 if v == math.inf else 0))
    return fixed, nan, inf


async def _fp_to_fixed_all(dut) -> None:
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    acc_w = dut_param(dut, "AccWidth")
    pats = all_patterns(fmt)
    fixed, nan, inf = expected_fixed(pats, fmt, acc_w)
    got = await run_vectors_wide(dut, {"a_i": pats}, ["fixed_o", "nan_o", "inf_o"], log=dut._log)
    bad = [
        i
        for i in range(len(pats))
        if (got["fixed_o"][i], got["nan_o"][i], got["inf_o"][i]) != (fixed[i], nan[i], inf[i])
    ]
    if bad:
        i = bad[0]
        raise AssertionError(
            f"fp_to_fixed {fmt.name} AccWidth={acc_w}: {len(bad)} mismatches; "
            f"first a=0x{int(pats[i]):x}: "
            f"dut ({got['fixed_o'][i]:#x}, {got['nan_o'][i]}, {got['inf_o'][i]}) "
            f"model ({fixed[i]:#x}, {nan[i]}, {inf[i]})"
        )
    dut._log.info("fp_to_fixed %s AccWidth=%d: %d inputs, all exact", fmt.name, acc_w, len(pats))


try:
    import cocotb

    fp_to_fixed_all = cocotb.test()(_fp_to_fixed_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"e{c[0]}m{c[1]}w{c[2]}" for c in CONFIGS])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_to_fixed(sim: str, cfg: tuple[int, int, int]) -> None:
    e, m, w = cfg
    run_cocotb(
        "lightnorm_fp_to_fixed",
        "test_fp_to_fixed",
        {"ExpBits": e, "ManBits": m, "AccWidth": w},
        sim=sim,
    )
