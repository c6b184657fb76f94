# SPDX-License-Identifier: Apache-2.0
"""lightnorm.hw.report's storage model: cell footprints from the OSU018 LEF (not the
Liberty, whose LATCH area is 0) and the flip-flop / latch-file areas of a tile's state."""

from __future__ import annotations

import re

import pytest

from lightnorm.hw import report


def test_lef_areas_are_the_lef_sizes() -> None:
    # make test extracts the OSU018 cells first (make tools): a missing file is a broken
    # set-up, not a reason to skip.
    text = report.liberty().with_suffix(".lef").read_text()
    m = re.search(r"MACRO LATCH\b.*?SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", text, re.S)
    assert m is not None
    a = report.lef_areas(("LATCH", "DFFPOSX1"))
    assert a["LATCH"] == float(m[1]) * float(m[2]) > 0
    # the latch's real footprint is smaller than a flip-flop's (and not the Liberty's 0)
    assert 0 < a["LATCH"] < a["DFFPOSX1"]


def test_storage_model_per_array() -> None:
    summary = {
        "designs": {
            "x": {"area_um2": 1.0e6, "state_bits_per_channel": {"a": 10, "b": 6, "total": 16}},
            "skipped": {"status": "not synthesized"},
        }
    }
    m = report.storage_model(summary, channels=8)
    a = report.lef_areas(("DFFPOSX1", "LATCH", "AND2X1", "AND2X2", "INVX1"))
    d = m["designs"]["x"]
    assert list(m["designs"]) == ["x"]
    assert d["bits_per_tile"] == 128
    # a flop per bit, a clock gate (hdl/syn/clock_gate.v) per word: 2 arrays x 8 channels
    icg = a["INVX1"] + a["LATCH"] + a["AND2X2"]
    assert d["flop_um2"] == round(128 * a["DFFPOSX1"] + 16 * icg)
    # per array: a latch per bit, one write-data word register, a clock gate per word
    gate = a["LATCH"] + a["AND2X1"]
    latch = sum(8 * w * a["LATCH"] + w * a["DFFPOSX1"] + 8 * gate for w in (10, 6))
    assert d["latch_um2"] == round(latch)
    assert d["flop_share_of_core"] == round(d["flop_um2"] / 1.0e6, 4)
    md = "\n".join(report.storage_md(m))
    assert "| x | 16 | 128 |" in md


def test_storage_model_built_file() -> None:
    """The synthesized statistics file in both variants: area per bit and the ratio."""
    fl = {"words": 4, "width": 5, "area_um2": 4000.0, "flops": 20, "latches": 0}
    lt = {"words": 4, "width": 5, "area_um2": 2000.0, "flops": 5, "latches": 24}
    lt["write_path"] = {"startpoint": "a", "endpoint": "b", "arrival_ns": 1.5, "slack_ns": 0.5}
    summary = {"designs": {}, "storage_builds": {"flops": fl, "latches": lt}}
    m = report.storage_model(summary, channels=8)
    b = m["built_file"]
    assert b["bits"] == 20 and b["latch_to_flop"] == 0.5
    assert b["flop_um2_per_bit"] == 200.0 and b["latch_um2_per_bit"] == 100.0
    md = "\n".join(report.storage_md(m))
    assert "Latch / flop area: **0.500**" in md
    assert "a → b, arrives at 1.50 ns" in md


def test_storage_model_core_with_latch_state() -> None:
    """The model's latch-file difference applied to each core, and the ratio of the two."""
    bits = {"a": 10, "total": 10}
    summary = {
        "designs": {
            "lightnorm_core": {"area_um2": 1.0e6, "state_bits_per_channel": bits},
            "bn_fp32_core": {"area_um2": 2.0e6, "state_bits_per_channel": bits},
        }
    }
    m = report.storage_model(summary, channels=8)
    ln, bl = m["designs"]["lightnorm_core"], m["designs"]["bn_fp32_core"]
    saved = ln["flop_um2"] - ln["latch_um2"]
    assert saved > 0
    assert ln["core_um2_latch_state"] == round(1.0e6 - saved)
    assert bl["core_um2_latch_state"] == round(2.0e6 - saved)
    assert m["area_ratio_latch_state"] == round((1.0e6 - saved) / (2.0e6 - saved), 4)
    assert f"**{m['area_ratio_latch_state']:.3f}**" in "\n".join(report.storage_md(m))


