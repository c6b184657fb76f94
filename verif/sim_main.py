# SPDX-License-Identifier: Apache-2.0
"""`make sim`: one scoreboarded training step of a realistic BN layer on lightnorm_core
(or, with DESIGN=baseline, on bn_fp32_core, the conventional FP32 batch-norm baseline).

The layer is N=8, C=40 (not a multiple of the 16 lanes), H=W=8 (n = 512 values per channel),
conv-like activations (per-channel offsets and scales) and output gradients, numeric contract v2
(preset "lightnorm-v2": FP10 E5M4 elements, per-channel scalars in FP16 E8M7 (the core built
with StatExpBits = 8, StatManBits = 7), range BN K=8, dx = range_exact, BFP m5 g16, RNE). The
testbench reads the formats from the DUT and checks that they and the run-time modes make the
named preset before the run. The core runs OP_STATS, OP_FINALIZE,
OP_NORM, OP_BWD_SUMS, OP_BWD_FINALIZE and OP_BWD_DX; every output bit (x pass-through, y, dx)
and every exposed statistic is compared with lightnorm.reference. The script prints a readable
summary (per-phase cycles against the ideal) and, last, exactly one line

    values checked: <N>  mismatches: <M>  cycles: <C>  ideal: <I>

where cycles counts from each command's acceptance to its done_o pulse (summed over the six
commands) and ideal is the sum of the per-phase ideals: beats + pipeline fill for the
streaming phases (beats = n * ceil(C / Lanes)), the sequential unit's schedule for the
per-channel phases (C * (K + 7) and C * 5). The exit code is non-zero on any mismatch or
simulation failure.

DESIGN=lightnorm-v1 runs it on the core's default build (numeric contract v1, preset
"lightnorm-v1": FP10 E5M4 for everything, dx = bn). DESIGN=baseline runs the same layer on
bn_fp32_core with the "fp32-bn-seq" configuration (FP32, mean / variance statistics: OP_STATS,
OP_VAR_SUMS, OP_FINALIZE, ...; plain FP32 beats).

LN_RECORD=<file.npz> also records every top-level port of the DUT at every falling clock edge
(inputs and outputs, as little-endian bytes) and the port names, for the cycle-based gate-level
simulation of the activity-based power (lightnorm.hw.activity, lightnorm.hw.gatesim).

Environment: DESIGN=lightnorm|lightnorm-v1|baseline (default lightnorm), SIM=icarus|verilator
(default
icarus), SEED=<int> (replay), WAVES=1 (FST waves in
the build directory), STALL=none|light|heavy|bursty (random valid/ready stalls on the streams;
default none, so that the cycle count measures the core, not the testbench).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

VERIF_DIR = Path(__file__).resolve().parent
if str(VERIF_DIR) not in sys.path:
    sys.path.insert(0, str(VERIF_DIR))

try:
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None

SHAPE = (8, 40, 8, 8)


if cocotb is not None and cocotb.is_simulation:
    import random

    import numpy as np
    from lightnorm_tb.core_tb import CoreTB, training_step
    from lightnorm_tb.layers import Layer, core_config, expected
    from lightnorm_tb.scoreboard import Scoreboard

    from lightnorm.config import LightNormConfig

    def preset_config(p, preset: str) -> LightNormConfig:
        """The configuration the DUT computes with its parameters ``p`` and the run-time modes of
        ``preset``; it must be that preset (else the build does not implement it)."""
        want = LightNormConfig.from_preset(preset)
        cfg = core_config(
            p,
            rounding=want.rounding.value,
            overflow=want.overflow.value,
            grad_mode=want.grad_mode.value,
            range_constant=want.range_constant.value,
        )
        if cfg != want:
            raise ValueError(f"the DUT computes {cfg}, not preset {preset!r}: {want}")
        return cfg

    def realistic_layer(seed: int, p, stall: str, cfg: LightNormConfig) -> Layer:
        """Conv-like activations: per-channel offset and scale, a few outliers; BN parameters."""
        rng = np.random.default_rng([seed, 7])
        n, c, h, w = SHAPE
        off = rng.normal(0.0, 1.0, c)
        sc = 2.0 ** rng.uniform(-2, 2, c)
        x = rng.normal(0.0, 1.0, SHAPE) * sc[None, :, None, None] + off[None, :, None, None]
        x = np.where(rng.random(SHAPE) < 0.002, x * 8.0, x)
        dy = rng.normal(0.0, 0.05, SHAPE)
        return Layer(
            name="sim_main",
            shape=SHAPE,
            cfg=cfg,
            x=x,
            dy=dy,
            gamma=rng.normal(1.0, 0.2, c),
            beta=rng.normal(0.0, 0.2, c),
            running_mean=rng.normal(0.0, 0.5, c),
            running_var=np.abs(rng.normal(1.0, 0.3, c)),
            infer_mean=np.zeros(c),
            infer_var=np.ones(c),
            dist_x="conv_like",
            dist_dy="normal",
            stall=stall,
        )

    class PortRecorder:
        """Every top-level port's value at every falling clock edge (the stimulus and the
        expected outputs of a gate-level replay)."""

        def __init__(self, dut) -> None:
            from cocotb.triggers import FallingEdge

            self.names = sorted(
                h._name
                for h in dut
                if h._name.endswith(("_i", "_o", "_ni", "_no")) and not h._name.startswith("clk")
            )
            self.handles = [getattr(dut, n) for n in self.names]
            self.widths = [len(h) for h in self.handles]
            self.rows: list[list[int]] = []
            self._edge = FallingEdge(dut.clk_i)
            self._task = cocotb.start_soon(self._run())

        async def _run(self) -> None:
            while True:
                await self._edge
                self.rows.append([int(h.value) for h in self.handles])

        def save(self, path: Path) -> None:
            self._task.cancel()
            arrays = {}
            for j, (name, width) in enumerate(zip(self.names, self.widths, strict=True)):
                nbytes = (width + 7) // 8
                raw = b"".join(r[j].to_bytes(nbytes, "little") for r in self.rows)
                arrays[name] = np.frombuffer(raw, dtype=np.uint8).reshape(len(self.rows), nbytes)
                arrays[f"{name}__width"] = np.array(width)
            np.savez_compressed(path, **arrays)

    @cocotb.test()
    async def sim_main_step(dut):
        """One training step of the realistic layer, scoreboarded; summary to LN_SIM_SUMMARY."""
        seed = int(cocotb.RANDOM_SEED)
        stall = os.environ.get("LN_STALL", "none") or "none"
        tb = CoreTB(dut, random.Random(seed))
        sb = Scoreboard(tb.log)
        record = os.environ.get("LN_RECORD")
        rec = PortRecorder(dut) if record else None  # from the first clock edge (the reset)
        await tb.start()
        preset = os.environ.get("LN_PRESET", "") or "lightnorm-v2"
        layer = realistic_layer(seed, tb.p, stall, preset_config(tb.p, preset))
        tb.log.info("%s", layer.describe())
        exp = expected(layer, tb.p.lanes)
        await training_step(tb, sb, layer, exp)
        if rec is not None and record:
            rec.save(Path(record))
        tb.log.info("%s", sb.summary())
        first = sb.first()
        summary = {
            "seed": seed,
            "layer": layer.describe(),
            "shape": list(layer.shape),
            "lanes": tb.p.lanes,
            "num_chunks": tb.p.num_chunks,
            "variance": tb.p.variance,
            "preset": preset,
            "format": tb.p.fmt.name,
            "stat_format": tb.p.stat_fmt.name,
            "grad_mode": layer.cfg.grad_mode.value,
            "checked": sb.checked,
            "mismatches": len(sb.mismatches),
            "first_mismatch": str(first) if first else None,
            "phases": [
                {"op": t.op, "cycles": t.cycles, "ideal": t.ideal, "stall": t.stall}
                for t in tb.timings
            ],
        }
        out = os.environ.get("LN_SIM_SUMMARY")
        if out:
            Path(out).write_text(json.dumps(summary, indent=1) + "\n")
        assert not sb.mismatches, sb.summary()


def main() -> int:
    from cocotb_tools.check_results import get_results
    from lightnorm_tb.buildenv import verilator_make_fix
    from lightnorm_tb.layers import DESIGNS, V2_PARAMS
    from lightnorm_tb.runner import BUILD_ROOT, run_cocotb, sim_name

    # DESIGN -> (entry of DESIGNS: toplevel and its fixed parameters, build parameters, the
    # model preset the run must compute bit for bit)
    sim_designs: dict[str, tuple[str, dict[str, int], str]] = {
        "lightnorm": ("lightnorm", V2_PARAMS, "lightnorm-v2"),
        "lightnorm-v1": ("lightnorm", {}, "lightnorm-v1"),
        "baseline": ("baseline", {}, "fp32-bn-seq"),
    }
    sim = sim_name()
    design = os.environ.get("DESIGN", "") or "lightnorm"
    if design not in sim_designs:
        print(f"sim_main: DESIGN must be one of {sorted(sim_designs)}, got {design!r}")
        return 2
    entry, params, preset = sim_designs[design]
    toplevel, fixed = DESIGNS[entry]
    stall = os.environ.get("STALL", "none") or "none"
    summary_file = BUILD_ROOT / f"sim_main_{design}_{sim}.json"
    summary_file.parent.mkdir(parents=True, exist_ok=True)
    summary_file.unlink(missing_ok=True)
    if os.environ.get("LN_SUMMARY"):  # where the caller wants the summary (activity flow)
        summary_file = Path(os.environ["LN_SUMMARY"])
        summary_file.unlink(missing_ok=True)
    failed = 1
    results = None
    try:
        with verilator_make_fix(sim):
            env = {f"LN_PARAM_{k}": v for k, v in {**fixed, **params}.items()}
            env.update(
                {"LN_SIM_SUMMARY": str(summary_file), "LN_STALL": stall, "LN_PRESET": preset}
            )
            if os.environ.get("LN_RECORD"):
                env["LN_RECORD"] = os.environ["LN_RECORD"]
            results = run_cocotb(
                toplevel, "sim_main", params, sim=sim, extra_env=env, testcase="sim_main_step"
            )
        _, failed = get_results(Path(results))
    except Exception as e:  # build or simulator failure: still print the final line
        print(f"sim_main: simulation failed: {e}", file=sys.stderr)

    if not summary_file.exists():
        print(f"sim_main: no summary written by the simulation ({summary_file})")
        print("values checked: 0  mismatches: 1  cycles: 0  ideal: 0")
        return 1
    s = json.loads(summary_file.read_text())
    cycles = sum(ph["cycles"] for ph in s["phases"])
    ideal = sum(ph["ideal"] for ph in s["phases"])
    print()
    print(f"{toplevel} simulation ({sim}, SEED={s['seed']}, stalls: {stall})")
    print(f"  {s['layer']}")
    stats = "mean / variance" if s["variance"] else f"range, K = {s['num_chunks']}"
    print(
        f"  core: {s['lanes']} lanes, elements {s['format']}, per-channel {s['stat_format']}, "
        f"statistics {stats}, dx {s['grad_mode']} (preset {s['preset']})"
    )
    print(f"  {'phase':<14}{'cycles':>8}{'ideal':>8}{'overhead':>10}{'efficiency':>12}")
    for ph in s["phases"]:
        eff = 100.0 * ph["ideal"] / max(ph["cycles"], 1)
        over = ph["cycles"] - ph["ideal"]
        print(f"  {ph['op']:<14}{ph['cycles']:>8}{ph['ideal']:>8}{over:>10}{eff:>11.1f}%")
    eff = 100.0 * ideal / max(cycles, 1)
    print(f"  {'total':<14}{cycles:>8}{ideal:>8}{cycles - ideal:>10}{eff:>11.1f}%")
    if s["first_mismatch"]:
        print(f"  first mismatch: {s['first_mismatch']}")
    if results is not None and os.environ.get("WAVES", "") in ("1", "true", "yes"):
        for f in sorted(Path(results).parent.glob("*.fst")):
            print(f"  waves: {f}")
    checked, bad = s["checked"], s["mismatches"]
    print(f"values checked: {checked}  mismatches: {bad}  cycles: {cycles}  ideal: {ideal}")
    return 1 if (s["mismatches"] or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
