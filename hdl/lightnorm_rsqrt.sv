// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_rsqrt: correctly rounded reciprocal square root res = round(1 / sqrt(v)) in
// FP(ExpBits, ManBits) (lightnorm.arith.rsqrt, docs/spec.md section 3), without a square-root
// array. Combinational (PipeRegs = 0), or PipeRegs register stages in its rounder (see
// lightnorm_round). The input is normalized to v = (1 + f/2^M) * 2^e (a subnormal input
// by its leading-zero count); with p = e mod 2 the table lightnorm_pkg::rsqrt_entry(M, {p, f})
// holds q and a sticky bit with 1 / sqrt((1 + f/2^M) * 2^p) = (q + delta) * 2^-W,
// W = M + 1 + TableGuardBits, so 1/sqrt(v) = (q + delta) * 2^(-W - (e - p)/2), which
// lightnorm_round rounds. Specials: rsqrt(+-0) = +Inf, rsqrt(+Inf) = +0, rsqrt(v < 0) = NaN
// (-Inf included), NaN -> NaN.
//
// Ports:
//   input  logic                     clk_i  pipeline registers (PipeRegs > 0)
//   input  logic                     en_i   pipeline advance
//   input  logic [ExpBits+ManBits:0] v_i    operand {sign, exponent field, fraction}
//   input  logic                     rnd_i  0: RNE, 1: RTZ
//   input  logic                     sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0] res_o  round(1 / sqrt(v))

module lightnorm_rsqrt #(
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
  localparam int QW = W + 1;                                      // q (2^W for p = f = 0)
  // signed exponents: e in [1 - Bias - ManBits, Bias], raw -W - (e - p)/2
  localparam int ExpWidth = ExpBits + $clog2(2 * ManBits + 8) + 2;

  logic               sign;
  logic [ManBits-1:0] frac_n;     // fraction of the normalized input
  logic signed [ExpWidth-1:0] e_in;    // unbiased exponent of the normalized input
  logic signed [ExpWidth-1:0] e_even;  // e - p (even)
  logic [lightnorm_pkg::TableEntryWidth-1:0] entry;  // {0..., q, sticky}, right-aligned
  logic [QW-1:0]      q;
  logic               sticky;
  logic signed [ExpWidth-1:0] raw_exp;
  logic               is_nan_in, is_nan, is_zero, is_inf, is_pinf;

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
    .is_nan_o (is_nan_in)
  );

  // NaN input, or a negative nonzero input (-Inf included)
  assign is_nan  = is_nan_in || (sign && !is_zero);
  assign is_pinf = is_inf && !sign;

  always_comb begin
    entry   = lightnorm_pkg::rsqrt_entry(ManBits,
                (lightnorm_pkg::TableMaxManBits + 1)'({e_in[0], frac_n}));
    q       = entry[QW:1];
    sticky  = entry[0];
    e_even  = e_in - $signed(ExpWidth'(e_in[0]));
    raw_exp = -$signed(ExpWidth'(W)) - (e_even >>> 1);
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
    .sign_i  (1'b0),
    .sig_i   (is_pinf ? '0 : q),       // rsqrt(+Inf) = +0
    .exp_i   (raw_exp),
    .sticky_i(sticky & ~is_pinf),
    .is_nan_i(is_nan),
    .is_inf_i(is_zero),                // rsqrt(+-0) = +Inf
    .rnd_i   (rnd_i),
    .sat_i   (sat_i),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8) $fatal(1, "lightnorm_rsqrt: ExpBits %0d not in 2..8", ExpBits);
    if (lightnorm_pkg::rsqrt_entry(ManBits, '0) == '0)
      $fatal(1, "lightnorm_rsqrt: no rsqrt table for ManBits = %0d in lightnorm_pkg", ManBits);
  end
  // The table entry is right-aligned: the bits above {q, sticky} are zero.
  if (lightnorm_pkg::TableEntryWidth > QW + 1) begin : g_check_entry
    always @(*) begin
      if (entry[lightnorm_pkg::TableEntryWidth-1:QW+1] != '0) begin
        $error("lightnorm_rsqrt: table entry 0x%0h wider than %0d bits", entry, QW + 1);
      end
    end
  end
`endif

endmodule
