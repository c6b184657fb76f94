# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_mul vs lightnorm.arith.mul, bit-exact.

Sweeps (rnd_i, sat_i) = (RNE, inf), (RTZ, inf), (RNE, saturate), each over every operand pair
of the format when it has <= 2^20 pairs (fp10_e5m4) and exhaustive sweeps are on, else over all
edge-pattern pairs plus LN_VECTORS random pairs (default 2^14; 2^12 for
fp12/fp32 under Icarus); then 2^12 random pairs with
rnd_i / sat_i drawn per vector (all four combinations). Exhaustive sweeps run under Verilator;
under Icarus they run when LN_FULL_ICARUS=1, else the random subset. Other formats
(fp12_e6m5, fp32_e8m23): random + edge pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import (
    OVF,
    RND,
    all_pairs,
    check_bits,
    corner_pairs,
    dut_param,
    exhaustive_enabled,
    full_sweeps,
    n_vectors,
    random_pairs,
    rng_for,
    run_vectors,
)

from lightnorm.arith import mul
from lightnorm.formats import FloatFormat, decode, encode

FORMATS = [(5, 4), (6, 5), (8, 23)]
SWEEPS = [(0, 0), (1, 0), (0, 1)]  # (rnd_i, sat_i)


def model_mul(a: np.ndarray, b: np.ndarray, fmt: FloatFormat, rnd, sat) -> np.ndarray:
    """Expected res_o bit patterns; rnd/sat are scalars or per-vector arrays."""
    n = len(a)
    rnd, sat = (np.broadcast_to(np.asarray(x), (n,)) for x in (rnd, sat))
    va, vb = decode(a, fmt), decode(b, fmt)
    out = np.zeros(n, dtype=np.uint64)
    for r in (0, 1):
        for o in (0, 1):
            sel = (rnd == r) & (sat == o)
            if np.any(sel):
                with np.errstate(all="ignore"):
                    res = mul(va[sel], vb[sel], fmt, RND[r], OVF[o])
                out[sel] = encode(res, fmt)
    return out


async def _fp_mul_sweeps(dut) -> None:
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    full = exhaustive_enabled() and 2 * fmt.total_bits <= 20
    rng = rng_for(f"fp_mul-{fmt.name}")
    # random pairs per sweep: 2^14 (~2^16 in all) for the fp10 subset under Icarus and for every
    # format under Verilator, 2^12 for the wider formats under Icarus
    n_rand = n_vectors(1 << 14, 1 << 14 if 2 * fmt.total_bits <= 20 else 1 << 12)
    for rnd, sat in SWEEPS:
        if full:
            a, b = all_pairs(fmt)
        else:
            ca, cb = corner_pairs(fmt)
            ra, rb = random_pairs(rng, fmt, n_rand)
            a, b = np.concatenate([ca, ra]), np.concatenate([cb, rb])
        want = model_mul(a, b, fmt, rnd, sat)
        ins = {"rnd_i": rnd, "sat_i": sat, "a_i": a, "b_i": b}
        got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
        tag = f"mul {fmt.name} {RND[rnd]}/{OVF[sat]} {'all' if full else 'random'}"
        check_bits(tag, got["res_o"], want, {"a": a, "b": b}, fmt, dut._log)
    n = 1 << 12
    a, b = random_pairs(rng, fmt, n)
    rnd, sat = (rng.integers(0, 2, n) for _ in range(2))
    want = model_mul(a, b, fmt, rnd, sat)
    ins = {"a_i": a, "b_i": b, "rnd_i": rnd, "sat_i": sat}
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(f"mul {fmt.name} mixed modes", got["res_o"], want, ins, fmt, dut._log)


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
