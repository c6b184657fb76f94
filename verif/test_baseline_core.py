# SPDX-License-Identifier: Apache-2.0
"""bn_fp32_core (the conventional FP32 batch-norm baseline) against the reference model with the
"fp32-bn-seq" preset (FP32 sums accumulated sequentially), bit-exact, through the same
environment as the LightNorm core (verif/lightnorm_tb: stream driver / monitor with stalls,
scoreboard, CoreTB flows).

cocotb tests (run inside the simulator):
  baseline_smoke   two layers (C = 20 over two channel groups with n = 32; C = 7 < Lanes with
                   the minimal n = 2) through a full training step (STATS, VAR_SUMS, FINALIZE,
                   NORM, BWD_SUMS, BWD_FINALIZE, BWD_DX) and inference, random stalls, then an
                   inference-only layer with n = 1; every output bit and every exposed
                   statistic (S, mu, var, s, a, running statistics, d_gamma, d_beta, k_beta,
                   k_gamma) checked.
  baseline_errors  illegal configurations (C = 0, C > MaxChannels, n < 2, n = 0 for NORM,
                   n >= 2^CountWidth) are refused without consuming data; a legal layer after.
  baseline_context two layers and a layer wider than MaxChannels (two channel tiles) on one
                   core with per-layer contexts (lightnorm_tb.core_tb.network_step: contexts
                   saved after OP_FINALIZE, restored before OP_NORM and the backward into a
                   core filled with random bits; running statistics updated once).
  baseline_random  LN_CORE_CASES constrained-random layers (distributions, rounding, overflow,
                   shapes, stalls).
pytest entry points: test_baseline_core_smoke[icarus|verilator] (`make test`; Verilator also
runs baseline_context);
test_baseline_core_regress[icarus|verilator] with LIGHTNORM_REGRESS=1 (`make regress`).
SEED=<int> replays a run.
"""

from __future__ import annotations

import itertools
import os
import random

import pytest

try:  # the cocotb part only exists inside a simulation
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None

REGRESS = os.environ.get("LIGHTNORM_REGRESS", "").strip() in ("1", "true", "yes")


if cocotb is not None and cocotb.is_simulation:
    from lightnorm_tb.core_tb import (
        CoreTB,
        case_rng,
        check_errors,
        finish,
        inference,
        network_step,
        training_step,
    )
    from lightnorm_tb.layers import DISTRIBUTIONS, channel_tiles, expected, random_layer
    from lightnorm_tb.scoreboard import Scoreboard

    def _check_params(tb: CoreTB) -> None:
        p = tb.p
        got = (p.exp_bits, p.man_bits, p.variance, p.bfp_beats)
        assert got == (8, 23, 1, 0), f"not the FP32 variance baseline: {p}"

    @cocotb.test()
    async def baseline_smoke(dut):
        """Two layers, full training step and inference, random stalls; inference with n = 1."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        _check_params(tb)
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("baseline_smoke")
        layers = [
            # two channel groups (the second with padding lanes), n = 32
            random_layer(
                rng,
                p,
                "base_a",
                shape=(2, p.lanes + p.lanes // 4, 4, 4),
                dist_x="normal_offset",
                dist_dy="normal",
                stall="light",
                rounding="rne",
                overflow="inf",
            ),
            # C < Lanes, minimal n = 2 (constant channels: var = 0, s = rsqrt(eps))
            random_layer(
                rng,
                p,
                "base_b",
                shape=(2, p.lanes // 2 - 1, 1, 1),
                dist_x="all_equal_channel",
                dist_dy="heavy_tail",
                stall="heavy",
                rounding="rtz",
                overflow="saturate",
            ),
        ]
        for layer in layers:
            tb.log.info("%s", layer.describe())
            exp = expected(layer, p.lanes)
            await training_step(tb, sb, layer, exp)
            await inference(tb, sb, layer, exp)
        small = random_layer(
            rng, p, "base_infer", shape=(1, p.lanes + 1, 1, 1), dist_x="uniform", stall="light"
        )
        tb.log.info("%s (inference only)", small.describe())
        await inference(tb, sb, small, expected(small, p.lanes))
        finish(tb, sb)

    @cocotb.test()
    async def baseline_errors(dut):
        """Illegal configurations are refused without consuming data."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("baseline_errors")
        layer = random_layer(rng, p, "err", shape=(1, 3, 2, 2), dist_x="normal", stall="none")
        exp = expected(layer, p.lanes)
        cases = [
            ("STATS", 0, layer.count, 1, "no_channels"),
            ("FINALIZE", p.max_channels + 1, layer.count, 2, "too_many_channels"),
            ("VAR_SUMS", 0xFFFF, layer.count, 2, "too_many_channels"),
            ("STATS", 3, 1, 3, "count_small"),
            ("VAR_SUMS", 3, 1, 3, "count_small"),
            ("BWD_SUMS", 3, 1, 3, "count_small"),
            ("NORM", 3, 0, 3, "count_small"),
            ("STATS", 3, 1 << p.count_width, 4, "count_large"),
            ("VAR_SUMS", 3, 0xFFFFFFFF, 4, "count_large"),
        ]
        await check_errors(tb, sb, layer, exp, cases)
        finish(tb, sb)

    @cocotb.test()
    async def baseline_context(dut):
        """Per-layer contexts and channel tiles on the baseline."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        _check_params(tb)
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("baseline_context")
        wide = random_layer(
            rng, p, "bctx_c", shape=(1, p.max_channels + 3, 2, 2), dist_x="normal", stall="light"
        )
        layers = [
            random_layer(rng, p, "bctx_a", shape=(2, p.lanes + 3, 1, 3), stall="heavy"),
            random_layer(rng, p, "bctx_b", shape=(3, 5, 1, 1), stall="bursty"),
            *channel_tiles(wide, p.max_channels),
        ]
        for layer in layers:
            tb.log.info("%s", layer.describe())
        exps = [expected(layer, p.lanes) for layer in layers]
        await network_step(tb, sb, layers, exps)
        finish(tb, sb)

    @cocotb.test()
    async def baseline_random(dut):
        """Constrained-random layers (LN_CORE_CASES, default 12; n <= LN_CORE_MAX_COUNT)."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        sb = Scoreboard(tb.log)
        await tb.start()
        p = tb.p
        rng = case_rng("baseline_random")
        cases = int(os.environ.get("LN_CORE_CASES", "12"))
        max_count = int(os.environ.get("LN_CORE_MAX_COUNT", "64"))
        modes = list(itertools.product(("rne", "rtz"), ("inf", "saturate")))
        for i in range(cases):
            rnd, ovf = modes[i % len(modes)]
            layer = random_layer(
                rng,
                p,
                f"brand{i}",
                max_count=max_count,
                dist_x=DISTRIBUTIONS[i % len(DISTRIBUTIONS)],
                rounding=rnd,
                overflow=ovf,
            )
            tb.log.info("%s", layer.describe())
            exp = expected(layer, p.lanes)
            before = len(sb.mismatches)
            await training_step(tb, sb, layer, exp)
            await inference(tb, sb, layer, exp)
            if len(sb.mismatches) > before:
                tb.log.error("layer %s failed: %s", layer.name, layer.describe())
        finish(tb, sb)


