// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_to_fixed: exact conversion of an FP(ExpBits, ManBits) value to the signed
// fixed-point format of LightNorm's accumulators (docs/spec.md section 4): LSB weight
// 2^(emin - ManBits), the smallest subnormal, so every finite value is an integer
// fixed_o = (-1)^s * {hidden, fraction} << (max(field, 1) - 1). Combinational. Needs
// AccWidth >= ManBits + 2^ExpBits - 1 (magnitude of max_normal plus a sign bit: 35 bits for
// fp10_e5m4); an accumulator of n values adds ceil(log2(n)) bits on top (55 for n <= 2^20).
// Non-finite inputs give fixed_o = 0 and raise nan_o / inf_o, which
// the accumulator ORs into its sticky NaN / +Inf / -Inf flags (the inputs of
// lightnorm_acc_round). -0 gives 0.
//
// Ports:
//   input  logic [ExpBits+ManBits:0]   a_i      value {sign, exponent field, fraction}
//   output logic signed [AccWidth-1:0] fixed_o  a / 2^(emin - ManBits), two's complement
//   output logic                       nan_o    a is NaN
//   output logic [1:0]                 inf_o    {a is -Inf, a is +Inf}

module lightnorm_fp_to_fixed #(
  parameter int ExpBits  = 5,   // E: exponent field width of the element format (2..8)
  parameter int ManBits  = 4,   // M: fraction width (1..23)
  parameter int AccWidth = 35   // fixed-point width, >= ManBits + 2^ExpBits - 1
) (
  input  logic [ExpBits+ManBits:0]   a_i,
  output logic signed [AccWidth-1:0] fixed_o,
  output logic                       nan_o,
  output logic [1:0]                 inf_o
);

  localparam int MagW = AccWidth - 1;  // magnitude bits (max_normal needs ManBits + 2^E - 2)

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  logic               sign;
  logic [ExpBits-1:0] field;
  logic [ManBits-1:0] frac;
  logic               special;
  logic [ExpBits-1:0] shift;
  logic [MagW-1:0]    mag;

  assign sign    = a_i[ExpBits+ManBits];
  assign field   = a_i[ManBits +: ExpBits];
  assign frac    = a_i[ManBits-1:0];
  assign special = (field == ExpOnes);

  always_comb begin
    shift = (field == '0) ? '0 : field - 1'b1;
    mag   = special ? '0 : (MagW'({(field != '0), frac}) << shift);
    fixed_o = sign ? -$signed({1'b0, mag}) : $signed({1'b0, mag});
  end

  assign nan_o = special && (frac != '0);
  assign inf_o = {special && (frac == '0) && sign, special && (frac == '0) && !sign};

`ifndef SYNTHESIS
  initial begin
    if (AccWidth < ManBits + (1 << ExpBits) - 1)
      $fatal(1, "lightnorm_fp_to_fixed: AccWidth %0d < ManBits + 2^ExpBits - 1 = %0d", AccWidth,
             ManBits + (1 << ExpBits) - 1);
  end
`endif

endmodule
