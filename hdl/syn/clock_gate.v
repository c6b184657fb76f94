// Clock gating for the synthesis flow (lightnorm.hw.synth, designs with clock_gating=True):
// every flip-flop with an enable becomes a plain flip-flop on a gated clock, and the flops
// that share an enable share one gate, as a synthesis tool's clock-gating insertion does.
//
// lightnorm_icg: a latch-based integrated clock gate from OSU018 cells (the library has no
// ICG cell): the enable is latched while the clock is low (LATCH is transparent while its
// CLK is high, hence the inverter), so the gated clock has no glitch; gclk_o = clk_i & en.
module lightnorm_icg (
  input  clk_i,
  input  en_i,
  output gclk_o
);
  wire clk_n, en_l;
  INVX1  u_inv (.A(clk_i), .Y(clk_n));
  LATCH  u_lat (.CLK(clk_n), .D(en_i), .Q(en_l));
  AND2X2 u_and (.A(clk_i), .B(en_l), .Y(gclk_o));
endmodule
