# SPDX-License-Identifier: Apache-2.0
"""Directed corner tests of lightnorm_core's statistics path, bit-exact against the model.

Special values placed at chunk granularity (docs/spec.md F2; the layers and their corners:
``lightnorm_tb.directed``): chunks entirely +Inf / -Inf, a +Inf maximum, a -Inf minimum, both
in one chunk or in two, NaN first / alone / last in a chunk, constant chunks, ties of the
maximum / minimum, -0 / +0 as the extreme, extremes in the remainder of the last chunk; the
same patterns on dy for the backward sums; the minimum n, one channel, C = Lanes and
C = Lanes + 1. Every directed layer runs a training step with grad_mode bn (OP_STATS,
OP_FINALIZE, OP_NORM, OP_BWD_SUMS, OP_BWD_FINALIZE, OP_BWD_DX) and the backward pass again
with range_exact, every output bit and every exposed statistic scoreboarded (exact equality).

cocotb test (inside the simulator):
  core_corners  the directed layers named in LN_CORNER_LAYERS (default all); writes what it
                found per layer and per corner to LN_CORNER_REPORT (JSON) and, with
                LN_COVERAGE_FILE, the coverage database; fails on any mismatch.
pytest entry points (`make test`):
  test_core_corner[<sim>-<corner>]  one case per named corner and simulator: the first case of
                a simulator runs core_corners once for the layers of every selected corner
                (one build and one simulator run), each case then fails only if a mismatch
                touches its corner (``directed.corner_mismatches``). Verilator runs the product
                parameters (the build test_core_smoke uses); Icarus, ~100x slower on this core,
                runs the regression's small set l8k4e6m3 (Lanes 8, K 4, FP10 E6M3, BFP m4/e6),
                where C = Lanes and Lanes + 1 mean 8 and 9. LN_CORNER_PARAMS_ICARUS /
                LN_CORNER_PARAMS_VERILATOR = default | l8k4e6m3 choose another set.
  test_corner_layers[<params>]  no simulator: each directed layer holds its corners (the
                coverage bins each names are hit where it sits), the stored x and dy are the
                values written (no accidental rounding, no BFP-poisoned neighbour), both grad
                modes share the forward pass, and the layers together hit every chunk-level
                coverage bin.
The regression (test_core.py::test_core_regress) runs core_corners too, so the merged
functional coverage holds the chunk-level bins.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest

try:  # the cocotb part only exists inside a simulation
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None


# ---------------------------------------------------------------------------------------------
# cocotb test
# ---------------------------------------------------------------------------------------------
if cocotb is not None and cocotb.is_simulation:
    from lightnorm_tb import coverage
    from lightnorm_tb.core_tb import CoreTB, backward_step, training_step
    from lightnorm_tb.directed import corner_mismatches, directed_layers
    from lightnorm_tb.layers import expected
    from lightnorm_tb.scoreboard import Scoreboard

    def _write(path: str | None, report: dict[str, Any]) -> None:
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)
            os.replace(tmp, path)

    @cocotb.test()
    async def core_corners(dut):
        """Directed layers (LN_CORNER_LAYERS, default all): bn training step + range_exact
        backward, scoreboarded; per-corner report in LN_CORNER_REPORT."""
        tb = CoreTB(dut, random.Random(cocotb.RANDOM_SEED))
        await tb.start()
        p = tb.p
        wanted = [s for s in os.environ.get("LN_CORNER_LAYERS", "").split(",") if s.strip()]
        out = os.environ.get("LN_CORNER_REPORT")
        report: dict[str, Any] = {"params": asdict(p), "layers": {}, "corners": {}}
        checked = 0
        failed: list[str] = []
        for dl in directed_layers(p, [s.strip() for s in wanted] or None):
            sb = Scoreboard(tb.log)
            entry: dict[str, Any] = {"completed": False, "error": None}
            report["layers"][dl.name] = entry
            try:
                for i, layer in enumerate(dl.modes()):
                    tb.log.info("%s", layer.describe())
                    exp = expected(layer)
                    if i == 0:
                        await training_step(tb, sb, layer, exp)
                    else:
                        await backward_step(tb, sb, layer, exp)
                    coverage.sample_layer(layer, exp, p)
                entry["completed"] = True
            except Exception as e:  # recorded for the pytest cases, then re-raised
                entry["error"] = f"{type(e).__name__}: {e}"
                raise
            finally:
                entry["checked"] = sb.checked
                entry["mismatches"] = len(sb.mismatches)
                per = corner_mismatches(dl, sb.mismatches, p.num_chunks)
                for c in dl.corners:
                    report["corners"][c.name] = {
                        "layer": dl.name,
                        "what": c.what,
                        "mismatches": [str(m) for m in per[c.name]],
                    }
                _write(out, report)
            checked += sb.checked
            tb.log.info("%s: %s", dl.name, sb.summary())
            failed += [c.name for c in dl.corners if per[c.name]]
        for name, c in report["corners"].items():
            tb.log.info(
                "corner %-28s %-13s %s", name, c["layer"], "FAIL" if c["mismatches"] else "ok"
            )
        cov = os.environ.get("LN_COVERAGE_FILE")
        if cov:
            coverage.export(cov)
        tb.log.info("%d values checked; replay with SEED=%d", checked, cocotb.RANDOM_SEED)
        assert not failed, f"corners with mismatches: {', '.join(failed)}"


# ---------------------------------------------------------------------------------------------
# pytest entry points
# ---------------------------------------------------------------------------------------------
from lightnorm_tb.directed import LAYER_NAMES, corner_names  # noqa: E402

#: corner name -> directed layer (the same for every parameter set)
CORNERS = corner_names()
SIMS = ("icarus", "verilator")
#: Parameter set (test_core.PARAM_SETS) of each simulator's corner run in `make test`.
CORNER_PARAMS = {"icarus": "l8k4e6m3", "verilator": "default"}


def _param_set(sim: str) -> str:
    return os.environ.get(f"LN_CORNER_PARAMS_{sim.upper()}", CORNER_PARAMS[sim])


def _selected_layers(session: pytest.Session, sim: str) -> list[str]:
    """The directed layers holding the corners of this session's selected cases for ``sim``."""
    layers = set()
    for item in session.items:
        cs = getattr(item, "callspec", None)
        if getattr(item, "originalname", "") == "test_core_corner" and cs is not None:
            if cs.params.get("sim") == sim:
                layers.add(CORNERS[cs.params["corner"]])
    return [n for n in LAYER_NAMES if n in layers]


