# SPDX-License-Identifier: Apache-2.0
"""lightnorm.hw.activity: the generated cell models equal the vendor's (Icarus, every input
combination of every combinational cell, random sequences for the sequential ones), and the
toggle / netlist / energy bookkeeping on small hand-made inputs."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from icarus_run import run_icarus

from lightnorm.hw import activity, synth


def _osu018() -> tuple[Path, Path]:
    try:
        lib = synth.liberty()
    except FileNotFoundError:
        pytest.skip("OSU018 cells not extracted: run `make tools`")
    return lib, lib.with_suffix(".v")


def test_liberty_expr():
    assert activity.liberty_expr("(!((A B)+C))") == "( ~ ( ( A & B ) | C ) )"
    assert activity.liberty_expr("((A^B)^C)") == "( ( A ^ B ) ^ C )"
    assert activity.liberty_expr("(!((S A) + (!S B)))") == "( ~ ( ( S & A ) | ( ~ S & B ) ) )"
    assert activity.liberty_expr("A*B|1") == "A & B | 1'b1"
    with pytest.raises(ValueError, match="postfix"):
        activity.liberty_expr("A'")
    with pytest.raises(ValueError, match="cannot parse"):
        activity.liberty_expr("A % B")


def test_liberty_cells_osu018():
    lib, _ = _osu018()
    cells = {c.name: c for c in activity.liberty_cells(lib)}
    assert cells["NAND2X1"].inputs == ("A", "B") and cells["NAND2X1"].outputs == {"Y": "(!(A B))"}
    assert set(cells["FAX1"].outputs) == {"YC", "YS"}
    ff = cells["DFFSR"].ff
    assert ff is not None and ff["clear"] == "(!R)" and ff["preset"] == "(!S)"
    assert cells["LATCH"].latch is not None and cells["TBUFX1"].three_state


def _stimulus(cell: activity.LibCell, rng: random.Random) -> list[dict[str, int]]:
    """Input vectors: all combinations (combinational), a random sequence (sequential)."""
    n = len(cell.inputs)
    if cell.ff is None and cell.latch is None:
        return [{p: (v >> i) & 1 for i, p in enumerate(cell.inputs)} for v in range(1 << n)]
    # one input changes per step (the clock falls, the other inputs change one by one while
    # it is low, then it rises): simultaneous changes would race in both models
    clk = "CLK"
    vec = {p: 0 for p in cell.inputs if p != clk}
    steps = []
    for _ in range(200):
        steps.append({clk: 0} | vec)
        for p in rng.sample(sorted(vec), len(vec)):
            vec = vec | {p: rng.randrange(2)}
            steps.append({clk: 0} | vec)
        steps.append({clk: 1} | vec)
    return steps


def test_cell_models_match_vendor(tmp_path):
    """Every output of every cell, generated model vs the vendor's UDP model, under Icarus."""
    lib, vendor = _osu018()
    rng = random.Random(12)
    cells = [c for c in activity.liberty_cells(lib) if c.outputs]
    (tmp_path / "gen.v").write_text(activity.cell_models(lib))
    # the vendor's modules renamed V_<cell> so that both sets live in one simulation
    vtext = re.sub(r"^(\s*module\s+)(\w+)", r"\1V_\2", vendor.read_text(), flags=re.M)
    (tmp_path / "vendor.v").write_text(vtext)
    tb = ["`timescale 1ns/1ps", "module tb;", "integer errors = 0;"]
    body = []
    for k, c in enumerate(cells):
        ins = [f"i{k}_{p}" for p in c.inputs]
        tb += [f"reg {n} = 0;" for n in ins]
        tb += [f"wire g{k}_{p}, v{k}_{p};" for p in c.outputs]
        conn_in = ", ".join(f".{p}(i{k}_{p})" for p in c.inputs)
        for side in ("g", "v"):
            mod = c.name if side == "g" else f"V_{c.name}"
            conn = ", ".join([conn_in] + [f".{p}({side}{k}_{p})" for p in c.outputs])
            tb.append(f"{mod} {side}{k} ({conn});")
        sequential = c.ff is not None or c.latch is not None
        for step, vec in enumerate(_stimulus(c, rng)):
            body.append(" ".join(f"i{k}_{p} = {v};" for p, v in vec.items()) + " #5;")
            if sequential and step < 6:
                continue  # the power-up state is undefined in both models
            for p in c.outputs:
                body.append(
                    f"if (g{k}_{p} !== v{k}_{p}) begin errors = errors + 1; "
                    f'$display("MISMATCH {c.name}.{p} in={vec} gen=%b vendor=%b", '
                    f"g{k}_{p}, v{k}_{p}); end"
                )
    tb += ["initial begin", "#5;", *body, '$display("ERRORS %0d", errors);', "$finish;", "end"]
    tb.append("endmodule")
    (tmp_path / "tb.v").write_text("\n".join(tb) + "\n")
    out = run_icarus(tmp_path, ["tb.v", "gen.v", "vendor.v"])
    assert "ERRORS 0" in out, out[-3000:]
    assert len(cells) >= 30  # every OSU018 logic cell was compared


