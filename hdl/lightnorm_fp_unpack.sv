// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_unpack: operand decode shared by the reciprocal and rsqrt units
// (lightnorm_recip, lightnorm_rsqrt and their sequential forms). Splits a value of
// FP(ExpBits, ManBits) into its sign, the class flags and, for a finite nonzero value, the
// normalized form 1.frac_n_o * 2^exp_o: a subnormal input is normalized by its leading-zero
// count (frac * 2^(1 - Bias - M) = 1.xxx * 2^(-Bias - lz)). Purely combinational.
//
// Ports:
//   input  logic [ExpBits+ManBits:0]   v_i        {sign, exponent field, fraction}
//   output logic                       sign_o
//   output logic [ManBits-1:0]         frac_n_o   fraction of the normalized value
//   output logic signed [ExpWidth-1:0] exp_o      unbiased exponent of the normalized value
//   output logic                       is_zero_o  +-0
//   output logic                       is_inf_o   +-Inf
//   output logic                       is_nan_o   NaN

module lightnorm_fp_unpack #(
  parameter int ExpBits  = 5,   // E: exponent field width (2..8)
  parameter int ManBits  = 4,   // M: fraction width (1..23)
  parameter int ExpWidth = 12   // width of exp_o (holds 1 - Bias - ManBits .. Bias)
) (
  input  logic [ExpBits+ManBits:0]   v_i,
  output logic                       sign_o,
  output logic [ManBits-1:0]         frac_n_o,
  output logic signed [ExpWidth-1:0] exp_o,
  output logic                       is_zero_o,
  output logic                       is_inf_o,
  output logic                       is_nan_o
);

  localparam int Bias = (1 << (ExpBits - 1)) - 1;
  localparam int LzWidth = $clog2(ManBits + 1);

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  logic [ExpBits-1:0] field;
  logic [ManBits-1:0] frac;
  logic [LzWidth-1:0] lz;  // leading zeros of a subnormal fraction

  assign sign_o    = v_i[ExpBits+ManBits];
  assign field     = v_i[ManBits +: ExpBits];
  assign frac      = v_i[ManBits-1:0];
  assign is_nan_o  = (field == ExpOnes) && (frac != '0);
  assign is_inf_o  = (field == ExpOnes) && (frac == '0);
  assign is_zero_o = (field == '0) && (frac == '0);

  always_comb begin
    lz = LzWidth'(ManBits);
    for (int i = 0; i < ManBits; i++) begin
      if (frac[i]) lz = LzWidth'(ManBits - 1 - i);
    end
  end

  always_comb begin
    if (field == '0) begin
      frac_n_o = frac << (lz + 1'b1);  // drop the leading one
      exp_o    = -$signed(ExpWidth'(Bias)) - $signed(ExpWidth'(lz));
    end else begin
      frac_n_o = frac;
      exp_o    = $signed(ExpWidth'(field)) - ExpWidth'(Bias);
    end
  end

endmodule
