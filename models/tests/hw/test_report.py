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


def test_storage_model_built_latch_builds() -> None:
    """A build with a `_latch` twin gets the synthesized comparison; the twin no model row."""
    sb = {"statistics_file": 8, "running_statistics": 2, "accumulators": 6, "total": 16}
    summary = {
        "designs": {
            "x": {"area_um2": 2.0e6, "fmax_mhz": 160.0, "state_bits_per_channel": sb},
            "x_latch": {
                "area_um2": 1.5e6,
                "latches": 90,
                "fmax_mhz": 155.0,
                "state_bits_per_channel": sb,
            },
        }
    }
    m = report.storage_model(summary, channels=8)
    assert list(m["designs"]) == ["x"]
    b = m["designs"]["x"]["built"]
    assert b["latch_to_flop_core"] == 0.75
    assert b["register_file_bits_per_tile"] == 80
    assert b["saving_um2_per_bit"] == round(0.5e6 / 80, 1)
    md = "\n".join(report.storage_md(m))
    assert "| x | 2.00 | 1.50 | 0.750 | 80 |" in md
