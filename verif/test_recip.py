# SPDX-License-Identifier: Apache-2.0
"""lightnorm_recip vs lightnorm.arith.recip, bit-exact.

Every input pattern of the format under each of the four (rnd_i, sat_i) modes (4 * 2^(1+E+M)
vectors: 4096 for fp10_e5m4, 262144 for fp16_e5m10), for fp10_e5m4, fp12_e6m5, E2M3 (the
smallest exponent range: subnormal and overflowing results) and fp16_e5m10 (the
largest table). fp16_e5m10 runs exhaustively under Verilator; under Icarus it runs on 2^10
random patterns plus the edge patterns unless LN_FULL_ICARUS=1.
Under saturate 1/+-0 gives +-max_normal (docs/spec.md section 3), in the model as in the RTL.
test_rsqrt.py reuses this module's sweep for lightnorm_rsqrt.
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
    exhaustive_enabled,
    fmt_corners,
    full_sweeps,
    random_patterns,
    rng_for,
    run_vectors,
)

from lightnorm.arith import recip
from lightnorm.formats import FloatFormat, decode, encode

FORMATS = [(5, 4), (6, 5), (2, 3), (5, 10)]
FORMAT_IDS = [f"e{e}m{m}" for e, m in FORMATS]


async def sweep_unary(dut, name: str, op) -> None:
    """All patterns (or random + edges when too many and not exhaustive) x 4 modes."""
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    if fmt.total_bits <= 12 or exhaustive_enabled():
        pats = all_patterns(fmt)
        what = "all inputs x 4 modes"
    else:
        rng = rng_for(f"{name}-{fmt.name}")
        pats = np.unique(np.concatenate([fmt_corners(fmt), random_patterns(rng, fmt, 1 << 10)]))
        what = f"{pats.size} random + edge inputs x 4 modes"
    v = np.tile(pats, len(MODES))
    rnd = np.repeat([r for r, _ in MODES], pats.size)
    sat = np.repeat([o for _, o in MODES], pats.size)
    vals = decode(v, fmt)
    res = by_mode(lambda sel, r, o: op(vals[sel], fmt, r, o), len(v), rnd, sat)
    want = encode(res, fmt)
    ins = {"v_i": v, "rnd_i": rnd, "sat_i": sat}
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(f"{name} {fmt.name} ({what})", got["res_o"], want, ins, fmt, dut._log)


async def _recip_all(dut) -> None:
    await sweep_unary(dut, "recip", recip)


try:
    import cocotb

    recip_all = cocotb.test()(_recip_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_recip(sim: str, fmt: tuple[int, int]) -> None:
    run_cocotb(
        "lightnorm_recip",
        "test_recip",
        {"ExpBits": fmt[0], "ManBits": fmt[1]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )
