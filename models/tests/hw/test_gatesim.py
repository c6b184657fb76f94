# SPDX-License-Identifier: Apache-2.0
"""lightnorm.hw.gatesim against Icarus: a random hierarchical OSU018 netlist (every
combinational cell, plain and resettable flip-flops, vector ports, ranges, concatenations,
constants, assigns, escaped names) simulated on the Liberty-derived cell models
(``lightnorm.hw.activity.cell_models``, themselves checked against the vendor's), every
output bit of every cycle and every output's transition count compared."""

from __future__ import annotations

import random

import numpy as np
import pytest
from icarus_run import run_icarus

from lightnorm.hw import activity, gatesim, synth


def _cells():
    try:
        lib = synth.liberty()
    except FileNotFoundError:
        pytest.skip("OSU018 cells not extracted: run `make tools`")
    return lib, activity.liberty_cells(lib)


def _sub_module(cells, rng: random.Random, gated: bool = False) -> str:
    """`sub`: 8 inputs, 4 outputs; gates read earlier nets only and each flip-flop's D
    earlier nets only (no loops: X from the power-up state flushes out). `gated`: two clock
    gates (lightnorm_icg, hdl/syn/clock_gate.v) enabled by inputs, and most flip-flops on
    their gated clocks."""
    comb = [c for c in cells if not (c.ff or c.latch or c.three_state) and c.outputs]
    pool = [f"a[{i}]" for i in range(8)]
    decl, body = [], []
    k = 0

    def net() -> str:
        nonlocal k
        k += 1
        name = f"\\w{k}[0] " if k % 3 == 0 else f"_{k}_"
        decl.append(f"  wire {name};")
        return name

    clocks = ["clk"]
    if gated:
        for g, en in enumerate(("a[2]", "a[5]")):
            decl.append(f"  wire gclk{g};")
            body.append(
                f"  lightnorm_icg \\icg{g}.u  ( .clk_i(clk), .en_i({en}), .gclk_o(gclk{g}) );"
            )
            clocks.append(f"gclk{g}")
    for step in range(60):
        if step % 6 == 5:
            q = net()
            cell = "DFFSR" if step % 12 == 5 else "DFFPOSX1"
            extra = ", .R(rn), .S(1'b1)" if cell == "DFFSR" else ""
            clock = clocks[(step // 6) % len(clocks)]  # flip-flop k on clock k mod 3
            body.append(
                f"  {cell} _f{step}_ ( .CLK({clock}), .D({rng.choice(pool)}){extra}, .Q({q}) );"
            )
            pool.append(q)
            continue
        c = rng.choice(comb)
        conns = [f".{p}({rng.choice(pool[-12:])})" for p in c.inputs]
        outs = []
        for p in c.outputs:
            n = net()
            outs.append(n)
            conns.append(f".{p}({n})")
        body.append(f"  {c.name} \\c{step}.x  ( " + ", ".join(conns) + " );")
        pool += outs
    return "\n".join(
        [
            "module sub(clk, rn, a, y);",
            "  input clk;",
            "  input rn;",
            "  input [7:0] a;",
            "  output [3:0] y;",
            *decl,
            *body,
            f"  assign y = {{ {pool[-1]}, {pool[-2]}, {pool[-7]}, 1'b0 }};",
            "endmodule",
        ]
    )


TOP = """
module top(clk, rst_ni, in_i, out_o);
  input clk;
  input rst_ni;
  input [15:0] in_i;
  output [9:0] out_o;
  wire [3:0] y0;
  wire [3:0] y1;
  sub u0 ( .clk(clk), .rn(rst_ni), .a(in_i[7:0]), .y(y0) );
  sub \\g[1].u  ( .clk(clk), .rn(rst_ni), .a({ in_i[15:12], in_i[3:0] }), .y(y1) );
  assign out_o[3:0] = y0;
  assign out_o[7:4] = y1;
  assign out_o[9:8] = { y0[3], 1'b1 };
endmodule
"""


@pytest.mark.parametrize("gated", [False, True], ids=["clock", "clock_gates"])
def test_gatesim_matches_icarus(tmp_path, gated):
    lib, cells = _cells()
    rng = random.Random(3)
    net = tmp_path / "net.v"
    # gated: the flow's clock gate, its OSU018 cells simulated by Icarus event by event
    net.write_text(
        _sub_module(cells, rng, gated) + TOP + (synth.CLOCK_GATE.read_text() if gated else "")
    )
    (tmp_path / "cells.v").write_text(activity.cell_models(lib))
    n = 300
    rst = np.array([0] * 3 + [1] * (n - 3), dtype=np.uint8)
    vals = [rng.randrange(1 << 16) for _ in range(n)]
    mem = "\n".join(f"{r:01x}{v:04x}" for r, v in zip(rst, vals, strict=True))
    (tmp_path / "stim.hex").write_text(mem + "\n")
    # inputs change just after the rising edge, outputs are sampled at the falling edge (as
    # verif/sim_main.py records them)
    (tmp_path / "tb.v").write_text(
        f"""`timescale 1ns/1ps
module tb;
  reg clk = 0; reg rst_ni = 0; reg [15:0] in_i = 0; reg [19:0] stim [0:{n - 1}];
  wire [9:0] out_o; integer k;
  top dut (.clk(clk), .rst_ni(rst_ni), .in_i(in_i), .out_o(out_o));
  initial begin
    $readmemh("stim.hex", stim);
    for (k = 0; k < {n}; k = k + 1) begin
      #1 {{rst_ni, in_i}} = {{stim[k][16], stim[k][15:0]}};
      #4 clk = 0; $display("OUT %b", out_o);
      #5 clk = 1;
    end
    $finish;
  end
endmodule
"""
    )
    out = run_icarus(tmp_path, ["tb.v", "net.v", "cells.v"])
    rows = [ln.split()[1] for ln in out.splitlines() if ln.startswith("OUT ")]
    assert len(rows) == n

    flat = gatesim.flatten(net, "top", cells, clock="clk")
    assert set(flat.inputs) == {"rst_ni", "in_i"} and set(flat.outputs) == {"out_o"}
    assert len(flat.ff_q) == 2 * 10 and (flat.ff_clr >= 0).sum() == 2 * 5
    assert len(flat.icg_inst) == (4 if gated else 0)
    assert (flat.ff_icg >= 0).sum() == (2 * 6 if gated else 0)  # 10 flops: 4 + 3 + 3
    stim = {
        "rst_ni": rst[:, None],
        "in_i": np.array([[(v >> i) & 1 for i in range(16)] for v in vals], dtype=np.uint8),
    }
    trans, outs = flat.simulate(stim, np.ones(n, dtype=bool))
    got = ["".join(str(b) for b in row[::-1]) for row in outs["out_o"]]
    # from the first cycle without X in the Icarus outputs (the power-up state has flushed)
    first = next(k for k, r in enumerate(rows) if "x" not in r and k > 12)
    assert first < 40
    bad = [k for k in range(first, n) if rows[k] != got[k]]
    assert not bad, f"cycles {bad[:5]}: icarus {rows[bad[0]]} gatesim {got[bad[0]]}"
    assert got[first:] == rows[first:]
    # transitions of each output net = changes of the sampled output (from `first` on)
    flat2 = gatesim.flatten(net, "top", cells, clock="clk")
    count = np.zeros(n, dtype=bool)
    count[first + 1 :] = True
    trans, _ = flat2.simulate(stim, count)
    for bit, netid in enumerate(flat2.outputs["out_o"]):
        if netid < 2:
            continue  # a constant output bit
        ref = sum(rows[k][9 - bit] != rows[k - 1][9 - bit] for k in range(first + 1, n))
        assert trans[netid] == ref, bit
    # a gated clock toggles twice in each counted cycle whose enable (an input bit) is 1
    for i, en_bit in enumerate((2, 5, 2, 5) if gated else ()):
        lsb = 0 if i < 2 else 12 - 4  # \g[1].u's a = {in_i[15:12], in_i[3:0]}
        bit_of = en_bit if i < 2 or en_bit < 4 else en_bit + lsb
        ones = sum((vals[k] >> bit_of) & 1 for k in range(first + 1, n))
        assert trans[flat2.icg_gclk[i]] == 2 * ones


def test_gatesim_rejects_what_it_cannot_simulate(tmp_path):
    _, cells = _cells()
    net = tmp_path / "n.v"
    net.write_text(
        "module t(clk, a, y);\n  input clk;\n  input a;\n  output y;\n"
        "  DFFNEGX1 _1_ ( .CLK(clk), .D(a), .Q(y) );\nendmodule\n"
    )
    with pytest.raises(ValueError, match="positive-edge"):
        gatesim.flatten(net, "t", cells, clock="clk")
    net.write_text(
        "module t(clk, a, y);\n  input clk;\n  input a;\n  output y;\n  wire b;\n"
        "  NAND2X1 _1_ ( .A(a), .B(b), .Y(y) );\n  INVX1 _2_ ( .A(y), .Y(b) );\nendmodule\n"
    )
    with pytest.raises(ValueError, match="combinational loop"):
        gatesim.flatten(net, "t", cells, clock="clk")
