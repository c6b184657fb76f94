# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_widen vs lightnorm.formats (decode, then encode in the wider format), bit-exact.

Every input pattern of each configuration (inputs of <= 16 bits): the output must encode the
same value in the wider format (quantize to it is the identity, so this is
``encode(decode(a, fin), fout)``); a NaN input gives a NaN whose fraction is the input's,
extended by zeros (the block re-encodes, it does not round: docs/hardware.md). Configurations:
the lane datapath's element -> statistics widening of numeric contract v2 (fp10_e5m4 ->
fp16_e8m7, normalizing every fp10 subnormal), fp10_e6m3 -> fp16_e8m7, the same exponent width
(fp10_e5m4 -> fp12_e5m6: subnormals stay subnormal), fp10_e5m4 -> fp32 and the identity.
"""

from __future__ import annotations

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import all_patterns, check_bits, dut_param, param_env, run_vectors

from lightnorm.formats import FloatFormat, decode, encode

# (InExpBits, InManBits, OutExpBits, OutManBits)
CONFIGS = [(5, 4, 8, 7), (6, 3, 8, 7), (5, 4, 5, 6), (5, 4, 8, 23), (5, 4, 5, 4)]


def widened(a: np.ndarray, fin: FloatFormat, fout: FloatFormat) -> np.ndarray:
    """Expected output patterns: the value in fout; NaN: the fraction extended by zeros."""
    va = decode(a, fin)
    want = encode(np.where(np.isnan(va), 0.0, va), fout).astype(np.uint64)
    sign = (a >> np.uint64(fin.exp_bits + fin.man_bits)) & np.uint64(1)
    frac = a & np.uint64((1 << fin.man_bits) - 1)
    nan = (
        (sign << np.uint64(fout.exp_bits + fout.man_bits))
        | (np.uint64((1 << fout.exp_bits) - 1) << np.uint64(fout.man_bits))
        | (frac << np.uint64(fout.man_bits - fin.man_bits))
    )
    return np.where(np.isnan(va), nan, want)


async def _fp_widen_all(dut) -> None:
    fin = FloatFormat(dut_param(dut, "InExpBits"), dut_param(dut, "InManBits"))
    fout = FloatFormat(dut_param(dut, "OutExpBits"), dut_param(dut, "OutManBits"))
    a = all_patterns(fin)
    got = await run_vectors(dut, {"a_i": a}, ["res_o"], log=dut._log)
    check_bits(
        f"widen {fin.name} -> {fout.name} (all inputs)",
        got["res_o"],
        widened(a, fin, fout),
        {"a_i": a},
        fout,
        dut._log,
    )


try:
    import cocotb

    fp_widen_all = cocotb.test()(_fp_widen_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize(
    "cfg",
    CONFIGS,
    ids=[f"{FloatFormat(c[0], c[1]).name}-to-{FloatFormat(c[2], c[3]).name}" for c in CONFIGS],
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_widen(sim: str, cfg: tuple[int, int, int, int]) -> None:
    ie, im, oe, om = cfg
    params = {"InExpBits": ie, "InManBits": im, "OutExpBits": oe, "OutManBits": om}
    run_cocotb("lightnorm_fp_widen", "test_fp_widen", params, sim=sim, extra_env=param_env(params))
