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
// and the rounder; 2 also one inside the rounder; 3 also one inside the multiplier (the two
// halves of the significand product, added in the next cycle). They load when en_i is 1;
// operands applied in cycle t give their result on res_o in cycle t + PipeRegs.
module lightnorm_fp_mul #(
  parameter int ExpBits  = 5,        // E: result exponent field width (2..8)
  parameter int ManBits  = 4,        // M: result fraction width (1..23)
  parameter int AExpBits = ExpBits,  // operand a exponent field width (2..8)
  parameter int AManBits = ManBits,  // operand a fraction width (1..23)
  parameter int BExpBits = ExpBits,  // operand b exponent field width (2..8)
  parameter int BManBits = ManBits,  // operand b fraction width (1..23)
  parameter int PipeRegs = 0     // register stages (0..3), see above
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

  // rounder stages, and the multiplier's own register (PipeRegs = 3)
  localparam int RoundRegs = (PipeRegs > 2) ? 2 : PipeRegs;
  localparam int HalfW = (BManBits + 1) / 2;  // low part of sigb
  logic signed [ExpWidth-1:0] raw_exp_d;
  logic                       is_nan_d, is_inf_d;
  logic [ProdW-1:0]           pp_lo_d, pp_hi_d, pp_lo, pp_hi;
  logic                       sign, rnd, sat;

  always_comb begin
    siga = {(fa != '0), ma};
    sigb = {(fb != '0), mb};
    // the product as two partial products: siga * sigb = pp_lo + pp_hi * 2^HalfW
    pp_lo_d = ProdW'(siga) * ProdW'(sigb[HalfW-1:0]);
    pp_hi_d = ProdW'(siga) * ProdW'(sigb >> HalfW);
    // value = prod * 2^(max(fa,1) + max(fb,1) - (ABias + AManBits) - (BBias + BManBits))
    raw_exp_d = $signed(ExpWidth'((fa == '0) ? AExpBits'(1) : fa))
              + $signed(ExpWidth'((fb == '0) ? BExpBits'(1) : fb))
              - ExpWidth'(ABias + AManBits + BBias + BManBits);
    is_nan_d = a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
    is_inf_d = a_inf || b_inf;
  end

  if (PipeRegs > 2) begin : g_pp_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        pp_lo   <= pp_lo_d;
        pp_hi   <= pp_hi_d;
        raw_exp <= raw_exp_d;
        {sign, is_nan, is_inf, rnd, sat} <= {sa ^ sb, is_nan_d, is_inf_d, rnd_i, sat_i};
      end
    end
    assign prod = pp_lo + (pp_hi << HalfW);
  end else begin : g_pp_wire
    assign pp_lo   = pp_lo_d;
    assign pp_hi   = pp_hi_d;
    assign raw_exp = raw_exp_d;
    assign {sign, is_nan, is_inf, rnd, sat} = {sa ^ sb, is_nan_d, is_inf_d, rnd_i, sat_i};
    assign prod    = ProdW'(siga) * ProdW'(sigb);  // (pp_lo, pp_hi unused)
    logic unused_pp;
    assign unused_pp = ^{pp_lo, pp_hi};
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
    .sign_i  (sign),
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
