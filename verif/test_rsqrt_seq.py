# SPDX-License-Identifier: Apache-2.0
"""lightnorm_rsqrt_seq vs lightnorm.arith.rsqrt, bit-exact, and its start/done handshake:
the sweep of test_recip_seq.py (every input x 4 modes for E5M4, E5M6, E6M9; edge + random +
stress patterns for FP32; done_o exactly ManBits + 4 + PipeRegs cycles after start_i)."""

from __future__ import annotations

import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import full_sweeps
from test_recip_seq import FORMAT_IDS, FORMATS, sweep_seq

from lightnorm.arith import rsqrt


async def _rsqrt_seq_all(dut) -> None:
    await sweep_seq(dut, "rsqrt_seq", rsqrt)


try:
    import cocotb

    rsqrt_seq_all = cocotb.test()(_rsqrt_seq_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_rsqrt_seq(sim: str, fmt: tuple[int, int, int]) -> None:
    run_cocotb(
        "lightnorm_rsqrt_seq",
        "test_rsqrt_seq",
        {"ExpBits": fmt[0], "ManBits": fmt[1], "PipeRegs": fmt[2]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )
