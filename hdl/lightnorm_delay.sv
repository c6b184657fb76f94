// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_delay: Depth register stages (a shift register loaded when en_i is 1) for the
// values that travel alongside a pipelined operator (cvfpu's NumPipeRegs pattern): q_o is d_i
// of Depth enabled cycles ago; Depth = 0 is a wire (clk_i and en_i unused). No reset: the
// valid bits of the core's pipeline say which stages hold a beat.
//
// Ports:
//   input  logic             clk_i  clock
//   input  logic             en_i   shift
//   input  logic [Width-1:0] d_i    value in
//   output logic [Width-1:0] q_o    value out, Depth shifts later

module lightnorm_delay #(
  parameter int Width = 1,  // bits per stage
  parameter int Depth = 0   // register stages (0: a wire)
) (
  input  logic             clk_i,
  input  logic             en_i,
  input  logic [Width-1:0] d_i,
  output logic [Width-1:0] q_o
);

  if (Depth == 0) begin : g_wire
    assign q_o = d_i;
    logic unused_clk;
    assign unused_clk = ^{clk_i, en_i};
  end else if (Depth == 1) begin : g_one
    logic [Width-1:0] q;
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        q <= d_i;
      end
    end
    assign q_o = q;
  end else begin : g_chain
    logic [Depth*Width-1:0] q;  // stage s at [s*Width +: Width], stage 0 loaded from d_i
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        q <= {q[(Depth-1)*Width-1:0], d_i};
      end
    end
    assign q_o = q[(Depth-1)*Width +: Width];
  end

`ifndef SYNTHESIS
  initial begin
    if (Width < 1) $fatal(1, "lightnorm_delay: Width %0d < 1", Width);
    if (Depth < 0) $fatal(1, "lightnorm_delay: Depth %0d < 0", Depth);
  end
`endif

endmodule
