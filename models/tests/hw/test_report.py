# SPDX-License-Identifier: Apache-2.0
"""lightnorm.hw.report's storage model: cell footprints from the OSU018 LEF (not the
Liberty, whose LATCH area is 0) and the flip-flop / latch-file areas of a tile's state."""

from __future__ import annotations

import re

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
    a = report.lef_areas(("DFFPOSX1", "MUX2X1", "LATCH", "AND2X1"))
    d = m["designs"]["x"]
    assert list(m["designs"]) == ["x"]
    assert d["bits_per_tile"] == 128
    assert d["flop_um2"] == round(128 * (a["DFFPOSX1"] + a["MUX2X1"]))
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
