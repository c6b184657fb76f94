// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_acc_round: the read of an exact accumulator, res = round(scale * acc *
// 2^(emin_acc - AccManBits)) in FP(ExpBits, ManBits) (lightnorm.arith.ExactSum.round(fmt,
// scale=...), docs/spec.md section 4). Combinational. acc_i is the signed fixed-point sum of
// elements of FP(AccExpBits, AccManBits) (LSB = that format's smallest subnormal, see
// lightnorm_fp_to_fixed; the element format, by default the result format); scale_i is an
// FP(ExpBits, ManBits) constant (1.0 for a plain read, inv_count for a mean) and the result is
// rounded to that format (the statistics format when it differs from the element format). The
// exact product |acc| * significand(scale) goes to lightnorm_round: one rounding.
// Zero results: the sign is sign(acc) xor sign(scale) with a zero acc or a zero scale counting
// as positive (the model: int total * float scale). Specials: NaN if acc_nan_i, if both
// acc_inf_i bits are set (+Inf and -Inf were summed), if scale is NaN, or for Inf * 0;
// otherwise an Inf accumulator (or an Inf scale with a nonzero acc) gives +-Inf
// (+-max_normal when saturating).
//
// Ports:
//   input  logic signed [AccWidth-1:0] acc_i      exact sum, LSB weight 2^(emin_acc - AccManBits)
//   input  logic [ExpBits+ManBits:0]   scale_i    constant factor {sign, exponent, fraction}
//   input  logic                       acc_nan_i  a NaN was accumulated
//   input  logic [1:0]                 acc_inf_i  {-Inf was accumulated, +Inf was accumulated}
//   input  logic                       rnd_i      0: RNE, 1: RTZ
//   input  logic                       sat_i      0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0]   res_o      round(scale * sum)

// PipeRegs (cvfpu's NumPipeRegs as the pattern): register stages before the result, as
// lightnorm_round places them: 0 combinational; 1 a register between the scaling multiplier
// and the rounder; 2 also one inside the rounder; 3 also one after the accumulator's
// magnitude |acc| (before the multiplier). They load when en_i is 1; operands applied in
// cycle t give their result on res_o in cycle t + PipeRegs.
module lightnorm_acc_round #(
  parameter int ExpBits    = 5,        // E: scale / result format exponent width (2..8)
  parameter int ManBits    = 4,        // M: scale / result format fraction width (1..23)
  parameter int AccWidth   = 55,       // accumulator width (two's complement)
  parameter int AccExpBits = ExpBits,  // element format of the accumulated values (the LSB
  parameter int AccManBits = ManBits,  // weight 2^(emin - AccManBits)): exponent, fraction
  parameter int PipeRegs = 0     // register stages (0..3), see above
) (
  input  logic clk_i,   // pipeline registers (PipeRegs > 0)
  input  logic en_i,    // pipeline advance
  input  logic signed [AccWidth-1:0] acc_i,
  input  logic [ExpBits+ManBits:0]   scale_i,
  input  logic                       acc_nan_i,
  input  logic [1:0]                 acc_inf_i,
  input  logic                       rnd_i,
  input  logic                       sat_i,
  output logic [ExpBits+ManBits:0]   res_o
);

  localparam int Bias = (1 << (ExpBits - 1)) - 1;
  localparam int AccBias = (1 << (AccExpBits - 1)) - 1;
  localparam int SigW = ManBits + 1;
  localparam int ProdW = AccWidth + SigW;
  localparam int EW = (AccExpBits > ExpBits) ? AccExpBits : ExpBits;
  localparam int MW = (AccManBits > ManBits) ? AccManBits : ManBits;
  // raw exponent: (1 - AccBias - AccManBits) + max(field, 1) - Bias - ManBits
  localparam int ExpWidth = EW + $clog2(MW + 1) + 3;

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  logic               acc_neg, acc_zero;
  logic [AccWidth-1:0] acc_mag;
  logic               s_sign;
  logic [ExpBits-1:0] s_field;
  logic [ManBits-1:0] s_frac;
  logic               s_nan, s_inf, s_zero;
  logic [ProdW-1:0]   prod;
  logic signed [ExpWidth-1:0] raw_exp;
  logic               res_sign;
  logic               is_nan, is_inf;
  logic               inf_in;

  // rounder stages, and the register after |acc| (PipeRegs = 3)
  localparam int RoundRegs = (PipeRegs > 2) ? 2 : PipeRegs;
  logic                     acc_neg_d, acc_zero_d;
  logic [AccWidth-1:0]      acc_mag_d;
  logic [ExpBits+ManBits:0] scale;
  logic                     acc_nan;
  logic [1:0]               acc_inf;
  logic                     rnd, sat;

  assign acc_neg_d  = acc_i[AccWidth-1];
  assign acc_zero_d = (acc_i == '0);
  // |acc|: the most negative value's magnitude 2^(AccWidth-1) still fits in AccWidth bits
  assign acc_mag_d  = acc_neg_d ? AccWidth'(-acc_i) : AccWidth'(acc_i);

  if (PipeRegs > 2) begin : g_mag_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        {acc_mag, acc_neg, acc_zero} <= {acc_mag_d, acc_neg_d, acc_zero_d};
        {scale, acc_nan, acc_inf, rnd, sat} <= {scale_i, acc_nan_i, acc_inf_i, rnd_i, sat_i};
      end
    end
  end else begin : g_mag_wire
    assign {acc_mag, acc_neg, acc_zero} = {acc_mag_d, acc_neg_d, acc_zero_d};
    assign {scale, acc_nan, acc_inf, rnd, sat} = {scale_i, acc_nan_i, acc_inf_i, rnd_i, sat_i};
  end

  assign s_sign  = scale[ExpBits+ManBits];
  assign s_field = scale[ManBits +: ExpBits];
  assign s_frac  = scale[ManBits-1:0];
  assign s_nan   = (s_field == ExpOnes) && (s_frac != '0);
  assign s_inf   = (s_field == ExpOnes) && (s_frac == '0);
  assign s_zero  = (s_field == '0) && (s_frac == '0);

  always_comb begin
    prod = ProdW'(acc_mag) * ProdW'({(s_field != '0), s_frac});
    raw_exp = $signed(ExpWidth'((s_field == '0) ? ExpBits'(1) : s_field))
            - ExpWidth'(Bias + ManBits + AccBias + AccManBits - 1);
    inf_in = acc_inf[0] | acc_inf[1];
    is_nan = acc_nan || (&acc_inf) || s_nan || (inf_in && s_zero)
          || (s_inf && acc_zero && !inf_in);
    is_inf = inf_in || s_inf;
    if (inf_in) begin
      res_sign = acc_inf[1] ^ s_sign;
    end else begin
      res_sign = acc_neg ^ (s_sign & ~s_zero);
    end
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(ProdW),
    .ExpWidth(ExpWidth),
    .PipeRegs(RoundRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (en_i),
    .sign_i  (res_sign),
    .sig_i   (prod),
    .exp_i   (raw_exp),
    .sticky_i(1'b0),
    .is_nan_i(is_nan),
    .is_inf_i(is_inf),
    .rnd_i   (rnd),
    .sat_i   (sat),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8 || AccExpBits < 2 || AccExpBits > 8)
      $fatal(1, "lightnorm_acc_round: ExpBits %0d, AccExpBits %0d not in 2..8", ExpBits,
             AccExpBits);
    if (AccWidth < 2) $fatal(1, "lightnorm_acc_round: AccWidth %0d < 2", AccWidth);
  end
`endif

endmodule
