// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_mul: correctly rounded multiplication res = round(a * b) in FP(ExpBits, ManBits)
// (lightnorm.arith.mul, docs/spec.md section 3). Combinational. The (ManBits+1) x (ManBits+1)
// significand product is exact (no sticky bit); lightnorm_round normalizes it (subnormal
// operands included), denormalizes below the smallest normal and rounds once.
// Specials: NaN if an operand is NaN or for 0 * Inf; +-Inf if an operand is Inf; the sign is
// always sign(a) xor sign(b), zeros included.
//
// Ports:
//   input  logic [ExpBits+ManBits:0] a_i    operand a {sign, exponent field, fraction}
//   input  logic [ExpBits+ManBits:0] b_i    operand b
//   input  logic                     rnd_i  0: RNE, 1: RTZ
//   input  logic                     sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0] res_o  round(a * b)

module lightnorm_fp_mul #(
  parameter int ExpBits = 5,  // E: exponent field width (2..8)
  parameter int ManBits = 4   // M: fraction width (1..23)
) (
  input  logic [ExpBits+ManBits:0] a_i,
  input  logic [ExpBits+ManBits:0] b_i,
  input  logic                     rnd_i,
  input  logic                     sat_i,
  output logic [ExpBits+ManBits:0] res_o
);

  localparam int Bias = (1 << (ExpBits - 1)) - 1;
  localparam int SigW = ManBits + 1;
  localparam int ProdW = 2 * SigW;
  // signed raw exponent: ea + eb - 2 * (Bias + ManBits), ea/eb the effective fields
  localparam int ExpWidth = ExpBits + $clog2(ManBits + 1) + 3;

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  logic               sa, sb;
  logic [ExpBits-1:0] fa, fb;
  logic [ManBits-1:0] ma, mb;
  logic               a_nan, b_nan, a_inf, b_inf, a_zero, b_zero;
  logic [SigW-1:0]    siga, sigb;
  logic [ProdW-1:0]   prod;
  logic signed [ExpWidth-1:0] raw_exp;
  logic               is_nan, is_inf;

  assign sa = a_i[ExpBits+ManBits];
  assign sb = b_i[ExpBits+ManBits];
  assign fa = a_i[ManBits +: ExpBits];
  assign fb = b_i[ManBits +: ExpBits];
  assign ma = a_i[ManBits-1:0];
  assign mb = b_i[ManBits-1:0];
  assign a_nan  = (fa == ExpOnes) && (ma != '0);
  assign b_nan  = (fb == ExpOnes) && (mb != '0);
  assign a_inf  = (fa == ExpOnes) && (ma == '0);
  assign b_inf  = (fb == ExpOnes) && (mb == '0);
  assign a_zero = (fa == '0) && (ma == '0);
  assign b_zero = (fb == '0) && (mb == '0);

  always_comb begin
    siga = {(fa != '0), ma};
    sigb = {(fb != '0), mb};
    prod = ProdW'(siga) * ProdW'(sigb);
    // value = prod * 2^(max(fa,1) + max(fb,1) - 2 * (Bias + ManBits))
    raw_exp = $signed(ExpWidth'((fa == '0) ? ExpBits'(1) : fa))
            + $signed(ExpWidth'((fb == '0) ? ExpBits'(1) : fb))
            - ExpWidth'(2 * (Bias + ManBits));
    is_nan = a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
    is_inf = a_inf || b_inf;
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(ProdW),
    .ExpWidth(ExpWidth)
  ) u_round (
    .sign_i  (sa ^ sb),
    .sig_i   (prod),
    .exp_i   (raw_exp),
    .sticky_i(1'b0),
    .is_nan_i(is_nan),
    .is_inf_i(is_inf),
    .rnd_i   (rnd_i),
    .sat_i   (sat_i),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8) $fatal(1, "lightnorm_fp_mul: ExpBits %0d not in 2..8", ExpBits);
    if (ManBits < 1 || ManBits > 23)
      $fatal(1, "lightnorm_fp_mul: ManBits %0d not in 1..23", ManBits);
  end
`endif

endmodule