def _run_corners(sim: str, layers: list[str]) -> dict[str, Any]:
    """One simulator run of core_corners over ``layers``; its JSON report (plus _run info)."""
    from lightnorm_tb.buildenv import verilator_make_fix
    from lightnorm_tb.runner import BUILD_ROOT, run_cocotb
    from test_core import PARAM_SETS

    pset = _param_set(sim)
    params = PARAM_SETS[pset]
    path = BUILD_ROOT / f"corners_{sim}_{pset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    env = {f"LN_PARAM_{k}": v for k, v in params.items()}
    env.update(LN_CORNER_LAYERS=",".join(layers), LN_CORNER_REPORT=str(path))
    error = None
    try:
        with verilator_make_fix(sim):
            run_cocotb(
                "lightnorm_core",
                "test_core_corners",
                params,
                sim=sim,
                extra_env=env,
                testcase="core_corners",
            )
    except SystemExit as e:  # runner.test() exits when a cocotb test failed
        error = f"the simulation failed (exit {e.code}); see its log above"
    report: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    report["run"] = {"sim": sim, "params": pset, "error": error}
    return report


@pytest.fixture(scope="module")
def corner_report(request: pytest.FixtureRequest) -> Any:
    """report(sim): the core_corners report of ``sim``, run once per module and simulator."""
    reports: dict[str, dict[str, Any]] = {}

    def get(sim: str) -> dict[str, Any]:
        if sim not in reports:
            reports[sim] = _run_corners(sim, _selected_layers(request.session, sim))
        return reports[sim]

    return get


@pytest.mark.parametrize("corner", list(CORNERS))
@pytest.mark.parametrize("sim", SIMS)
def test_core_corner(sim: str, corner: str, corner_report: Any) -> None:
    """One directed corner, bit-exact in both gradient modes (shared simulator run)."""
    rep = corner_report(sim)
    run = rep["run"]
    where = f"{sim}, parameters {run['params']}"
    layer = CORNERS[corner]
    lay = rep.get("layers", {}).get(layer)
    assert lay is not None, f"layer {layer} did not run ({where}): {run['error']}"
    assert lay["completed"], f"layer {layer} stopped ({where}): {lay['error']}"
    entry = rep["corners"][corner]
    bad = entry["mismatches"]
    assert not bad, (
        f"{corner} ({entry['what']}; layer {layer}, {where}): {len(bad)} mismatches\n  "
        + "\n  ".join(bad[:10])
    )


