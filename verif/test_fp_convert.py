# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_convert vs lightnorm.formats.quantize, bit-exact.

Input formats with <= 2^16 patterns (fp10, fp12): every input pattern under each of the four
(rnd_i, sat_i) modes. fp32 inputs: LN_VECTORS (default 2^14) patterns that stress the rounding
to the output format (exponents across its whole range and beyond, exact ties and near ties,
edge patterns) with the mode drawn per vector.
"""

from __future__ import annotations

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import (
    MODES,
    all_patterns,
    by_mode,
    check_bits,
    dut_param,
    env_int,
    rng_for,
    run_vectors,
    stress_patterns,
)

from lightnorm.formats import FloatFormat, decode, encode, quantize

# (InExpBits, InManBits, OutExpBits, OutManBits)
CONFIGS = [(8, 23, 5, 4), (5, 4, 8, 23), (6, 5, 5, 4), (5, 4, 5, 6)]


async def _fp_convert_all(dut) -> None:
    fin = FloatFormat(dut_param(dut, "InExpBits"), dut_param(dut, "InManBits"))
    fout = FloatFormat(dut_param(dut, "OutExpBits"), dut_param(dut, "OutManBits"))
    rng = rng_for(f"convert-{fin.name}-{fout.name}")
    if fin.total_bits <= 16:
        pats = all_patterns(fin)
        a = np.tile(pats, len(MODES))
        rnd = np.repeat([r for r, _ in MODES], pats.size)
        sat = np.repeat([o for _, o in MODES], pats.size)
        what = "all inputs x 4 modes"
    else:
        n = env_int("LN_VECTORS", 1 << 14)
        a = stress_patterns(rng, fin, fout, n)
        rnd, sat = rng.integers(0, 2, n), rng.integers(0, 2, n)
        what = "stress inputs, random modes"
    va = decode(a, fin)
    want = encode(by_mode(lambda sel, r, o: quantize(va[sel], fout, r, o), len(a), rnd, sat), fout)
    ins = {"a_i": a, "rnd_i": rnd, "sat_i": sat}
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(
        f"convert {fin.name} -> {fout.name} ({what})", got["res_o"], want, ins, fout, dut._log
    )


try:
    import cocotb

    fp_convert_all = cocotb.test()(_fp_convert_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize(
    "cfg",
    CONFIGS,
    ids=[f"{FloatFormat(c[0], c[1]).name}-to-{FloatFormat(c[2], c[3]).name}" for c in CONFIGS],
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_convert(sim: str, cfg: tuple[int, int, int, int]) -> None:
    ie, im, oe, om = cfg
    run_cocotb(
        "lightnorm_fp_convert",
        "test_fp_convert",
        {"InExpBits": ie, "InManBits": im, "OutExpBits": oe, "OutManBits": om},
        sim=sim,
    )
