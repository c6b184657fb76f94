# SPDX-License-Identifier: Apache-2.0
"""lightnorm_fp_add vs lightnorm.arith.add / sub, bit-exact.

Sweeps (rnd_i, sat_i, sub_i) = (RNE, inf, add), (RTZ, inf, sub), (RNE, saturate, add), each
over every operand pair of the format when it has <= 2^20 pairs (fp10_e5m4) and exhaustive
sweeps are on, else over all edge-pattern pairs plus LN_VECTORS random pairs (default 2^14;
2^12 for fp12/fp32 under Icarus); then 2^12 random pairs with rnd_i / sat_i / sub_i drawn per
vector (all eight combinations).
Exhaustive sweeps run under Verilator; under Icarus (about 40 us per vector) they run when
LN_FULL_ICARUS=1, else the random subset. Other formats (fp12_e6m5, fp32_e8m23): random +
edge pairs.
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

from lightnorm.arith import add, sub
from lightnorm.formats import FloatFormat, decode, encode

FORMATS = [(5, 4), (6, 5), (8, 23)]
SWEEPS = [(0, 0, 0), (1, 0, 1), (0, 1, 0)]  # (rnd_i, sat_i, sub_i)


def model_add(a: np.ndarray, b: np.ndarray, fmt: FloatFormat, rnd, sat, subtract) -> np.ndarray:
    """Expected res_o bit patterns; rnd/sat/subtract are scalars or per-vector arrays."""
    n = len(a)
    rnd, sat, subtract = (np.broadcast_to(np.asarray(x), (n,)) for x in (rnd, sat, subtract))
    va, vb = decode(a, fmt), decode(b, fmt)
    out = np.zeros(n, dtype=np.uint64)
    for r in (0, 1):
        for o in (0, 1):
            for s in (0, 1):
                sel = (rnd == r) & (sat == o) & (subtract == s)
                if np.any(sel):
                    op = sub if s else add
                    with np.errstate(all="ignore"):
                        res = op(va[sel], vb[sel], fmt, RND[r], OVF[o])
                    out[sel] = encode(res, fmt)
    return out


async def _fp_add_sweeps(dut) -> None:
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    full = exhaustive_enabled() and 2 * fmt.total_bits <= 20
    rng = rng_for(f"fp_add-{fmt.name}")
    # random pairs per sweep: 2^14 (~2^16 in all) for the fp10 subset under Icarus and for every
    # format under Verilator, 2^12 for the wider formats under Icarus
    n_rand = n_vectors(1 << 14, 1 << 14 if 2 * fmt.total_bits <= 20 else 1 << 12)
    for rnd, sat, subtract in SWEEPS:
        if full:
            a, b = all_pairs(fmt)
        else:
            ca, cb = corner_pairs(fmt)
            ra, rb = random_pairs(rng, fmt, n_rand)
            a, b = np.concatenate([ca, ra]), np.concatenate([cb, rb])
        want = model_add(a, b, fmt, rnd, sat, subtract)
        ins = {"rnd_i": rnd, "sat_i": sat, "sub_i": subtract, "a_i": a, "b_i": b}
        got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
        op = "sub" if subtract else "add"
        tag = f"{op} {fmt.name} {RND[rnd]}/{OVF[sat]} {'all' if full else 'random'}"
        check_bits(tag, got["res_o"], want, {"a": a, "b": b}, fmt, dut._log)
    # every mode combination, drawn per vector
    n = 1 << 12
    a, b = random_pairs(rng, fmt, n)
    rnd, sat, subtract = (rng.integers(0, 2, n) for _ in range(3))
    want = model_add(a, b, fmt, rnd, sat, subtract)
    ins = {"a_i": a, "b_i": b, "rnd_i": rnd, "sat_i": sat, "sub_i": subtract}
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(f"add/sub {fmt.name} mixed modes", got["res_o"], want, ins, fmt, dut._log)


try:
    import cocotb

    fp_add_sweeps = cocotb.test()(_fp_add_sweeps)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=[FloatFormat(*f).name for f in FORMATS])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_fp_add(sim: str, fmt: tuple[int, int]) -> None:
    run_cocotb(
        "lightnorm_fp_add",
        "test_fp_add",
        {"ExpBits": fmt[0], "ManBits": fmt[1]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )
