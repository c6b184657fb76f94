// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_widen: exact conversion of a value of FP(InExpBits, InManBits) to a format
// FP(OutExpBits, OutManBits) that holds every value of it (OutExpBits >= InExpBits,
// OutManBits >= InManBits, and with a wider exponent field every input subnormal is an output
// normal). No rounding: the value is re-encoded (lightnorm.formats.quantize to the wider format
// is the identity on it). Combinational. With equal exponent fields the fraction is extended by
// zeros (subnormals stay subnormal); with a wider exponent field a normal input is rebiased and a
// subnormal one normalized (lightnorm_fp_unpack). Zeros keep their sign, +-Inf stays +-Inf and a
// NaN stays a NaN (its fraction extended by zeros). With equal formats it is a wire.
// Used where an operand port of a mixed-format operator (lightnorm_fp_add, lightnorm_fp_mul)
// takes values of a narrower format (docs/hardware.md, "Formats").
//
// Ports:
//   input  logic [InExpBits+InManBits:0]   a_i    value {sign, exponent field, fraction}
//   output logic [OutExpBits+OutManBits:0] res_o  the same value in the output format

module lightnorm_fp_widen #(
  parameter int InExpBits  = 5,  // input exponent field width (2..8)
  parameter int InManBits  = 4,  // input fraction width (1..23)
  parameter int OutExpBits = 8,  // output exponent field width (InExpBits..8)
  parameter int OutManBits = 7   // output fraction width (InManBits..23)
) (
  input  logic [InExpBits+InManBits:0]   a_i,
  output logic [OutExpBits+OutManBits:0] res_o
);

  localparam int InBias  = (1 << (InExpBits - 1)) - 1;
  localparam int OutBias = (1 << (OutExpBits - 1)) - 1;
  localparam int Pad = OutManBits - InManBits;  // fraction bits appended
  localparam int OW = 1 + OutExpBits + OutManBits;

  if (OutExpBits == InExpBits) begin : g_same_exp
    // same bias and emin: append zeros to the fraction
    assign res_o = OW'(a_i) << Pad;
  end else begin : g_wider_exp
    // unbiased exponent of the normalized input: holds 1 - InBias - InManBits .. InBias and,
    // rebiased, 0 .. 2^OutExpBits - 1
    localparam int XW = OutExpBits + 2;
    localparam logic [OutExpBits-1:0] OutOnes = {OutExpBits{1'b1}};

    logic                  sign, is_zero, is_inf, is_nan;
    logic [InManBits-1:0]  frac_n;
    logic signed [XW-1:0]  e;
    logic [XW-1:0]         field;

    lightnorm_fp_unpack #(
      .ExpBits (InExpBits),
      .ManBits (InManBits),
      .ExpWidth(XW)
    ) u_unpack (
      .v_i      (a_i),
      .sign_o   (sign),
      .frac_n_o (frac_n),
      .exp_o    (e),
      .is_zero_o(is_zero),
      .is_inf_o (is_inf),
      .is_nan_o (is_nan)
    );

    always_comb begin
      field = XW'(e) + XW'(OutBias);
      if (is_zero) begin
        res_o = {sign, {(OutExpBits + OutManBits) {1'b0}}};
      end else if (is_inf || is_nan) begin
        // fraction unchanged: 0 for Inf, nonzero for NaN
        res_o = OW'({sign, OutOnes, a_i[InManBits-1:0]}) << Pad;
      end else begin
        res_o = OW'({sign, field[OutExpBits-1:0], frac_n}) << Pad;
      end
    end

    logic unused_field;
    assign unused_field = ^field[XW-1:OutExpBits];
  end

`ifndef SYNTHESIS
  initial begin
    if (InExpBits < 2 || OutExpBits > 8 || OutExpBits < InExpBits)
      $fatal(1, "lightnorm_fp_widen: exponent widths %0d -> %0d (need 2 <= in <= out <= 8)",
             InExpBits, OutExpBits);
    if (InManBits < 1 || OutManBits > 23 || OutManBits < InManBits)
      $fatal(1, "lightnorm_fp_widen: fraction widths %0d -> %0d (need 1 <= in <= out <= 23)",
             InManBits, OutManBits);
    if (OutExpBits > InExpBits && 1 - InBias - InManBits + OutBias < 1)
      $fatal(1, "lightnorm_fp_widen: FP(%0d, %0d) subnormals are not FP(%0d, %0d) normals",
             InExpBits, InManBits, OutExpBits, OutManBits);
  end
`endif

endmodule
