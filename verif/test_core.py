# SPDX-License-Identifier: Apache-2.0
"""lightnorm_core against the reference model (lightnorm.reference), bit-exact.

cocotb tests (run inside the simulator):
  core_smoke   two layers (C not a multiple of Lanes with n not a multiple of K; C < Lanes
               with n = 2K) through a full training step and inference, with random
               valid/ready stalls, and an inference-only layer with n = 1; every output bit and
               every exposed statistic checked.
  core_small   small layers (n = N*H*W < 2K: range statistics over K_n < K chunks,
               docs/spec.md section 4): after a layer with n = 2K + 1 (K chunks), n = 2, 3,
               5, K, 2K - 1 (C < Lanes and C > Lanes), each a training step in grad mode bn
               and the backward pass again in range_exact, bit-exact; inference at the end.
  core_errors  every illegal configuration is refused (error_o / err_code_o, done_o, no input
               beat consumed) and a legal command afterwards runs clean.
  core_reset   reset in the middle of OP_STATS, OP_NORM and OP_BWD_DX, each followed by a
               clean, fully checked layer.
  core_random  LN_CORE_CASES constrained-random layers (shapes, distributions, modes, stalls),
               functional coverage printed at the end.
  core_context one core, many BN layers (docs/hardware.md "Per-layer context", "Channel
               tiles"): three layers of different shapes and modes, the third wider than
               MaxChannels and run as channel tiles, forward 1->2->3 (contexts saved after
               OP_FINALIZE), OP_NORM 1->2->3 and backward 3->2->1 each after restoring its
               context into a core whose per-channel fields were filled with random bits;
               every output bit checked, running statistics updated once per layer.
  core_wide    a layer of LN_WIDE_CHANNELS (default 2048) channels through the channel tiles
               of the build (MaxChannels each), the same flow.
pytest entry points: test_core_smoke runs core_smoke + core_errors on BOTH simulators and
core_reset on Verilator (the `make test` part); test_core_small runs core_small on both
simulators (Verilator: the product parameters; Icarus: the small set l8k4e6m3, as the corner
tests; LN_SMALL_PARAMS_<SIM> chooses another); test_core_regress (LIGHTNORM_REGRESS=1,
`make regress`) runs the directed corner layers (test_core_corners.core_corners), core_errors,
core_reset, core_small and core_random on both simulators and the parameter sets of
REGRESS_SETS, then test_core_regress_coverage prints the merged coverage.
test_core_latch_regfile (`make test`) runs core_smoke and core_context on Verilator with the
per-channel register files in latches (v2_latch); l8k4e6m3 has them too.
test_core_context runs core_context on both simulators (Verilator: the v2 build; Icarus: the
small set l8k4e6m3) and core_wide on Verilator (`make test`).
test_core_smoke_v2 (also `make test`) runs core_smoke on both simulators on the numeric
contract v2 build (V2_PARAMS: statistics format fp16_e8m7 over fp10_e5m4 elements); the
regression's parameter sets (REGRESS_SETS) include it.
SEED=<int> replays a run (the seed is printed).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random

import pytest

try:  # the cocotb part only exists inside a simulation
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pragma: no cover
    cocotb = None

from lightnorm_tb.layers import V2_PARAMS

REGRESS = os.environ.get("LIGHTNORM_REGRESS", "").strip() in ("1", "true", "yes")

#: The parameter sets of the regression: the product configuration (the core's defaults:
#: numeric contract v1, one format), contract v2 (per-channel scalars in fp16_e8m7,
#: docs/spec.md section 12) and a small, odd one (8 lanes, K = 4, 3 channel groups, FP10 E6M3
#: with BFP m4/e6, two register stages in every operator of the per-channel unit and of the
#: lanes instead of one, and the per-channel register files in latches, lightnorm_regfile
#: Impl = 1); "v2_latch" is contract v2 with the latch register files.
PARAM_SETS = {
    "default": {},
    "v2": V2_PARAMS,
    "l8k4e6m3": {
        "Lanes": 8,
        "NumChunks": 4,
        "MaxChannels": 24,
        "ExpBits": 6,
        "ManBits": 3,
        "BfpManBits": 4,
        "BfpExpBits": 6,
        "CountWidth": 16,
        "ChanPipeRegs": 2,
        "DpPipeRegs": 2,
        "RegFile": 1,
    },
    "v2_latch": {**V2_PARAMS, "RegFile": 1},
}


# ---------------------------------------------------------------------------------------------
# cocotb tests
# ---------------------------------------------------------------------------------------------
if cocotb is not None and cocotb.is_simulation:
    from lightnorm_tb import coverage
    from lightnorm_tb.core_tb import (
        CoreTB,
        backward_step,
        case_rng,
        check_errors,
        finish,
        inference,
        network_step,
        training_step,
    )
    from lightnorm_tb.layers import (
        DISTRIBUTIONS,
        CoreParams,
        channel_tiles,
        expected,
        random_layer,
    )
    from lightnorm_tb.scoreboard import Scoreboard
    from lightnorm_tb.streams import StallGen, sig_int

    @cocotb.test()
    async def core_smoke(dut):
        """Two layers, full training step and inference, random stalls."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("smoke")
        k = p.num_chunks
        layers = [
            # C not a multiple of Lanes, n = 2 * 2 * 5 = 20 not a multiple of K
            random_layer(
                rng,
                p,
                "smoke_a",
                shape=(2, p.lanes + p.lanes // 4, 2, 5),
                dist_x="normal_offset",
                dist_dy="normal",
                stall="light",
                rounding="rne",
                overflow="inf",
                grad_mode="bn",
            ),
            # C < Lanes, n = 2K (the smallest n with K chunks), the other modes
            random_layer(
                rng,
                p,
                "smoke_b",
                shape=(2, p.lanes // 2 - 1, 1, k),
                dist_x="all_equal_channel",
                dist_dy="heavy_tail",
                stall="heavy",
                rounding="rtz",
                overflow="saturate",
                grad_mode="range_exact",
            ),
        ]
        for layer in layers:
            tb.log.info("%s", layer.describe())
            exp = expected(layer)
            await training_step(tb, sb, layer, exp)
            await inference(tb, sb, layer, exp)
        # inference alone accepts any n >= 1 (here n = 1: no training pass)
        small = random_layer(
            rng, p, "smoke_infer", shape=(1, p.lanes + 1, 1, 1), dist_x="uniform", stall="light"
        )
        tb.log.info("%s (inference only)", small.describe())
        await inference(tb, sb, small, expected(small))
        finish(tb, sb)

    def _tiles_are_the_layer(layer, tiles, exps) -> None:
        """Model check before the core runs: the channel tiles' results are the whole
        layer's (y, dx, running statistics, bit for bit), so checking each tile against
        its own expectation checks the layer."""
        import numpy as np

        full = expected(layer)
        assert full.fwd is not None and full.bwd is not None
        lo = 0
        for tile, exp in zip(tiles, exps, strict=True):
            hi = lo + tile.channels
            assert exp.fwd is not None and exp.bwd is not None
            for name, a, b in (
                ("y", exp.fwd.y_c, full.fwd.y_c[:, lo:hi]),
                ("dx", exp.bwd.dx_c, full.bwd.dx_c[:, lo:hi]),
                ("running_mean", exp.fwd.running_mean, full.fwd.running_mean[lo:hi]),
                ("running_var", exp.fwd.running_var, full.fwd.running_var[lo:hi]),
            ):
                a64 = np.asarray(a, dtype=np.float64)
                b64 = np.asarray(b, dtype=np.float64)
                same = (a64 == b64) & (np.signbit(a64) == np.signbit(b64))
                same |= np.isnan(a64) & np.isnan(b64)
                assert same.all(), f"{tile.name}: {name} of the tile differs from the layer's"
            lo = hi

    def _wide_tiles(rng, p, name: str, shape, dist_x: str, stall: str):
        """A range_exact layer of ``shape`` cut into channel tiles of MaxChannels, checked on
        the model first (the tiles' results are the layer's)."""
        wide = random_layer(
            rng,
            p,
            name,
            shape=shape,
            dist_x=dist_x,
            grad_mode="range_exact",
            rounding="rne",
            overflow="inf",
            stall=stall,
        )
        tiles = channel_tiles(wide, p.max_channels)
        _tiles_are_the_layer(wide, tiles, [expected(t) for t in tiles])
        return tiles

    async def _context_flow(dut, layers, check_stats: bool, scribble: bool) -> None:
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        exps = [expected(layer) for layer in layers]
        for layer in layers:
            tb.log.info("%s", layer.describe())
        await network_step(tb, sb, layers, exps, check_stats=check_stats, scribble=scribble)
        finish(tb, sb)

    @cocotb.test()
    async def core_context(dut):
        """Three BN layers (the third as channel tiles) on one core with saved contexts."""
        p = CoreParams.from_dut(dut)
        rng = case_rng("context")
        k = p.num_chunks
        # n = 2K + 2, two tiles
        shape = (1, p.max_channels + p.lanes + 1, 2, k + 1)
        tiles = _wide_tiles(rng, p, "ctx_c", shape, "normal_offset", "light")
        layers = [
            # n = 12 < 2K: K_n = K / 2 chunks; bn gradient (no chunk extremes in its context)
            random_layer(
                rng,
                p,
                "ctx_a",
                shape=(2, p.lanes + 3, 2, 3),
                dist_x="normal",
                grad_mode="bn",
                stall="heavy",
            ),
            random_layer(
                rng,
                p,
                "ctx_b",
                shape=(4, 2 * p.lanes - 5, 1, 5),
                dist_x="heavy_tail",
                grad_mode="range_exact",
                rounding="rtz",
                overflow="saturate",
                stall="bursty",
            ),
            *tiles,
        ]
        await _context_flow(dut, layers, check_stats=True, scribble=True)

    @cocotb.test()
    async def core_wide(dut):
        """A layer of LN_WIDE_CHANNELS channels (default 2048) as channel tiles."""
        p = CoreParams.from_dut(dut)
        rng = case_rng("wide")
        channels = int(os.environ.get("LN_WIDE_CHANNELS", "2048"))
        tiles = _wide_tiles(rng, p, "wide", (2, channels, 2, 2), "normal", "none")  # n = 8
        await _context_flow(dut, tiles, check_stats=False, scribble=False)

    @cocotb.test()
    async def core_errors(dut):
        """Illegal configurations are refused without consuming data."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("errors")
        k = p.num_chunks
        layer = random_layer(rng, p, "err", shape=(1, 3, 2, k), dist_x="normal", stall="none")
        exp = expected(layer)
        cases = [
            ("STATS", 0, layer.count, 1, "no_channels"),
            ("FINALIZE", p.max_channels + 1, layer.count, 2, "too_many_channels"),
            ("NORM", 0xFFFF, layer.count, 2, "too_many_channels"),
            # a training command needs n >= 2 (n < 2K: K_n < K chunks, core_small)
            ("STATS", 3, 1, 3, "count_small"),
            ("STATS", 3, 0, 3, "count_small"),
            ("FINALIZE", 3, 1, 3, "count_small"),
            ("BWD_SUMS", 3, 1, 3, "count_small"),
            ("BWD_DX", 3, 1, 3, "count_small"),
            ("NORM", 3, 0, 3, "count_small"),
            ("STATS", 3, 1 << p.count_width, 4, "count_large"),
            ("BWD_DX", 3, 0xFFFFFFFF, 4, "count_large"),
            (7, 3, layer.count, 5, "bad_op"),
        ]
        await check_errors(tb, sb, layer, exp, cases)
        finish(tb, sb)

    @cocotb.test()
    async def core_small(dut):
        """Small layers (n < 2K, K_n < K chunks): bn training step + range_exact backward."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("small")
        k = p.num_chunks
        # (shape, x distribution): n = 2K + 1 (K chunks: it leaves every chunk's extremes in
        # the core, which the small layers after it must not use), then n = 2, 3, 5, K, 2K - 1
        shapes = [
            ((2 * k + 1, 5, 1, 1), "normal"),  # n = 2K + 1: K chunks
            ((2, p.lanes // 2 - 1, 1, 1), "normal"),  # n = 2: K_n = 1 (LightNorm1d, batch 2)
            ((1, p.lanes + 3, 1, 3), "normal_offset"),  # n = 3, C > Lanes: K_n = 1
            ((5, 3, 1, 1), "heavy_tail"),  # n = 5: K_n = 2, the remainder in chunk 1
            ((k, p.lanes + 3, 1, 1), "uniform"),  # n = K (pooled, batch K): K_n = K / 2
            ((1, 2, 2 * k - 1, 1), "all_equal_channel"),  # n = 2K - 1: K_n = K / 2
        ]
        for i, (shape, dist) in enumerate(shapes):
            layer = random_layer(
                rng,
                p,
                f"small{i}",
                shape=shape,
                dist_x=dist,
                grad_mode="bn",
                stall=("light", "heavy", "none", "bursty")[i % 4],
            )
            exact = dataclasses.replace(
                layer, name=f"{layer.name}_re", cfg=layer.cfg.replace(grad_mode="range_exact")
            )
            n = layer.count
            kn = layer.cfg.chunk_count(n)
            assert kn == min(k, 2 ** (n.bit_length() - 2)), (n, kn)
            tb.log.info("%s (K_n = %d)", layer.describe(), kn)
            for j, lay in enumerate((layer, exact)):
                exp = expected(lay)
                assert exp.fwd is not None and exp.fwd.constants.num_chunks == kn
                if j == 0:
                    await training_step(tb, sb, lay, exp)
                else:
                    await backward_step(tb, sb, lay, exp)
                coverage.sample_layer(lay, exp, p)
        await inference(tb, sb, layer, expected(layer))
        finish(tb, sb)

    async def _abort_after(tb: CoreTB, op: str, beats, dy_beats, n_beats: int, cycles: int) -> None:
        """Start ``op``; reset the core after n_beats input beats (streams) or ``cycles`` cycles."""
        from lightnorm_tb.core_tb import OPS

        d = tb.dut
        tb.monitor.start_ready(StallGen("light", tb.rng))
        drv = None
        if beats is not None:
            drv = cocotb.start_soon(
                tb.driver.send_beats(
                    beats.beats(),
                    StallGen("light", tb.rng),
                    dy_beats.beats() if dy_beats is not None else None,
                )
            )
        await RisingEdge(d.clk_i)
        d.cmd_valid_i.value = 1
        d.cmd_op_i.value = OPS[op]
        await RisingEdge(d.clk_i)
        d.cmd_valid_i.value = 0
        for i in range(10 * max(n_beats, cycles) + 100):
            await RisingEdge(d.clk_i)
            if (drv is not None and tb.driver.sent >= n_beats) or (drv is None and i >= cycles):
                break
        await ReadOnly()
        busy = sig_int(d.busy_o)
        await RisingEdge(d.clk_i)
        assert busy == 1, f"{op}: core not busy when the reset comes"
        if drv is not None:
            drv.cancel()
        tb.monitor.stop_ready()
        await RisingEdge(d.clk_i)
        await tb.reset()
        await ReadOnly()
        busy = sig_int(d.busy_o)
        outv = sig_int(d.out_valid_o)
        await RisingEdge(d.clk_i)
        assert busy == 0 and outv == 0, "core not idle after reset"

    @cocotb.test()
    async def core_reset(dut):
        """Reset in the middle of STATS, FINALIZE, NORM and BWD_DX, each followed by a clean,
        fully checked layer (training step; inference after the last one)."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("reset")
        k = p.num_chunks
        aborts = [
            ("STATS", "mid_stats"),
            ("FINALIZE", "mid_finalize"),
            ("NORM", "mid_norm"),
            ("BWD_DX", "mid_bwd"),
        ]
        for i, (op, where) in enumerate(aborts):
            junk = random_layer(
                rng, p, f"junk{i}", shape=(2, p.lanes + 3, 2, k), dist_x="heavy_tail", stall="light"
            )
            jexp = expected(junk)
            tb.configure(junk)
            if op == "FINALIZE":
                await _abort_after(tb, op, None, None, 0, 2 * (k + 7) + 3)
            else:
                await _abort_after(tb, op, jexp.x_beats, jexp.dy_beats, len(jexp.x_beats) // 2, 0)
            coverage.sample_reset(where)
            clean = random_layer(
                rng,
                p,
                f"after_reset{i}",
                channels=int(rng.integers(1, 2 * p.lanes + 1)),
                count=int(rng.choice([2 * k, 3 * k + 1])),
                stall="light",
            )
            tb.log.info("reset during %s, then %s", op, clean.describe())
            exp = expected(clean)
            await training_step(tb, sb, clean, exp)
            if i == len(aborts) - 1:
                await inference(tb, sb, clean, exp)
        finish(tb, sb)

    @cocotb.test()
    async def core_random(dut):
        """Constrained-random layers with coverage (LN_CORE_CASES, default 12)."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("random")
        cases = int(os.environ.get("LN_CORE_CASES", "12"))
        max_count = int(os.environ.get("LN_CORE_MAX_COUNT", "96"))
        # x distributions and (grad, rounding, overflow) combinations are cycled so that every
        # one is hit (9 and 8 are coprime: all pairs within 72 layers); the rest is random.
        modes = list(itertools.product(("bn", "range_exact"), ("rne", "rtz"), ("inf", "saturate")))
        for i in range(cases):
            gm, rnd, ovf = modes[i % len(modes)]
            layer = random_layer(
                rng,
                p,
                f"rand{i}",
                max_count=max_count,
                dist_x=DISTRIBUTIONS[i % len(DISTRIBUTIONS)],
                grad_mode=gm,
                rounding=rnd,
                overflow=ovf,
            )
            tb.log.info("%s", layer.describe())
            exp = expected(layer)
            before = len(sb.mismatches)
            await training_step(tb, sb, layer, exp)
            await inference(tb, sb, layer, exp)
            coverage.sample_layer(layer, exp, p)
            if len(sb.mismatches) > before:
                tb.log.error("layer %s failed: %s", layer.name, layer.describe())
        pct = coverage.report(tb.log)
        out = os.environ.get("LN_COVERAGE_FILE")
        if out:
            coverage.export(out)
        tb.log.info("coverage %.1f %%", pct)
        finish(tb, sb)


# ---------------------------------------------------------------------------------------------
# pytest entry points
# ---------------------------------------------------------------------------------------------
def _run(
    sim: str,
    params: dict,
    testcase: str,
    extra_env: dict | None = None,
    modules: str = "test_core",
) -> None:
    from lightnorm_tb.buildenv import verilator_make_fix
    from lightnorm_tb.runner import run_cocotb

    env = {f"LN_PARAM_{k}": v for k, v in params.items()}
    env.update(extra_env or {})
    with verilator_make_fix(sim):
        run_cocotb("lightnorm_core", modules, params, sim=sim, extra_env=env, testcase=testcase)


#: `make test` budget: Icarus simulates this core ~100x slower than Verilator, so the reset
#: test runs on Verilator here and on both simulators in the regression.
SMOKE_TESTS = {"icarus": "core_smoke,core_errors", "verilator": "core_smoke,core_errors,core_reset"}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_smoke(sim: str) -> None:
    """Training step + inference on two layers, illegal configurations (+ reset mid-layer)."""
    _run(sim, PARAM_SETS["default"], SMOKE_TESTS[sim])


#: Parameter set of each simulator's core_small run in `make test` (Icarus simulates the
#: product core ~100x slower: the small set, as test_core_corners.py).
SMALL_PARAMS = {"icarus": "l8k4e6m3", "verilator": "default"}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_small(sim: str) -> None:
    """Small layers (n < 2K: K_n < K chunks) through a training step in both grad modes."""
    params = os.environ.get(f"LN_SMALL_PARAMS_{sim.upper()}", SMALL_PARAMS[sim])
    _run(sim, PARAM_SETS[params], "core_small")


#: Parameter set of each simulator's core_context run in `make test`.
CONTEXT_PARAMS = {"icarus": "l8k4e6m3", "verilator": "v2"}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_context(sim: str) -> None:
    """Per-layer contexts and channel tiles: three layers forward, OP_NORM and backward on one
    core, contexts round-tripped through testbench memory (Verilator also: C = 2048)."""
    params = os.environ.get(f"LN_CONTEXT_PARAMS_{sim.upper()}", CONTEXT_PARAMS[sim])
    tests = "core_context,core_wide" if sim == "verilator" else "core_context"
    _run(sim, PARAM_SETS[params], tests)


def test_core_latch_regfile() -> None:
    """Contract v2 with its per-channel register files in latches (RegFile = 1, a clock gate
    per word): the smoke layers and the context round trip, bit-exact, on Verilator (Icarus
    runs the latch files in every test of the small set l8k4e6m3)."""
    _run("verilator", PARAM_SETS["v2_latch"], "core_smoke,core_context")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_smoke_v2(sim: str) -> None:
    """The smoke layers (training step with both grad modes, inference) on the numeric
    contract v2 build: StatExpBits / StatManBits = fp16_e8m7 over fp10_e5m4 elements."""
    _run(sim, PARAM_SETS["v2"], "core_smoke")


def test_param_sets_implement_presets() -> None:
    """The builds named after the numeric contracts compute their model presets: the core's
    defaults "lightnorm-v1", V2_PARAMS "lightnorm-v2" (with that preset's run-time grad
    mode), bn_fp32_core "fp32-bn-seq", so the testbench's configuration (read from the DUT) is the
    preset's (verif/sim_main.py checks the same before its run)."""
    from lightnorm_tb.layers import BASELINE_PARAMS, CoreParams, core_config

    from lightnorm.config import LightNormConfig

    builds = {"default": PARAM_SETS["default"], "v2": V2_PARAMS, "baseline": BASELINE_PARAMS}
    for name, preset in (
        ("default", "lightnorm-v1"),
        ("v2", "lightnorm-v2"),
        ("baseline", "fp32-bn-seq"),
    ):
        want = LightNormConfig.from_preset(preset)
        got = core_config(CoreParams.from_hdl(builds[name]), grad_mode=want.grad_mode.value)
        assert got == want, f"{name}: {got} != {preset}: {want}"


#: the regression's builds (v2_latch differs from v2 only in the register files' cells, which
#: l8k4e6m3 covers in the regression on both simulators)
REGRESS_SETS = ["default", "l8k4e6m3", "v2"]


@pytest.mark.skipif(
    not REGRESS, reason="long randomized regression: set LIGHTNORM_REGRESS=1 (make regress)"
)
@pytest.mark.parametrize("params", REGRESS_SETS)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_core_regress(sim: str, params: str) -> None:
    """Constrained-random layers with coverage: LN_CORE_CASES (default 40) on Verilator,
    LN_CORE_CASES_ICARUS (default 8, n <= 48) on the much slower Icarus; first the directed
    corner layers of test_core_corners.py (core_corners), whose chunk-level coverage bins the
    random layers rarely hit (same simulator run: one coverage database)."""
    from lightnorm_tb.runner import BUILD_ROOT

    if sim == "icarus":
        env = {
            "LN_CORE_CASES": os.environ.get("LN_CORE_CASES_ICARUS", "8"),
            "LN_CORE_MAX_COUNT": os.environ.get("LN_CORE_MAX_COUNT_ICARUS", "48"),
        }
    else:
        env = {
            "LN_CORE_CASES": os.environ.get("LN_CORE_CASES", "40"),
            "LN_CORE_MAX_COUNT": os.environ.get("LN_CORE_MAX_COUNT", "96"),
        }
    env["LN_COVERAGE_FILE"] = str(BUILD_ROOT / f"coverage_core_{sim}_{params}.yml")
    _run(
        sim,
        PARAM_SETS[params],
        "core_corners,core_errors,core_reset,core_small,core_context,core_random",
        env,
        modules="test_core_corners,test_core",
    )


@pytest.mark.skipif(
    not REGRESS, reason="long randomized regression: set LIGHTNORM_REGRESS=1 (make regress)"
)
def test_core_regress_coverage() -> None:
    """Merge the coverage databases of the regression runs above and print every bin.

    Runs last (pytest keeps file order). Fails if a bin of the merged database was never hit.
    """
    import yaml
    from lightnorm_tb.runner import BUILD_ROOT

    files = sorted(BUILD_ROOT.glob("coverage_core_*.yml"))
    assert files, "no coverage database: run the test_core_regress cases first"
    merged: dict[str, dict[str, int]] = {}
    for f in files:
        for name, item in (yaml.safe_load(f.read_text()) or {}).items():
            bins = item.get("bins:_hits") if isinstance(item, dict) else None
            if bins is None:
                continue
            dst = merged.setdefault(name, {})
            for b, hits in bins.items():
                dst[str(b)] = dst.get(str(b), 0) + int(hits)
    lines = [
        f"merged functional coverage of {len(files)} runs: " + ", ".join(f.name for f in files)
    ]
    holes = []
    total = hit = 0
    for name in sorted(merged):
        lines.append(f"  {name}")
        for b, hits in merged[name].items():
            lines.append(f"      {b:<40} {hits:6d}")
            total += 1
            hit += hits > 0
            if hits == 0:
                holes.append(f"{name}:{b}")
    lines.append(f"  {hit} of {total} bins hit ({100.0 * hit / max(total, 1):.1f} %)")
    if holes:
        lines.append("  holes: " + ", ".join(holes))
    print("\n".join(lines))
    assert not holes, f"coverage holes: {holes}"
