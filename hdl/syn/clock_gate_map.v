// Yosys techmap (lightnorm.hw.synth, clock_gating=True): an enabled flip-flop becomes a
// clock gate (lightnorm_icg, hdl/syn/clock_gate.v) and a flip-flop without an enable;
// `opt_merge -share_all` then leaves one gate per enable signal.
module \$_DFFE_PP_ (input D, input C, input E, output Q);
  wire gclk;
  lightnorm_icg icg (.clk_i(C), .en_i(E), .gclk_o(gclk));
  \$_DFF_P_ _TECHMAP_REPLACE_ (.D(D), .C(gclk), .Q(Q));
endmodule

module \$_DFFE_PN0P_ (input D, input C, input R, input E, output Q);
  wire gclk;
  lightnorm_icg icg (.clk_i(C), .en_i(E), .gclk_o(gclk));
  \$_DFF_PN0_ _TECHMAP_REPLACE_ (.D(D), .C(gclk), .R(R), .Q(Q));
endmodule

module \$_DFFE_PN1P_ (input D, input C, input R, input E, output Q);
  wire gclk;
  lightnorm_icg icg (.clk_i(C), .en_i(E), .gclk_o(gclk));
  \$_DFF_PN1_ _TECHMAP_REPLACE_ (.D(D), .C(gclk), .R(R), .Q(Q));
endmodule
