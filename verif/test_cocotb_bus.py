# SPDX-License-Identifier: Apache-2.0
"""The cocotb-bus (0.3.0) parts the core testbench is built on, under cocotb 2.1.

lightnorm_tb.streams builds the stream driver and monitor on cocotb-bus: ``Bus`` groups the
stream ports by role, ``BeatDriver`` is a ``BusDriver`` (one beat per transaction),
``BeatMonitor`` a ``BusMonitor`` whose ready stalls come from a ``BitDriver``. This test shows
each of them working on lightnorm_core, and cocotb-bus's transaction ``Scoreboard`` checking
the x pass-through of OP_STATS under heavy stalls as the beats arrive (no beat dropped,
duplicated or reordered). The project's own scoreboard (lightnorm_tb.scoreboard) stays for
the value checks: it decodes every lane and names the spec step, channel and element of a
mismatch, which a transaction equality cannot.

cocotb test: cocotb_bus_parts. pytest entry point: test_cocotb_bus[icarus|verilator]
(`make test`; Verilator on the default build, Icarus on the small set, both already built by
test_core.py).
"""

from __future__ import annotations

import random

import pytest

try:  # the cocotb part only exists inside a simulation
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None


if cocotb is not None and cocotb.is_simulation:
    from cocotb_bus.drivers import BitDriver, BusDriver
    from cocotb_bus.monitors import BusMonitor
    from cocotb_bus.scoreboard import Scoreboard as BusScoreboard
    from lightnorm_tb.core_tb import CoreTB, case_rng
    from lightnorm_tb.layers import expected, random_layer
    from lightnorm_tb.streams import IN_SIGNALS, OUT_SIGNALS

    @cocotb.test()
    async def cocotb_bus_parts(dut):
        """Bus, BusDriver, BusMonitor, BitDriver and Scoreboard on the core's streams."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        await tb.start()
        p = tb.p
        # Bus: every role resolved to the port of that name
        for bus, signals, prefix in (
            (tb.driver.bus, IN_SIGNALS, "in"),
            (tb.monitor.bus, OUT_SIGNALS, "out"),
        ):
            for role, suffix in signals.items():
                got = getattr(bus, role)._name
                assert got == f"{prefix}_{suffix}", (role, got)
        assert isinstance(tb.driver, BusDriver) and isinstance(tb.monitor, BusMonitor)
        assert isinstance(tb.monitor.ready_driver, BitDriver)

        rng = case_rng("cocotb_bus")
        layer = random_layer(
            rng,
            p,
            "bus",
            shape=(3, p.lanes + 3, 2, p.num_chunks),
            dist_x="normal",
            stall="heavy",
        )
        exp = expected(layer, None if p.bfp_beats else p.lanes)
        want = exp.x_beats.beats()
        board = BusScoreboard(dut, fail_immediately=True)
        pending = list(want)
        board.add_interface(tb.monitor, pending)  # compares each beat as it arrives
        tb.configure(layer)
        await tb.write_params(layer, layer.running_mean, layer.running_var)
        r = await tb.command("STATS", exp.x_beats, stall="heavy", layer_name=layer.name)
        assert not r.error and r.beats_in == len(want), (r.error, r.beats_in, len(want))
        assert not pending, f"{len(pending)} expected beats never arrived"
        assert board.errors == 0
        dut._log.info(
            "cocotb-bus: %d beats through OP_STATS under heavy stalls, %d driver idle cycles, "
            "scoreboard errors %d",
            len(want),
            tb.driver.idle_cycles,
            board.errors,
        )
        # the scoreboard's final check (ends the test as passed when nothing is missing)
        _ = board.result


#: Parameter set per simulator (builds test_core.py already made).
BUS_PARAMS = {"icarus": "l8k4e6m3", "verilator": "default"}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_cocotb_bus(sim: str) -> None:
    """cocotb-bus Bus / BusDriver / BusMonitor / BitDriver / Scoreboard on the core."""
    from lightnorm_tb.buildenv import verilator_make_fix
    from lightnorm_tb.runner import run_cocotb
    from test_core import PARAM_SETS

    params = PARAM_SETS[BUS_PARAMS[sim]]
    env = {f"LN_PARAM_{k}": v for k, v in params.items()}
    with verilator_make_fix(sim):
        run_cocotb(
            "lightnorm_core",
            "test_cocotb_bus",
            params,
            sim=sim,
            extra_env=env,
            testcase="cocotb_bus_parts",
        )
