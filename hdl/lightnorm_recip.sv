// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_recip: correctly rounded reciprocal res = round(1 / v) in FP(ExpBits, ManBits)
// (lightnorm.arith.recip, docs/spec.md section 3), without a divider. Combinational
// (PipeRegs = 0), or PipeRegs register stages in its rounder (see lightnorm_round).
// The input is normalized to v = (1 + f/2^M) * 2^e (a subnormal input by its leading-zero
// count); the table lightnorm_pkg::recip_entry(M, f) holds q and a sticky bit with
// 1 / (1 + f/2^M) = (q + delta) * 2^-W, W = M + 1 + TableGuardBits, so
// 1/v = (q + delta) * 2^(-W - e), which lightnorm_round rounds (subnormal and overflowing
// results included: the table's guard bits keep >= 2 bits below the rounding position).
// Specials: 1/+-0 = +-Inf, 1/+-Inf = +-0, NaN -> NaN. Tables exist for the fraction widths of
// the named formats up to lightnorm_pkg::TableMaxManBits.
//
// Ports:
//   input  logic                     clk_i  pipeline registers (PipeRegs > 0)
//   input  logic                     en_i   pipeline advance
//   input  logic [ExpBits+ManBits:0] v_i    operand {sign, exponent field, fraction}
//   input  logic                     rnd_i  0: RNE, 1: RTZ
//   input  logic                     sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0] res_o  round(1 / v)

module lightnorm_recip #(
  parameter int ExpBits = 5,  // E: exponent field width (2..8)
  parameter int ManBits = 4,  // M: fraction width (2..TableMaxManBits, a width with a table)
  parameter int PipeRegs = 0  // register stages (0..2): the rounder's (lightnorm_round)
) (
  input  logic                     clk_i,  // pipeline registers (PipeRegs > 0)
  input  logic                     en_i,   // pipeline advance
  input  logic [ExpBits+ManBits:0] v_i,
  input  logic                     rnd_i,
  input  logic                     sat_i,
  output logic [ExpBits+ManBits:0] res_o
);

  localparam int W = ManBits + 1 + lightnorm_pkg::TableGuardBits;  // table scale 2^-W
  localparam int QW = W + 1;                                      // q (2^W for f = 0)
  // signed exponents: e in [1 - Bias - ManBits, Bias], raw -W - e
  localparam int ExpWidth = ExpBits + $clog2(2 * ManBits + 8) + 2;

  logic               sign;
  logic [ManBits-1:0] frac_n;     // fraction of the normalized input
  logic signed [ExpWidth-1:0] e_in;  // unbiased exponent of the normalized input
  logic [lightnorm_pkg::TableEntryWidth-1:0] entry;  // {0..., q, sticky}, right-aligned
  logic [QW-1:0]      q;
  logic               sticky;
  logic signed [ExpWidth-1:0] raw_exp;
  logic               is_nan, is_zero, is_inf;

  lightnorm_fp_unpack #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .ExpWidth(ExpWidth)
  ) u_unpack (
    .v_i      (v_i),
    .sign_o   (sign),
    .frac_n_o (frac_n),
    .exp_o    (e_in),
    .is_zero_o(is_zero),
    .is_inf_o (is_inf),
    .is_nan_o (is_nan)
  );

  always_comb begin
    entry   = lightnorm_pkg::recip_entry(ManBits, lightnorm_pkg::TableMaxManBits'(frac_n));
    q       = entry[QW:1];
    sticky  = entry[0];
    raw_exp = -$signed(ExpWidth'(W)) - e_in;
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(QW),
    .ExpWidth(ExpWidth),
    .PipeRegs(PipeRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (en_i),
    .sign_i  (sign),
    .sig_i   (is_inf ? '0 : q),        // 1/Inf = 0 (signed)
    .exp_i   (raw_exp),
    .sticky_i(sticky & ~is_inf),
    .is_nan_i(is_nan),
    .is_inf_i(is_zero),                // 1/0 = Inf (signed)
    .rnd_i   (rnd_i),
    .sat_i   (sat_i),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8) $fatal(1, "lightnorm_recip: ExpBits %0d not in 2..8", ExpBits);
    if (lightnorm_pkg::recip_entry(ManBits, '0) == '0)
      $fatal(1, "lightnorm_recip: no reciprocal table for ManBits = %0d in lightnorm_pkg", ManBits);
  end
  // The table entry is right-aligned: the bits above {q, sticky} are zero.
  if (lightnorm_pkg::TableEntryWidth > QW + 1) begin : g_check_entry
    always @(*) begin
      if (entry[lightnorm_pkg::TableEntryWidth-1:QW+1] != '0) begin
        $error("lightnorm_recip: table entry 0x%0h wider than %0d bits", entry, QW + 1);
      end
    end
  end
`endif

endmodule