def _cells_hit(dl: Any, exps: list[Any], p: Any, point: str, want: str, cells: Any) -> bool:
    """True if bin ``want`` of cover point ``point`` is hit in one of ``cells``."""
    from lightnorm_tb import coverage
    from lightnorm_tb.layers import shape_class

    if point == "core.shape":
        return want in shape_class(dl.channels, dl.count, p)
    for exp in exps:
        xs = coverage.channel_streams(exp.fwd.x_c)
        dys = coverage.channel_streams(exp.bwd.dy_c)
        for ch, chunks in cells:
            js = range(p.num_chunks) if chunks is None else chunks
            if point in ("core.chunk.x", "core.chunk.dy"):
                cls = coverage.chunk_classes(
                    (xs if point == "core.chunk.x" else dys)[ch], p.num_chunks
                )
                if any(want in cls[j] for j in js):
                    return True
            elif point == "core.range.flags":
                flags = coverage.range_flags(exp.fwd.chunk_max[ch], exp.fwd.chunk_min[ch])
                if flags == want:
                    return True
            elif point == "core.sum.dy":
                if coverage.sum_flags(dys[ch]) == want:
                    return True
            else:
                raise ValueError(f"no cell check for cover point {point}")
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN == NaN, and equal signs of zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    same_sign = np.array_equal(np.signbit(a), np.signbit(b))
    return bool(np.array_equal(a, b, equal_nan=True) and same_sign)


@pytest.mark.parametrize("params", ["default", "l8k4e6m3"])
def test_corner_layers(params: str) -> None:
    """The directed layers hold their corners (model only, no simulator)."""
    from lightnorm_tb import coverage
    from lightnorm_tb.directed import directed_layers
    from lightnorm_tb.layers import CoreParams, expected, shape_class
    from test_core import PARAM_SETS

    p = CoreParams.from_hdl(PARAM_SETS[params])
    union: dict[str, set[str]] = {"chunk_x": set(), "chunk_dy": set(), "range": set()}
    union["sum_dy"] = set()
    union["shape"] = set()
    for dl in directed_layers(p):
        exps = [expected(layer) for layer in dl.modes()]
        bn, rx = exps
        assert rx.bwd is not None and rx.bwd.correction is not None, dl.name
        assert _same(bn.fwd.y, rx.fwd.y) and _same(bn.fwd.scale, rx.fwd.scale), dl.name
        for layer, exp in zip(dl.modes(), exps, strict=True):
            assert _same(exp.fwd.x_c, layer.x), f"{dl.name}: stored x differs from x"
            assert _same(exp.bwd.dy_c, layer.dy), f"{dl.name}: stored dy differs from dy"
            for k, v in coverage.chunk_sample(exp, p.num_chunks).items():
                union[k] |= set(v)
        union["shape"] |= set(shape_class(dl.channels, dl.count, p))
        for corner in dl.corners:
            assert corner.cells and corner.bins, corner.name
            for point, want in corner.bins:
                assert _cells_hit(dl, exps, p, point, want, corner.cells), (
                    f"{corner.name} ({params}): bin {point}:{want} not hit in {corner.cells}"
                )
    missing = [f"chunk.x:{b}" for b in coverage.CHUNK_CLASSES if b not in union["chunk_x"]]
    missing += [f"chunk.dy:{b}" for b in coverage.CHUNK_CLASSES if b not in union["chunk_dy"]]
    missing += [f"range.flags:{b}" for b in coverage.RANGE_FLAGS if b not in union["range"]]
    missing += [f"sum.dy:{b}" for b in coverage.SUM_FLAGS if b not in union["sum_dy"]]
    missing += [
        f"shape:{b}" for b in ("C==1", "C==Lanes", "C==Lanes+1", "n==2K") if b not in union["shape"]
    ]
    assert not missing, f"chunk-level bins the directed layers miss ({params}): {missing}"
