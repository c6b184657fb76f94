# SPDX-License-Identifier: Apache-2.0
"""lightnorm_regfile: every storage variant (Impl 0 flip-flops, 1 latches with a clock gate per
word) against a Python model of the file, cycle by cycle.

The model is the cycle behaviour docs/hardware.md section 3 gives every variant: a write with
we_i in cycle t is seen by every read port from cycle t + 1 on, and no other word changes;
reads are combinational. The test first writes every word, then runs random cycles (writes in
about half of them, back-to-back writes to the same and to neighbouring words; read ports on the
word being written, on the word written last and on random words) and compares every read port
in every cycle, on both simulators.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import dut_param

#: (Words, Width, NumRead): a power-of-two file and an odd-sized one with more read ports
SHAPES = [(16, 8, 2), (13, 17, 4)]
PERIOD_NS = 10


async def _regfile_random(dut) -> None:
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge

    words = dut_param(dut, "Words")
    width = dut_param(dut, "Width")
    nread = dut_param(dut, "NumRead")
    aw = max(1, (words - 1).bit_length())
    cycles = int(os.environ.get("LN_REGFILE_CYCLES", "3000"))
    rng = np.random.default_rng(1000 * words + width)
    mask = (1 << width) - 1

    Clock(dut.clk_i, PERIOD_NS, unit="ns").start()
    dut.we_i.value = 0
    dut.waddr_i.value = 0
    dut.wdata_i.value = 0
    dut.raddr_i.value = 0
    model = [None] * words
    pending = None  # the write given in the previous cycle: (address, data)
    checked = 0
    last_addr = 0
    for cyc in range(words + cycles):
        await RisingEdge(dut.clk_i)
        if pending is not None:
            model[pending[0]] = pending[1]
        if cyc < words:  # fill: every word once
            we, wa = 1, cyc
        else:
            we = int(rng.random() < 0.5)
            pick = rng.random()
            if pick < 0.2:  # the word written last, again
                wa = last_addr
            elif pick < 0.3:  # its neighbour
                wa = min(words - 1, last_addr + 1)
            else:
                wa = int(rng.integers(words))
        wd = int(rng.integers(0, mask + 1))
        dut.we_i.value = we
        dut.waddr_i.value = wa
        dut.wdata_i.value = wd
        # read ports: the word being written, the word written last, random words
        ra = [int(rng.integers(words)) for _ in range(nread)]
        ra[0] = wa
        ra[1] = last_addr
        dut.raddr_i.value = sum(a << (r * aw) for r, a in enumerate(ra))
        await ReadOnly()
        if cyc >= words:
            got = int(dut.rdata_o.value)
            for r, a in enumerate(ra):
                val = (got >> (r * width)) & mask
                if val != model[a]:
                    raise AssertionError(
                        f"cycle {cyc}: read port {r} (word {a}) gave {val:#x}, expected "
                        f"{model[a]:#x} (write this cycle: we={we} word {wa})"
                    )
                checked += 1
        pending = (wa, wd) if we else None
        if we:
            last_addr = wa
    dut._log.info("%d reads checked", checked)


try:
    import cocotb

    regfile_random = cocotb.test()(_regfile_random)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("impl", [0, 1], ids=["flops", "latches"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"w{w}x{b}r{r}" for w, b, r in SHAPES])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_regfile(sim: str, shape: tuple[int, int, int], impl: int) -> None:
    words, width, nread = shape
    run_cocotb(
        "lightnorm_regfile",
        "test_regfile",
        {"Words": words, "Width": width, "NumRead": nread, "Impl": impl},
        sim=sim,
    )