NETLIST = """
module leaf(a, y);
  input a;
  output y;
  wire _1_;
  INVX1 _2_ (
    .A(a),
    .Y(_1_)
  );
  FAX1 _3_ (
    .A(a),
    .B(_1_),
    .C(a),
    .YC(\\q[0] ),
    .YS(y)
  );
endmodule
module top(clk, a, y);
  input clk;
  input a;
  output [1:0] y;
  leaf \\g[0].u ( .a(a), .y(y[0]) );
  leaf u1 ( .a(a), .y(y[1]) );
endmodule
"""


def test_module_paths_and_energy(tmp_path):
    net = tmp_path / "n.v"
    net.write_text(NETLIST)
    paths = activity.module_paths(net, "top")
    assert paths == {"": "top", "g[0].u": "leaf", "u1": "leaf"}
    powers = {  # P0, P1 (W) at a 10 ns clock: 1 pJ per transition per 1e-4 W
        "g\\[0\\].u/_2_": ("INVX1", 0.0, 1e-4),  # OpenSTA escapes the brackets
        "u1/_2_": ("INVX1", 0.0, 1e-4),
        "g\\[0\\].u/_3_": ("FAX1", 1e-5, 2e-4 + 1e-5),
        "u1/_3_": ("FAX1", 1e-5, 2e-4 + 1e-5),
    }
    trans = {"g[0].u/_2_": 10.0, "u1/_2_": 20.0, "g[0].u/_3_": 3.0, "u1/_3_": 1.0}
    e = activity.run_energy(powers, trans, paths, 100, 10.0)
    assert e["dynamic_pj"] == pytest.approx(10 + 20 + 2 * 3 + 2 * 1)
    # static: 1e-5 W x 100 cycles x 10 ns = 10 pJ per FAX1
    assert e["clock_and_leakage_pj"] == pytest.approx(20.0)
    assert set(e["per_block"]) == {"leaf"}
    e = activity.run_energy(powers, trans, paths, 100, 10.0, "u1")
    # the cells of the root and of everything outside it are the root's own cells
    assert e["per_block"] == {"(own cells)": pytest.approx({"dynamic_pj": 38.0, "static_pj": 20.0})}
    # no flip-flops named: ideal clock gating changes nothing
    assert e["energy_ideal_clock_gating_pj"] == pytest.approx(58.0)
    # u1/_3_ as a flip-flop whose output changes once in the 100 cycles: its P0 counts once
    e = activity.run_energy(powers, trans, paths, 100, 10.0, flops={"u1/_3_"})
    assert e["energy_pj"] == pytest.approx(58.0)
    assert e["energy_ideal_clock_gating_pj"] == pytest.approx(38.0 + 10.0 + 0.1)
    assert e["per_block_ideal_clock_gating"] == pytest.approx({"leaf": 10.1})
    # u1/_3_ behind a clock gate enabled in 30 of the 100 cycles, 2e-6 W of its P0 leakage:
    # leakage every cycle, the rest (clock pin) in the 30 cycles only
    leaky = dict(powers, **{"u1/_3_": ("FAX1", 1e-5, 2e-4 + 1e-5, 2e-6)})
    e = activity.run_energy(leaky, trans, paths, 100, 10.0, clocked={"u1/_3_": 30.0})
    assert e["clock_and_leakage_pj"] == pytest.approx(10.0 + 2.0 + 8e-6 * 30 * 10 * 1e3)
    assert e["dynamic_pj"] == pytest.approx(38.0)
    # a clock gate of the root counts among the root's own cells, not as a block
    e = activity.run_energy(
        {"icg0/u_and": ("AND2X2", 1e-5, 1e-5)},
        {"icg0/u_and": 0.0},
        {"": "top", "icg0": activity.ICG, "u1": "leaf"},
        10,
        10.0,
    )
    assert set(e["per_block"]) == {"(own cells)"}
    with pytest.raises(KeyError, match="not simulated"):
        activity.run_energy(powers, {"u1/_2_": 1.0}, paths, 1, 1.0)
    with pytest.raises(KeyError, match="without an OpenSTA power"):
        activity.run_energy({}, {"u1/_2_": 1.0}, paths, 1, 1.0)


