// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_bfp_unpack: reads one block-floating-point group (docs/spec.md section 5,
// lightnorm.bfp.bfp_unpack) into Lanes values of FP(ExpBits, ManBits):
// val[k] = quantize((-1)^sign[k] * mant[k] * 2^(E - BfpManBits + 1)), E = exp_i - bias, one
// lightnorm_round per lane (the identity unless the BFP grid is finer than the format's
// subnormals, or the group exponent exceeds the format's range). A group with the reserved
// all-ones exponent holds non-finite values: mant 0 is +-Inf (+-max_normal when saturating),
// any other mant is NaN. mant 0 with sign 1 is -0. Combinational.
// Lane k occupies bits [k*BfpManBits +: BfpManBits] of mant_i, bit k of sign_i and bits
// [k*(1+ExpBits+ManBits) +: 1+ExpBits+ManBits] of val_o.
//
// Ports:
//   input  logic [BfpExpBits-1:0]               exp_i   shared exponent field
//   input  logic [Lanes-1:0]                    sign_i  element signs
//   input  logic [Lanes*BfpManBits-1:0]         mant_i  element magnitudes (no implicit bit)
//   input  logic                                rnd_i   0: RNE, 1: RTZ
//   input  logic                                sat_i   0: overflow to Inf (IEEE), 1: saturate
//   output logic [Lanes*(1+ExpBits+ManBits)-1:0] val_o  the values in FP(ExpBits, ManBits)

module lightnorm_bfp_unpack #(
  parameter int Lanes      = 16,  // values per group (the BFP group size g)
  parameter int BfpManBits = 5,   // magnitude bits per element (2..16)
  parameter int BfpExpBits = 8,   // shared exponent field width (4..10)
  parameter int ExpBits    = 5,   // E of the element format (2..8)
  parameter int ManBits    = 4    // M of the element format (1..23)
) (
  input  logic [BfpExpBits-1:0]                exp_i,
  input  logic [Lanes-1:0]                     sign_i,
  input  logic [Lanes*BfpManBits-1:0]          mant_i,
  input  logic                                 rnd_i,
  input  logic                                 sat_i,
  output logic [Lanes*(1+ExpBits+ManBits)-1:0] val_o
);

  localparam int FpW = 1 + ExpBits + ManBits;
  localparam int BfpBias = (1 << (BfpExpBits - 1)) - 1;
  // raw exponent of a mant LSB: exp_i - BfpBias - BfpManBits + 1
  localparam int ExpWidth = BfpExpBits + $clog2(BfpManBits + 1) + 2;

  // Yosys 0.23 reads a '1 here as 1
  localparam logic [BfpExpBits-1:0] BfpExpOnes = {BfpExpBits{1'b1}};

  logic                       special;  // reserved exponent: Inf / NaN group
  logic signed [ExpWidth-1:0] raw_exp;

  assign special = (exp_i == BfpExpOnes);
  assign raw_exp = $signed(ExpWidth'(exp_i)) - ExpWidth'(BfpBias + BfpManBits - 1);

  for (genvar k = 0; k < Lanes; k++) begin : g_lane
    logic [BfpManBits-1:0] mant;
    assign mant = mant_i[k*BfpManBits +: BfpManBits];

    lightnorm_round #(
      .ExpBits (ExpBits),
      .ManBits (ManBits),
      .SigWidth(BfpManBits),
      .ExpWidth(ExpWidth)
    ) u_round (
      .clk_i   (1'b0),
      .en_i    (1'b0),
      .sign_i  (sign_i[k]),
      .sig_i   (special ? '0 : mant),
      .exp_i   (raw_exp),
      .sticky_i(1'b0),
      .is_nan_i(special && (mant != '0)),
      .is_inf_i(special && (mant == '0)),
      .rnd_i   (rnd_i),
      .sat_i   (sat_i),
      .res_o   (val_o[k*FpW +: FpW])
    );
  end

`ifndef SYNTHESIS
  initial begin
    if (Lanes < 1) $fatal(1, "lightnorm_bfp_unpack: Lanes %0d < 1", Lanes);
    if (BfpManBits < 2 || BfpManBits > 16)
      $fatal(1, "lightnorm_bfp_unpack: BfpManBits %0d not in 2..16", BfpManBits);
    if (BfpExpBits < 4 || BfpExpBits > 10)
      $fatal(1, "lightnorm_bfp_unpack: BfpExpBits %0d not in 4..10", BfpExpBits);
  end
`endif

endmodule
