// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_mul: correctly rounded multiplication res = round(a * b) in FP(ExpBits, ManBits)
// of operands a in FP(AExpBits, AManBits) and b in FP(BExpBits, BManBits) (lightnorm.arith.mul,
// docs/spec.md section 3: operand formats may differ from the result format). Combinational.
// The operand formats default to the result format. The (AManBits+1) x (BManBits+1)
// significand product is exact (no sticky bit) and its exponent is the sum of the operands'
// (each in its own bias); lightnorm_round normalizes it (subnormal operands included),
// denormalizes below the smallest normal of the result format and rounds once.
// Specials: NaN if an operand is NaN or for 0 * Inf; +-Inf if an operand is Inf; the sign is
// always sign(a) xor sign(b), zeros included.
//
// Ports:
//   input  logic [AExpBits+AManBits:0] a_i    operand a {sign, exponent field, fraction}
//   input  logic [BExpBits+BManBits:0] b_i    operand b
//   input  logic                       rnd_i  0: RNE, 1: RTZ
//   input  logic                       sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0]   res_o  round(a * b)

// PipeRegs (cvfpu's NumPipeRegs as the pattern): register stages before the result, as
// lightnorm_round places them: 0 combinational; 1 a register between the multiplier
// and the rounder; 2 also one inside the rounder. They load when en_i is 1; operands
// applied in cycle t give their result on res_o in cycle t + PipeRegs.
module lightnorm_fp_mul #(
  parameter int ExpBits  = 5,        // E: result exponent field width (2..8)
  parameter int ManBits  = 4,        // M: result fraction width (1..23)
  parameter int AExpBits = ExpBits,  // operand a exponent field width (2..8)
  parameter int AManBits = ManBits,  // operand a fraction width (1..23)
  parameter int BExpBits = ExpBits,  // operand b exponent field width (2..8)
  parameter int BManBits = ManBits,  // operand b fraction width (1..23)
  parameter int PipeRegs = 0     // register stages (0..2), see above
) (
  input  logic clk_i,   // pipeline registers (PipeRegs > 0)
  input  logic en_i,    // pipeline advance
  input  logic [AExpBits+AManBits:0] a_i,
  input  logic [BExpBits+BManBits:0] b_i,
  input  logic                       rnd_i,
  input  logic                       sat_i,
  output logic [ExpBits+ManBits:0]   res_o
);

  localparam int ABias = (1 << (AExpBits - 1)) - 1;
  localparam int BBias = (1 << (BExpBits - 1)) - 1;
  localparam int ProdW = AManBits + BManBits + 2;
  localparam int EW = (AExpBits > BExpBits) ? AExpBits : BExpBits;
  localparam int MW = (AManBits > BManBits) ? AManBits : BManBits;
  // signed raw exponent: max(fa,1) - ABias - AManBits + max(fb,1) - BBias - BManBits
  localparam int ExpWidth = EW + $clog2(MW + 1) + 3;

  // (Yosys 0.23 reads a '1 here as 1)
  localparam logic [AExpBits-1:0] AExpOnes = {AExpBits{1'b1}};
  localparam logic [BExpBits-1:0] BExpOnes = {BExpBits{1'b1}};

  logic                sa, sb;
  logic [AExpBits-1:0] fa;
  logic [BExpBits-1:0] fb;
  logic [AManBits-1:0] ma;
  logic [BManBits-1:0] mb;
  logic                a_nan, b_nan, a_inf, b_inf, a_zero, b_zero;
  logic [AManBits:0]   siga;
  logic [BManBits:0]   sigb;
  logic [ProdW-1:0]    prod;
  logic signed [ExpWidth-1:0] raw_exp;
  logic                is_nan, is_inf;

  assign sa = a_i[AExpBits+AManBits];
  assign sb = b_i[BExpBits+BManBits];
  assign fa = a_i[AManBits +: AExpBits];
  assign fb = b_i[BManBits +: BExpBits];
  assign ma = a_i[AManBits-1:0];
  assign mb = b_i[BManBits-1:0];
  assign a_nan  = (fa == AExpOnes) && (ma != '0);
  assign b_nan  = (fb == BExpOnes) && (mb != '0);
  assign a_inf  = (fa == AExpOnes) && (ma == '0);
  assign b_inf  = (fb == BExpOnes) && (mb == '0);
  assign a_zero = (fa == '0) && (ma == '0);
  assign b_zero = (fb == '0) && (mb == '0);

  always_comb begin
    siga = {(fa != '0), ma};
    sigb = {(fb != '0), mb};
    prod = ProdW'(siga) * ProdW'(sigb);
    // value = prod * 2^(max(fa,1) + max(fb,1) - (ABias + AManBits) - (BBias + BManBits))
    raw_exp = $signed(ExpWidth'((fa == '0) ? AExpBits'(1) : fa))
            + $signed(ExpWidth'((fb == '0) ? BExpBits'(1) : fb))
            - ExpWidth'(ABias + AManBits + BBias + BManBits);
    is_nan = a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
    is_inf = a_inf || b_inf;
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(ProdW),
    .ExpWidth(ExpWidth),
    .PipeRegs(PipeRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (en_i),
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
    if (ExpBits < 2 || ExpBits > 8 || AExpBits < 2 || AExpBits > 8 || BExpBits < 2 ||
        BExpBits > 8)
      $fatal(1, "lightnorm_fp_mul: exponent widths %0d, %0d, %0d not in 2..8", ExpBits,
             AExpBits, BExpBits);
    if (ManBits < 1 || ManBits > 23 || AManBits < 1 || AManBits > 23 || BManBits < 1 ||
        BManBits > 23)
      $fatal(1, "lightnorm_fp_mul: fraction widths %0d, %0d, %0d not in 1..23", ManBits,
             AManBits, BManBits);
  end
`endif

endmodule