def test_step_cycles_and_layer_cost(monkeypatch):
    """The report's schedule = the `make sim` ideals (the testbench's own formula, at n = 512,
    C = 40): 6967 and 9308 cycles with one cycle per channel-unit step and lane stage; plus,
    for LightNorm (ChanPipeRegs = 3, DpPipeRegs = 1), 3 cycles for each of its 7 FINALIZE and
    5 BWD_FINALIZE steps per channel, one cycle of fill per lane stage a streaming command
    passes (NORM, BWD_DX: 5; BWD_SUMS: 3), 2 cycles for the exact accumulators' two
    read-modify-write halves (STATS, BWD_SUMS) and 1 for the pack's register (NORM, BWD_DX);
    for the baseline (3, 3) 3 cycles for each of its 2 MEAN, 4 FINALIZE (its rsqrt step is
    longer anyway) and 5 BWD_FINALIZE steps per channel, 2 per channel for its rsqrt unit's
    rounder stages, 3 of fill per lane stage (VAR_SUMS, BWD_SUMS: 3; NORM, BWD_DX: 5) and 2
    for its accumulator adders' drain (STATS, VAR_SUMS, BWD_SUMS); with one group (C = 16)
    and AccPipeRegs = 2 its accumulating commands take 3 cycles per position; tiles, context
    and energy bookkeeping of a layer."""
    from lightnorm.hw import report

    core, base = report.hdl_defaults("lightnorm_core"), report.hdl_defaults("bn_fp32_core")
    assert (core["ChanPipeRegs"], core["DpPipeRegs"]) == (3, 1)
    assert (base["ChanPipeRegs"], base["DpPipeRegs"], base["AccPipeRegs"]) == (3, 3, 2)
    ln = report.step_cycles("lightnorm_core", 512, 40)
    assert ln == 6967 + 40 * 3 * (7 + 5) + 5 + 3 + 5 + 2 + 2 + 1 + 1
    bl = report.step_cycles("bn_fp32_core", 512, 40)
    assert bl == 9308 + 40 * 3 * (2 + 4 + 5) + 40 * 2 + 3 * (3 + 5 + 3 + 5) + 2 * 3
    # one group (C = 16): STATS, VAR_SUMS and BWD_SUMS at 3 cycles per position instead of 1
    one = report.step_cycles("bn_fp32_core", 512, 16)
    monkeypatch.setitem(report.ACC_LOOP, "bn_fp32_core", 1)
    assert one == report.step_cycles("bn_fp32_core", 512, 16) + 3 * 511 * 2
    act = {
        "n_per_channel": 10,
        "channels": 2,
        "cycles": 100,
        "clock_and_leakage_pj": 200.0,  # 2 pJ per cycle
        "per_block": {
            "lightnorm_datapath": {"dynamic_pj": 40.0, "static_pj": 0.0},  # 2 pJ per value
            "lightnorm_chan_unit": {"dynamic_pj": 6.0, "static_pj": 0.0},  # 3 pJ per channel
            "(own cells)": {"dynamic_pj": 100.0, "static_pj": 0.0},  # 1 pJ per cycle
        },
    }
    c = report.layer_cost("lightnorm_core", act, 4, 130)  # tiles of 64, 64, 2 channels
    assert c["tiles"] == 3
    cyc = sum(report.step_cycles("lightnorm_core", 4, ct) for ct in (64, 64, 2))
    ctx = 2 * report.CONTEXT_WORDS["lightnorm_core"] * 130
    assert c["cycles"] == cyc + ctx and c["context_cycles"] == ctx
    assert c["energy_pj"] == pytest.approx(3.0 * (cyc + ctx) + 2.0 * 4 * 130 + 3.0 * 130)


def _fake_activity(energy: float) -> dict:
    return {
        "layer": "sim_main: shape=(8, 40, 8, 8)",
        "elements": 20480,
        "channels": 40,
        "n_per_channel": 512,
        "rtl_values_checked": 10,
        "rtl_mismatches": 0,
        "gate_output_mismatch_cycles": {"out_mant_o": 0, "busy_o": 0},
        "gate_cells": 100,
        "gate_flops": 10,
        "cycles": 6973,
        "energy_pj": energy,
        "clock_and_leakage_pj": energy / 2,
        "energy_pj_per_element": energy / 20480,
        "average_power_mw": energy / 69730,
        "gate_sim_s": 1.0,
        "per_block": {
            "lightnorm_datapath": {"dynamic_pj": energy / 4, "static_pj": 0.0},
            "lightnorm_chan_unit": {"dynamic_pj": energy / 8, "static_pj": 0.0},
            "(own cells)": {"dynamic_pj": energy / 8, "static_pj": energy / 2},
        },
    }


def test_report_activity_section_and_networks():
    """The report's activity section and per-network costs render from activity results."""
    from lightnorm.hw import report

    s = {
        "activity": {"lightnorm_core": _fake_activity(1e6), "bn_fp32_core": _fake_activity(2e6)},
        "designs": {"lightnorm_core": {"fmax_mhz": 35.0}, "bn_fp32_core": {"fmax_mhz": 34.0}},
    }
    s["network_costs"] = report.network_costs(s)
    for net in ("resnet18", "mobilenet_v2"):
        row = s["network_costs"][net]
        assert row["lightnorm_core"]["tiles"] == row["bn_fp32_core"]["tiles"] > row["bn_layers"]
        assert 0 < row["ratios"]["energy"] < 1  # half the energy per unit, fewer passes
        assert row["lightnorm_core"]["time_ms_at_fmax"] > 0
    text = "\n".join(report.activity_md(s))
    assert "| lightnorm_core | 110 | 10 | 0 | 0 | 6973 | 1000.0 |" in text
    assert "resnet18" in text and "mobilenet_v2" in text
    s["activity"]["bn_fp32_core"] = {"status": "not measured: x"}
    assert "not measured: x" in "\n".join(report.activity_md(s))