# ---------------------------------------------------------------------------------------------
# pytest entry points
# ---------------------------------------------------------------------------------------------
def _run(
    sim: str, testcase: str, extra_env: dict | None = None, params: dict | None = None
) -> None:
    from lightnorm_tb.buildenv import verilator_make_fix
    from lightnorm_tb.layers import DESIGNS
    from lightnorm_tb.runner import run_cocotb

    toplevel, fixed = DESIGNS["baseline"]
    params = params or {}
    env = {f"LN_PARAM_{k}": v for k, v in {**fixed, **params}.items()}
    env.update(extra_env or {})
    with verilator_make_fix(sim):
        run_cocotb(
            toplevel, "test_baseline_core", params, sim=sim, extra_env=env, testcase=testcase
        )


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_baseline_core_smoke(sim: str) -> None:
    """Training step + inference on two layers and the illegal configurations; on Icarus
    with every operator combinational (ChanPipeRegs = DpPipeRegs = 0: one cycle per
    channel-unit step and lane stage), on Verilator with the default register stages."""
    tests = "baseline_smoke,baseline_errors"
    if sim == "verilator":
        _run(sim, tests + ",baseline_context")
    else:
        _run(sim, tests, params={"ChanPipeRegs": 0, "DpPipeRegs": 0})


@pytest.mark.skipif(
    not REGRESS, reason="long randomized regression: set LIGHTNORM_REGRESS=1 (make regress)"
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_baseline_core_regress(sim: str) -> None:
    """Constrained-random layers: LN_CORE_CASES (default 24) on Verilator,
    LN_CORE_CASES_ICARUS (default 4, n <= 32) on the much slower Icarus."""
    if sim == "icarus":
        env = {
            "LN_CORE_CASES": os.environ.get("LN_CORE_CASES_ICARUS", "4"),
            "LN_CORE_MAX_COUNT": os.environ.get("LN_CORE_MAX_COUNT_ICARUS", "32"),
        }
    else:
        env = {
            "LN_CORE_CASES": os.environ.get("LN_CORE_CASES", "24"),
            "LN_CORE_MAX_COUNT": os.environ.get("LN_CORE_MAX_COUNT", "64"),
        }
    _run(sim, "baseline_errors,baseline_context,baseline_random", env)
