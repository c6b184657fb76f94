# SPDX-License-Identifier: Apache-2.0
"""lightnorm_rsqrt vs lightnorm.arith.rsqrt, bit-exact: every input pattern x the four
(rnd_i, sat_i) modes for fp10_e5m4, fp12_e6m5, E2M3 and fp16_e5m10 (see test_recip.py for the
sweep; the model's rsqrt(+-0) = +Inf becomes max_normal under saturate, as in docs/spec.md)."""

from __future__ import annotations

import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import full_sweeps
from test_recip import FORMAT_IDS, FORMATS, sweep_unary

from lightnorm.arith import rsqrt


async def _rsqrt_all(dut) -> None:
    await sweep_unary(dut, "rsqrt", rsqrt)


try:
    import cocotb

    rsqrt_all = cocotb.test()(_rsqrt_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_rsqrt(sim: str, fmt: tuple[int, int]) -> None:
    run_cocotb(
        "lightnorm_rsqrt",
        "test_rsqrt",
        {"ExpBits": fmt[0], "ManBits": fmt[1]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )
