# SPDX-License-Identifier: Apache-2.0
"""lightnorm_recip_seq vs lightnorm.arith.recip, bit-exact, and its start/done handshake.

The sequential unit (FP32-class formats, where a table is too large) is driven one operation
at a time: start_i with the operand, then done_o must pulse exactly Latency = ManBits + 4 +
PipeRegs cycles later with res_o = the model's result (and stay low before). Vectors: every
input pattern x the four (rnd_i, sat_i) modes for E5M4, E5M6 and E6M9 (E6M9 under Icarus only with
LN_FULL_ICARUS=1, else 4096 random + edge patterns), and for FP32 (E8M23) the edge patterns,
subnormal / near-overflow / tie-prone inputs and uniform random patterns (LN_VECTORS,
default 20000 on Verilator, 2000 on Icarus) x 4 modes.
test_rsqrt_seq.py reuses this sweep for lightnorm_rsqrt_seq.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import (
    MODES,
    _getter,
    _setter,
    all_patterns,
    by_mode,
    check_bits,
    dut_param,
    exhaustive_enabled,
    fmt_corners,
    full_sweeps,
    n_vectors,
    random_patterns,
    rng_for,
    stress_patterns,
)

from lightnorm.arith import recip
from lightnorm.formats import FloatFormat, decode, encode

# (E, M, PipeRegs): every format, each register-stage count of the rounder (0..2); FP32 with
# 0 and with 2 (the FP32 baseline's channel unit)
FORMATS = [(5, 4, 0), (5, 6, 1), (6, 9, 2), (8, 23, 0), (8, 23, 2)]
FORMAT_IDS = [f"e{e}m{m}p{p}" for e, m, p in FORMATS]
PERIOD_NS = 10


def latency(man_bits: int, pipe_regs: int) -> int:
    """Clock edges from the one taking start_i to the one raising done_o (docs/hardware.md):
    one result bit per cycle, M + 4 bits, then the rounder's PipeRegs register stages."""
    return man_bits + 4 + pipe_regs


def _patterns(fmt: FloatFormat, name: str) -> tuple[np.ndarray, str]:
    if fmt.total_bits <= 13 or (fmt.total_bits <= 16 and exhaustive_enabled()):
        return all_patterns(fmt), "all inputs x 4 modes"
    rng = rng_for(f"{name}-{fmt.name}")
    n = n_vectors(20000, 2000) if fmt.total_bits > 16 else 4096
    pats = np.concatenate(
        [
            fmt_corners(fmt),
            random_patterns(rng, fmt, n // 2),
            stress_patterns(rng, fmt, fmt, n // 2),  # subnormals, near overflow, ties
        ]
    )
    pats = np.unique(pats)
    return pats, f"{pats.size} random + edge inputs x 4 modes"


async def sweep_seq(dut, name: str, op) -> None:
    """Drive every vector through the start/done handshake and compare res_o bit for bit."""
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    lat = latency(fmt.man_bits, dut_param(dut, "PipeRegs"))
    pats, what = _patterns(fmt, name)
    v = np.tile(pats, len(MODES))
    rnd = np.repeat([r for r, _ in MODES], pats.size)
    sat = np.repeat([o for _, o in MODES], pats.size)
    vals = decode(v, fmt)
    res = by_mode(lambda sel, r, o: op(vals[sel], fmt, r, o), len(v), rnd, sat)
    want = encode(res, fmt)

    Clock(dut.clk_i, PERIOD_NS, unit="ns").start()
    dut.start_i.value = 0
    dut.v_i.value = 0
    dut.rnd_i.value = 0
    dut.sat_i.value = 0
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 2)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)

    # Handshake: done_o rises at the lat-th clock edge after the one that took start_i and
    # stays high for one cycle.
    for i in range(3):
        dut.v_i.value = int(v[i * 97 % v.size])
        dut.start_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.start_i.value = 0
        seen = []
        for _ in range(lat + 2):
            await ReadOnly()
            seen.append(int(dut.done_o.value))
            await RisingEdge(dut.clk_i)
        expect = [0] * lat + [1, 0]
        assert seen == expect, f"{name}: done_o after start {seen}, expected {expect}"

    set_v, set_r, set_s = _setter(dut.v_i), _setter(dut.rnd_i), _setter(dut.sat_i)
    get_res, get_done = _getter(dut.res_o), _getter(dut.done_o)
    vv, rr, ss = [int(x) for x in v], [int(x) for x in rnd], [int(x) for x in sat]
    got = np.zeros(v.size, dtype=np.uint64)
    wait = Timer(lat * PERIOD_NS + PERIOD_NS // 2, "ns")  # mid-cycle of the done_o cycle
    edge = RisingEdge(dut.clk_i)
    t0 = time.perf_counter()
    for i in range(v.size):
        set_v(vv[i])
        set_r(rr[i])
        set_s(ss[i])
        dut.start_i.value = 1
        await edge
        dut.start_i.value = 0
        await wait
        if get_done() != 1:
            raise AssertionError(f"{name}: done_o low {lat} cycles after start (vector {i})")
        got[i] = get_res()
        await edge
    dt = time.perf_counter() - t0
    dut._log.info("%d vectors in %.2f s (%.1f us/vector)", v.size, dt, 1e6 * dt / v.size)
    ins = {"v_i": v, "rnd_i": rnd, "sat_i": sat}
    check_bits(f"{name} {fmt.name} ({what})", got, want, ins, fmt, dut._log)


async def _recip_seq_all(dut) -> None:
    await sweep_seq(dut, "recip_seq", recip)


try:
    import cocotb

    recip_seq_all = cocotb.test()(_recip_seq_all)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_recip_seq(sim: str, fmt: tuple[int, int, int]) -> None:
    run_cocotb(
        "lightnorm_recip_seq",
        "test_recip_seq",
        {"ExpBits": fmt[0], "ManBits": fmt[1], "PipeRegs": fmt[2]},
        sim=sim,
        extra_env={"LN_EXHAUSTIVE": full_sweeps(sim)},
    )
