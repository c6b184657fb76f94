# SPDX-License-Identifier: Apache-2.0
"""`make sim`'s script with LN_RECORD (the input of the activity-based power in
lightnorm.hw.activity): the run stays bit-exact, and the recording holds every port of the
core from the reset on, one row per clock cycle, its busy cycles equal to the commands' cycles
the run reports.

Verilator only: the same run under Icarus takes ~25 min (docs/hardware.md section 8), and the
activity flow records under Verilator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

VERIF = Path(__file__).resolve().parent


def test_sim_main_records_ports(tmp_path):
    rec, summ = tmp_path / "ports.npz", tmp_path / "summary.json"
    env = dict(os.environ, SIM="verilator", DESIGN="lightnorm", LN_RECORD=str(rec))
    env["LN_SUMMARY"] = str(summ)
    env["PYTHONPATH"] = os.pathsep.join([str(VERIF.parent / "models"), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, str(VERIF / "sim_main.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=VERIF.parent,
    )
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, last
    assert "mismatches: 0" in last
    s = json.loads(summ.read_text())
    data = np.load(rec)
    names = {n for n in data.files if not n.endswith("__width")}
    ports = {"rst_ni", "cmd_valid_i", "in_mant_i", "out_mant_o", "busy_o", "stat_rdata_o"}
    assert ports <= names and "clk_i" not in names
    assert int(data["in_mant_i__width"]) == 16 * 5  # Lanes x BfpManBits
    rows = {len(data[n]) for n in names}
    assert len(rows) == 1
    rst = data["rst_ni"][:, 0] & 1
    assert rst[0] == 0 and rst[-1] == 1  # the reset is in the recording
    busy = int((data["busy_o"][:, 0] & 1).sum())
    assert busy > 0 and busy == sum(ph["cycles"] for ph in s["phases"])