def _design(area: float, parts: dict[str, float]) -> dict:
    return {
        "area_um2": area,
        "values_per_cycle": 16,
        "area_parts": {k: {"area_share": v / area} for k, v in parts.items()},
    }


def _activity(elements: int, blocks: dict[str, tuple[float, float, float]]) -> dict:
    """blocks: {block: (dynamic, static, static with ideal clock gating)} in pJ."""
    return {
        "elements": elements,
        "energy_pj": sum(d + s for d, s, _ in blocks.values()),
        "energy_ideal_clock_gating_pj": sum(d + g for d, _, g in blocks.values()),
        "per_block": {b: {"dynamic_pj": d, "static_pj": s} for b, (d, s, _) in blocks.items()},
        "per_block_ideal_clock_gating": {b: g for b, (_, _, g) in blocks.items()},
    }


def test_ratio_by_block_adds_up_to_the_core_ratios() -> None:
    s = {
        "designs": {
            "lightnorm_core": _design(
                400.0,
                {
                    "lightnorm_datapath ×16": 100.0,
                    "lightnorm_stats": 200.0,
                    "own cells (registers, muxes, control)": 60.0,
                    "lightnorm_bfp_pack": 40.0,
                },
            ),
            "bn_fp32_core": _design(
                1000.0,
                {
                    "lightnorm_datapath ×16": 700.0,
                    "lightnorm_stats": 100.0,
                    "own cells (registers, muxes, control)": 200.0,
                },
            ),
        },
        "activity": {
            "lightnorm_core": _activity(
                10,
                {
                    "lightnorm_datapath": (10.0, 20.0, 2.0),
                    "lightnorm_stats": (5.0, 50.0, 5.0),
                    "(own cells)": (1.0, 9.0, 1.0),
                    "lightnorm_bfp_pack": (4.0, 1.0, 1.0),
                },
            ),
            "bn_fp32_core": _activity(
                20,
                {
                    "lightnorm_datapath": (100.0, 100.0, 10.0),
                    "lightnorm_stats": (20.0, 30.0, 5.0),
                    "(own cells)": (10.0, 40.0, 5.0),
                },
            ),
        },
    }
    rows = {r["block"]: r for r in report.ratio_by_block(s)}
    assert list(rows)[0] == "lightnorm_stats"  # largest LightNorm block first
    assert rows["lightnorm_stats"]["area_contribution"] == 0.2  # 200 / 1000
    assert rows["lightnorm_bfp_pack"]["area_baseline_um2"] is None
    assert rows["lightnorm_bfp_pack"]["energy_baseline_pj_per_element"] is None
    assert sum(r["area_contribution"] for r in rows.values()) == pytest.approx(0.4)
    # per element: LightNorm 100 pJ / 10, baseline 300 pJ / 20
    e_ratio = (100.0 / 10) / (300.0 / 20)
    assert sum(r["energy_contribution"] for r in rows.values()) == pytest.approx(e_ratio, abs=1e-3)
    gated = (29.0 / 10) / (150.0 / 20)  # dynamic 20 + gated 9; baseline 130 + 20
    assert sum(r["energy_contribution_ideal_clock_gating"] for r in rows.values()) == pytest.approx(
        gated, abs=1e-3
    )
    md = "\n".join(report.ratio_by_block_md(list(rows.values())))
    assert "**0.400**" in md and f"**{e_ratio:.3f}**" in md and f"**{gated:.3f}**" in md
    assert report.ratio_by_block({"designs": {}}) == []
