# SPDX-License-Identifier: Apache-2.0
"""The synthesis flow's bookkeeping (lightnorm.hw.synth): stat parsing, hierarchy sums, and one
small real Yosys + OpenSTA run whose per-module sums must equal Yosys's own totals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lightnorm.hw import synth

LOG = """
5. Printing statistics.

=== $paramod$abc\\leaf ===

   Number of cells:                  3
     $_AND_                          2
     $_DFF_P_                        1

   Estimated number of transistors:         28

=== top ===

   Number of cells:                  3
     $_NOT_                          1
     $paramod$abc\\leaf              2

   Estimated number of transistors:          2+

=== design hierarchy ===

   top                               1
     $paramod$abc\\leaf              2

   Number of cells:                  5
     $_AND_                          4
     $_DFF_P_                        2
     $_NOT_                          1

   Estimated number of transistors:         58
"""


def test_parse_and_hierarchy_sums() -> None:
    mods, totals = synth.parse_stats(LOG)
    assert mods == {
        "$paramod$abc\\leaf": {"$_AND_": 2, "$_DFF_P_": 1},
        "top": {"$_NOT_": 1, "$paramod$abc\\leaf": 2},
    }
    assert totals["Estimated number of transistors"] == "58"
    own = {
        m: float(sum(n * synth.CMOS_TRANSISTORS.get(c, 0) for c, n in cells.items()))
        for m, cells in mods.items()
    }
    assert own == {"$paramod$abc\\leaf": 28.0, "top": 2.0}
    assert synth.hier_sum(mods, own)["top"] == 58.0
    assert synth.instance_counts(mods, "top") == {"top": 1, "$paramod$abc\\leaf": 2}
    assert synth.base_name("$paramod$abc\\leaf") == "leaf"
    assert synth.base_name("$paramod\\lightnorm_round\\ExpBits=5") == "lightnorm_round"


@pytest.mark.skipif(
    shutil.which("yosys") is None or shutil.which("sta") is None,
    reason="yosys / sta not installed (make tools)",
)
def test_small_block_end_to_end(tmp_path, monkeypatch) -> None:
    # make test extracts the OSU018 cells first (make tools): a missing Liberty file is a
    # broken set-up, not a reason to skip.
    synth.liberty()
    monkeypatch.setattr(synth, "RUNS", tmp_path)
    d = synth.Design("t_fp_mul", "lightnorm_fp_mul", {"ExpBits": 4, "ManBits": 3}, clock=None)
    r = synth.synthesize(d)  # raises if the per-module sums differ from Yosys's totals
    assert r["area_um2"] > 0 and r["transistors"] > 0 and r["flops"] == 0
    assert 0 < r["fmax_mhz"] < 10_000 and r["power_mw"] > 0
    # the rounder is not one of KEEP_MODULES: flattened into the multiplier before mapping
    assert "lightnorm_round" not in synth.KEEP_MODULES
    assert not [b for b in r["blocks"].values() if b["module"] == "lightnorm_round"]
    assert "lightnorm_round" not in (tmp_path / "t_fp_mul" / "mapped.v").read_text()
    again = synth.synthesize(d)  # cached: same numbers without re-running Yosys
    assert again["yosys_reused"] and again["area_um2"] == r["area_um2"]


@pytest.mark.skipif(
    shutil.which("yosys") is None or shutil.which("sta") is None,
    reason="yosys / sta not installed (make tools)",
)
def test_latch_register_file_flow(tmp_path, monkeypatch) -> None:
    """A register file in both storage variants: the latch build is mapped onto OSU018's LATCH
    (its area from the LEF, not the Liberty's 0), its latches counted apart from the flops,
    fmax from the paths into flip-flops and outputs, and it is smaller than the flop build."""
    synth.liberty()
    monkeypatch.setattr(synth, "RUNS", tmp_path)
    words, width = 16, 8
    res = {}
    for impl in (0, 1):
        d = synth.Design(
            f"t_rf{impl}",
            "lightnorm_regfile",
            {"Words": words, "Width": width, "NumRead": 2, "Impl": impl},
        )
        res[impl] = synth.synthesize(d, sta_blocks=False)
    flop, latch = res[0], res[1]
    assert flop["flops"] == words * width and flop["latches"] == 0
    # a latch per bit and a clock-gate latch per word; one write-data register
    assert latch["latches"] == words * width + words and latch["flops"] == width
    mapped = (tmp_path / "t_rf1" / "mapped.v").read_text()
    assert mapped.count("LATCH ") == latch["latches"]
    lef = synth.lef_areas(("LATCH",))["LATCH"]
    assert lef > 0 and synth.liberty_areas(synth.liberty())["LATCH"] == 0
    assert latch["area_um2"] >= latch["latches"] * lef
    assert latch["area_um2"] < flop["area_um2"]
    # the write into a latch borrows time; the clock gates' enables meet their check
    assert 0 < latch["latch_borrow_ns"] < synth.PERIOD_NS / 2
    assert latch["clock_gating_slack_ns"] > 0
    assert 0 < latch["fmax_mhz"] < 10_000 and "latch_borrow_ns" not in flop


def test_clock_gating_flow(tmp_path, monkeypatch) -> None:
    """Clock gating in the flow (Design.clock_gating): the flip-flop register file's words
    each get one clock gate (the enables of a word's bits merged), the hold multiplexers go,
    and the gated netlist equals the ungated one cycle by cycle on random writes and reads
    (both replayed by lightnorm.hw.gatesim, whose gate model is checked against Icarus)."""
    from lightnorm.hw import activity, gatesim

    lib = synth.liberty()
    monkeypatch.setattr(synth, "RUNS", tmp_path)
    # 32 words of 20 bits: a write-data bit reaches 32 D pins and a gated clock 20 clock pins,
    # both over the flow's fan-out limit (buffer trees after ABC, synth.buffer_fanout)
    words, width = 32, 20
    params = {"Words": words, "Width": width, "NumRead": 2, "Impl": 0}
    res = {
        cg: synth.synthesize(
            synth.Design(f"t_cg{int(cg)}", "lightnorm_regfile", params, clock_gating=cg),
            sta_blocks=False,
        )
        for cg in (False, True)
    }
    plain, gated = res[False], res[True]
    assert plain["clock_gates"] == 0 and gated["clock_gates"] == words
    assert gated["flops"] == plain["flops"] == words * width
    mapped = (tmp_path / "t_cg1" / "mapped.v").read_text()
    assert mapped.count(f"{synth.ICG} ") == words and mapped.count("LATCH ") == 1  # the gate's
    assert plain["fanout_buffers"] == 0 < gated["fanout_buffers"]
    assert gated["area_um2"] < plain["area_um2"]  # a gate per word instead of a mux per bit
    assert 0 < gated["fmax_mhz"] < 10_000 and gated["clock_gating_slack_ns"] is not None
    cells = activity.liberty_cells(lib)
    rng = np.random.default_rng(5)
    n = 400
    stim = {
        "we_i": rng.integers(0, 2, (n, 1)),
        "waddr_i": rng.integers(0, 2, (n, 5)),
        "wdata_i": rng.integers(0, 2, (n, width)),
        "raddr_i": rng.integers(0, 2, (n, 10)),
    }
    outs = {}
    for cg, label in ((False, "t_cg0"), (True, "t_cg1")):
        flat = gatesim.flatten(tmp_path / label / "mapped_sta.v", "lightnorm_regfile", cells)
        assert set(flat.inputs) == set(stim)
        trans, outs[cg] = flat.simulate(
            {k: v.astype(np.uint8) for k, v in stim.items()}, np.ones(n, dtype=bool)
        )
        if cg:
            # every flip-flop on a gate; its clock toggles twice per cycle it is enabled
            assert (flat.ff_icg >= 0).all() and len(flat.icg_inst) == words
            assert len(flat.gclk_tree) >= words  # each gated clock buffered
            assert 0 < trans[flat.icg_gclk].sum() < 2 * n * words
    # the words hold X-free values once written: compare after every word has been written
    first = 200
    assert (outs[True]["rdata_o"][first:] == outs[False]["rdata_o"][first:]).all()


def test_clean_netlist_splits_left_concatenations(tmp_path) -> None:
    """OpenSTA reads no `assign { ... } = ...`: each becomes one assign per bit, a bare
    identifier taking its width from its declaration in the same module (scalar or bus)."""
    src = tmp_path / "mapped.v"
    src.write_text(
        "module a(res_o, b_i);\n"
        "  output [15:0] res_o;\n"
        "  input [1:0] b_i;\n"
        "  wire \\g.sign ;\n"
        "  assign { res_o[15], res_o[2:0] } = { \\g.sign , 3'b010 };\n"
        "  assign { res_o[5:4], res_o[3] } = { b_i, 1'b1 };\n"
        "endmodule\n"
        "module b(q_o);\n"
        "  output [2:0] q_o;\n"
        "  wire [1:0] \\g.sign ;\n"
        "  assign { q_o[0], q_o[2:1] } = { 1'b0, \\g.sign  };\n"
        "endmodule\n"
    )
    dst = tmp_path / "mapped_sta.v"
    synth.clean_netlist(src, dst)
    text = dst.read_text()
    assert "assign {" not in text
    for line in (
        "assign res_o[15] = \\g.sign ;",
        "assign res_o[2] = 1'b0;",
        "assign res_o[1] = 1'b1;",
        "assign res_o[0] = 1'b0;",
        "assign res_o[5] = b_i[1];",
        "assign res_o[4] = b_i[0];",
        "assign res_o[3] = 1'b1;",
        "assign q_o[0] = 1'b0;",
        "assign q_o[2] = \\g.sign [1];",
        "assign q_o[1] = \\g.sign [0];",
    ):
        assert line in text, line


def test_state_bits_per_channel():
    """The per-channel state of docs/hardware.md section 3's table, from the RTL defaults."""
    from lightnorm.hw.report import state_bits

    v1 = state_bits("lightnorm_core", {})
    assert v1 == {
        "accumulators": 2 * (59 + 3),
        "chunk_extremes": 2 * 8 * 10,
        "arg_found_flags": 2,
        "statistics_file": 13 * 10,
        "running_statistics": 2 * 32,
        "total": 480,
    }
    assert state_bits("lightnorm_core", synth.STAT_V2)["total"] == 558
    base = state_bits("bn_fp32_core", {})  # FP32 sums, no chunk extremes
    assert base == {
        "accumulators": 64,
        "statistics_file": 13 * 32,
        "running_statistics": 64,
        "total": 544,
    }
    assert state_bits("lightnorm_core", {"NumChunks": 4})["chunk_extremes"] == 80
