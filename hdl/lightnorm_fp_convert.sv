// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_convert: format conversion res = quantize(a) from FP(InExpBits, InManBits) to
// FP(OutExpBits, OutManBits) (lightnorm.formats.quantize, docs/spec.md section 2).
// Combinational: the input significand and exponent go to lightnorm_round unchanged (exact,
// no sticky), which normalizes subnormal inputs, denormalizes below the output's smallest
// normal, rounds once and applies the overflow rule. NaN -> canonical NaN, +-Inf -> +-Inf
// (+-max_normal when saturating), zeros keep their sign. Widening conversions are exact.
//
// Ports:
//   input  logic [InExpBits+InManBits:0]   a_i    input {sign, exponent field, fraction}
//   input  logic                           rnd_i  0: RNE, 1: RTZ
//   input  logic                           sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [OutExpBits+OutManBits:0] res_o  quantize(a) in the output format

// PipeRegs (cvfpu's NumPipeRegs as the pattern): register stages before the result, as
// lightnorm_round places them: 0 combinational; 1 a register between the unpacked input
// and the rounder; 2 also one inside the rounder; 3 also one at the input. They load when
// en_i is 1; operands applied in cycle t give their result on res_o in cycle t + PipeRegs.
module lightnorm_fp_convert #(
  parameter int InExpBits  = 8,   // input exponent field width (2..8)
  parameter int InManBits  = 23,  // input fraction width (1..23)
  parameter int OutExpBits = 5,   // output exponent field width (2..8)
  parameter int OutManBits = 4,  // output fraction width (1..23)
  parameter int PipeRegs = 0     // register stages (0..3), see above
) (
  input  logic clk_i,   // pipeline registers (PipeRegs > 0)
  input  logic en_i,    // pipeline advance
  input  logic [InExpBits+InManBits:0]   a_i,
  input  logic                           rnd_i,
  input  logic                           sat_i,
  output logic [OutExpBits+OutManBits:0] res_o
);

  localparam int InBias = (1 << (InExpBits - 1)) - 1;
  localparam int SigW = InManBits + 1;
  // signed raw exponent: max(field, 1) - InBias - InManBits
  localparam int ExpWidth = InExpBits + $clog2(InManBits + 1) + 2;

  localparam logic [InExpBits-1:0] ExpOnes = {InExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  logic                 sign;
  logic [InExpBits-1:0] field;
  logic [InManBits-1:0] frac;
  logic [SigW-1:0]      sig;
  logic signed [ExpWidth-1:0] raw_exp;
  logic                 is_nan, is_inf;

  // rounder stages, and the input register (PipeRegs = 3)
  localparam int RoundRegs = (PipeRegs > 2) ? 2 : PipeRegs;
  logic [InExpBits+InManBits:0] a;
  logic                         rnd, sat;
  if (PipeRegs > 2) begin : g_in_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        {a, rnd, sat} <= {a_i, rnd_i, sat_i};
      end
    end
  end else begin : g_in_wire
    assign {a, rnd, sat} = {a_i, rnd_i, sat_i};
  end

  assign sign    = a[InExpBits+InManBits];
  assign field   = a[InManBits +: InExpBits];
  assign frac    = a[InManBits-1:0];
  assign sig     = {(field != '0), frac};
  assign raw_exp = $signed(ExpWidth'((field == '0) ? InExpBits'(1) : field))
                 - ExpWidth'(InBias + InManBits);
  assign is_nan  = (field == ExpOnes) && (frac != '0);
  assign is_inf  = (field == ExpOnes) && (frac == '0);

  lightnorm_round #(
    .ExpBits (OutExpBits),
    .ManBits (OutManBits),
    .SigWidth(SigW),
    .ExpWidth(ExpWidth),
    .PipeRegs(RoundRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (en_i),
    .sign_i  (sign),
    .sig_i   (sig),
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
    if (InExpBits < 2 || InExpBits > 8 || OutExpBits < 2 || OutExpBits > 8)
      $fatal(1, "lightnorm_fp_convert: exponent widths %0d, %0d not in 2..8",
             InExpBits, OutExpBits);
    if (InManBits < 1 || InManBits > 23 || OutManBits < 1 || OutManBits > 23)
      $fatal(1, "lightnorm_fp_convert: fraction widths %0d, %0d not in 1..23",
             InManBits, OutManBits);
  end
`endif

endmodule
