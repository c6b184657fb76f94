// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_regfile: a per-channel register file of the core: Words words of Width bits, one
// write port, NumRead combinational read ports. Synthesis flattens it into its parent before
// the memory is mapped (hw/synth.py), so a read port whose address is partly constant (the
// core's lane reads: a constant field and lane, a variable channel group) becomes a
// multiplexer over the words it can reach only.
// Impl selects how a word is built; every variant has the same cycle behaviour (lowRISC ibex's
// register-file variants are the pattern):
//   Impl = 0  flip-flops: a word is written at the clock edge after the cycle with we_i.
//   Impl = 1  latches: the write data is registered once for the whole file (wdata_q, at the
//             edge after we_i), and each word is a row of level-sensitive latches opened by its
//             own gated clock (a clock gate per word: an enable latch transparent while clk_i
//             is low, ANDed with clk_i) during the high phase of the cycle after we_i. A read in
//             that cycle sees the new word, as with flip-flops. A latch word needs no hold
//             multiplexer: per bit a latch instead of a flip-flop and its 2:1 multiplexer.
// The variants differ in area, energy and timing (a read of a latch word starts at its gated
// clock's rising edge and passes the latch), not in function; docs/hardware.md section 3 has
// the area model, and the core's tests run with either (lightnorm_core RegFile).
//
// Ports:
//   input  logic                    clk_i    clock
//   input  logic                    we_i     write word waddr_i with wdata_i (waddr_i < Words)
//   input  logic [AW-1:0]           waddr_i  write address
//   input  logic [Width-1:0]        wdata_i  write data
//   input  logic [NumRead*AW-1:0]   raddr_i  read address of port r at [r*AW +: AW] (< Words)
//   output logic [NumRead*Width-1:0] rdata_o word read by port r at [r*Width +: Width]

module lightnorm_regfile #(
  parameter int Words   = 64,  // words
  parameter int Width   = 16,  // bits per word
  parameter int NumRead = 1,   // combinational read ports
  parameter int Impl    = 0,   // 0 flip-flops, 1 latches with a clock gate per word
  // derived, do not override
  parameter int AW      = (Words > 1) ? $clog2(Words) : 1
) (
  input  logic                     clk_i,
  input  logic                     we_i,
  input  logic [AW-1:0]            waddr_i,
  input  logic [Width-1:0]         wdata_i,
  input  logic [NumRead*AW-1:0]    raddr_i,
  output logic [NumRead*Width-1:0] rdata_o
);

  logic [Width-1:0] mem [Words];

  for (genvar r = 0; r < NumRead; r++) begin : g_read
    assign rdata_o[r*Width +: Width] = mem[raddr_i[r*AW +: AW]];
  end

  if (Impl == 0) begin : g_flops
    always_ff @(posedge clk_i) begin
      if (we_i) begin
        mem[waddr_i] <= wdata_i;
      end
    end
  end else begin : g_latches
    // the write data, registered once for all words
    logic [Width-1:0] wdata_q;
    always_ff @(posedge clk_i) begin
      if (we_i) begin
        wdata_q <= wdata_i;
      end
    end

    // one clock gate per word: the enable is latched while clk_i is low (glitch-free), the
    // word's clock is clk_i while it is set
    logic [Words-1:0] wen, wen_l, wclk;
    for (genvar w = 0; w < Words; w++) begin : g_word
      assign wen[w] = we_i && (waddr_i == AW'(w));
      always_latch begin
        if (!clk_i) begin
          wen_l[w] = wen[w];
        end
      end
      assign wclk[w] = clk_i & wen_l[w];
      always_latch begin
        if (wclk[w]) begin
          mem[w] = wdata_q;
        end
      end
    end
  end

endmodule
