// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_fp_add: correctly rounded addition / subtraction res = round(a +- b) in
// FP(ExpBits, ManBits) of operands a in FP(AExpBits, AManBits) and b in FP(BExpBits, BManBits)
// (lightnorm.arith.add / sub, docs/spec.md section 3: operand formats may differ from the
// result format; the exact sum is rounded once). Combinational. The operand formats default to
// the result format.
// Mixed formats: both operands are first widened exactly (lightnorm_fp_widen) to the operand
// format FP(EW, MW), EW = the wider exponent field, MW = max(AManBits, BManBits, ManBits); with
// equal formats that is the identity. The raw arithmetic then runs in FP(EW, MW): the operand
// of larger magnitude is aligned with MW + 1 + GuardBits bits; the smaller one is shifted right
// into the same window and the bits shifted out are collected in a sticky bit. For an effective
// subtraction with a nonzero sticky, one is subtracted from the raw difference so that the raw
// value stays below the exact one (lightnorm_round's sticky convention). Three guard bits keep
// at least two bits below the rounding position whenever the sticky bit is set (the shift is
// then >= 4, so the difference loses at most one leading bit, and MW >= ManBits).
// Specials: NaN if an operand is NaN or for Inf - Inf; +-Inf if an operand is Inf; an exact
// zero sum is +0 except (-0) + (-0) = -0.
//
// Ports:
//   input  logic [AExpBits+AManBits:0] a_i    operand a {sign, exponent field, fraction}
//   input  logic [BExpBits+BManBits:0] b_i    operand b
//   input  logic                       sub_i  0: a + b, 1: a - b
//   input  logic                       rnd_i  0: RNE, 1: RTZ
//   input  logic                       sat_i  0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0]   res_o  round(a +- b)

// PipeRegs (cvfpu's NumPipeRegs as the pattern): register stages before the result, as
// lightnorm_round places them: 0 combinational; 1 a register between the aligned addition
// and the rounder; 2 also one inside the rounder; 3 also one after the alignment (before
// the addition). They load when en_i is 1; operands applied in cycle t give their result on
// res_o in cycle t + PipeRegs.
module lightnorm_fp_add #(
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
  input  logic                       sub_i,
  input  logic                       rnd_i,
  input  logic                       sat_i,
  output logic [ExpBits+ManBits:0]   res_o
);

  localparam int EW = (AExpBits > BExpBits) ? AExpBits : BExpBits;  // operand exponent field
  localparam int MW0 = (AManBits > BManBits) ? AManBits : BManBits;
  localparam int MW = (MW0 > ManBits) ? MW0 : ManBits;               // operand fraction
  localparam int Bias = (1 << (EW - 1)) - 1;
  localparam int GuardBits = 3;
  localparam int SigW = MW + 1;                   // significand with the hidden bit
  localparam int WinW = SigW + GuardBits;         // aligned window
  localparam int SumW = WinW + 1;                 // room for the carry of an addition
  localparam int MaxShift = WinW + 1;             // larger shifts only feed the sticky bit
  localparam int ShW = $clog2(MaxShift + 1);
  // signed raw exponent for lightnorm_round: ex - Bias - MW - GuardBits
  localparam int ExpWidth = EW + $clog2(MW + GuardBits + 1) + 2;

  localparam logic [EW-1:0] ExpOnes = {EW{1'b1}};  // Yosys 0.23 reads a '1 here as 1

  // ---- operands in the common operand format FP(EW, MW) (exact) ----
  logic [EW+MW:0] aw, bw;

  lightnorm_fp_widen #(
    .InExpBits(AExpBits), .InManBits(AManBits), .OutExpBits(EW), .OutManBits(MW)
  ) u_widen_a (
    .a_i  (a_i),
    .res_o(aw)
  );

  lightnorm_fp_widen #(
    .InExpBits(BExpBits), .InManBits(BManBits), .OutExpBits(EW), .OutManBits(MW)
  ) u_widen_b (
    .a_i  (b_i),
    .res_o(bw)
  );

  // ---- unpack ----
  logic          sa, sb;                         // signs (sb includes sub_i)
  logic [EW-1:0] fa, fb;                         // exponent fields
  logic [MW-1:0] ma, mb;                         // fractions
  logic          a_nan, b_nan, a_inf, b_inf;

  assign sa = aw[EW+MW];
  assign sb = bw[EW+MW] ^ sub_i;
  assign fa = aw[MW +: EW];
  assign fb = bw[MW +: EW];
  assign ma = aw[MW-1:0];
  assign mb = bw[MW-1:0];
  assign a_nan = (fa == ExpOnes) && (ma != '0);
  assign b_nan = (fb == ExpOnes) && (mb != '0);
  assign a_inf = (fa == ExpOnes) && (ma == '0);
  assign b_inf = (fb == ExpOnes) && (mb == '0);

  // ---- order by magnitude: x = larger, y = smaller ----
  logic               swap;
  logic               sx, sy;
  logic [EW-1:0]      ex, ey;                    // effective exponent fields (subnormal -> 1)
  logic [SigW-1:0]    mx, my;                    // significands with hidden bit
  logic [EW-1:0]      ediff;
  logic [ShW-1:0]     shift;
  logic [WinW-1:0]    x_win;
  logic [WinW+MaxShift-1:0] y_ext;               // y in the window plus the bits shifted out
  logic [WinW-1:0]    y_win;
  logic               y_sticky;
  logic               eff_sub;
  logic [SumW-1:0]    sum;
  logic signed [ExpWidth-1:0] raw_exp;
  logic               res_sign;
  logic               is_nan, is_inf;

  // rounder stages, and the register after the alignment (PipeRegs = 3)
  localparam int RoundRegs = (PipeRegs > 2) ? 2 : PipeRegs;
  // aligned operands and everything the addition and the rounder need from them
  localparam int AlW = 2 * WinW + 1 + 1 + 1 + 1 + ExpWidth + 3 + 2;
  logic [WinW-1:0]            x_win_a, y_win_a;
  logic                       y_sticky_a, eff_sub_a, sx_a, sy_a;
  logic signed [ExpWidth-1:0] raw_exp_a;
  logic                       is_nan_a, is_inf_a, inf_sign_a;
  logic                       rnd, sat;
  logic [ExpWidth-1:0]        raw_exp_d;
  logic                       is_nan_d, is_inf_d;
  logic [AlW-1:0]             al_d, al_q;

  always_comb begin
    swap = {fb, mb} > {fa, ma};
    sx = swap ? sb : sa;
    sy = swap ? sa : sb;
    ex = swap ? ((fb == '0) ? EW'(1) : fb) : ((fa == '0) ? EW'(1) : fa);
    ey = swap ? ((fa == '0) ? EW'(1) : fa) : ((fb == '0) ? EW'(1) : fb);
    mx = swap ? {(fb != '0), mb} : {(fa != '0), ma};
    my = swap ? {(fa != '0), ma} : {(fb != '0), mb};
    ediff = ex - ey;
    shift = ({{ShW{1'b0}}, ediff} >= (EW + ShW)'(MaxShift)) ? ShW'(MaxShift) : ShW'(ediff);
    x_win = {mx, {GuardBits{1'b0}}};
    y_ext = {my, {(GuardBits + MaxShift) {1'b0}}} >> shift;
    y_win = y_ext[WinW+MaxShift-1 -: WinW];
    y_sticky = |y_ext[MaxShift-1:0];
    eff_sub = sx ^ sy;
    // value = sum * 2^(ex - Bias - MW - GuardBits)
    raw_exp_d = ExpWidth'($signed(ExpWidth'(ex)) - ExpWidth'(Bias + MW + GuardBits));
    is_nan_d = a_nan || b_nan || (a_inf && b_inf && (sa != sb));
    is_inf_d = a_inf || b_inf;
  end

  assign al_d = {x_win, y_win, y_sticky, eff_sub, sx, sy, raw_exp_d, is_nan_d, is_inf_d,
                 a_inf ? sa : sb, rnd_i, sat_i};
  if (PipeRegs > 2) begin : g_align_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        al_q <= al_d;
      end
    end
  end else begin : g_align_wire
    assign al_q = al_d;
  end
  assign {x_win_a, y_win_a, y_sticky_a, eff_sub_a, sx_a, sy_a, raw_exp_a, is_nan_a, is_inf_a,
          inf_sign_a, rnd, sat} = al_q;

  always_comb begin
    if (eff_sub_a) begin
      // x >= y in magnitude, so the difference is >= 0; with a sticky remainder the exact
      // difference lies strictly between sum and sum + 1 (in window units).
      sum = {1'b0, x_win_a} - {1'b0, y_win_a} - {{(SumW - 1) {1'b0}}, y_sticky_a};
    end else begin
      sum = {1'b0, x_win_a} + {1'b0, y_win_a};
    end
    raw_exp = raw_exp_a;
    is_nan  = is_nan_a;
    is_inf  = is_inf_a;
    // an exact zero (sum == 0, no sticky) is +0 unless both addends are -0; an infinite
    // result takes the sign of the infinite addend (a's when both are)
    res_sign = ((sum == '0) && !y_sticky_a) ? (sx_a & sy_a) : sx_a;
    if (is_inf_a) res_sign = inf_sign_a;
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(SumW),
    .ExpWidth(ExpWidth),
    .PipeRegs(RoundRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (en_i),
    .sign_i  (res_sign),
    .sig_i   (sum),
    .exp_i   (raw_exp),
    .sticky_i(y_sticky_a),
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
      $fatal(1, "lightnorm_fp_add: exponent widths %0d, %0d, %0d not in 2..8", ExpBits,
             AExpBits, BExpBits);
    if (ManBits < 1 || ManBits > 23 || AManBits < 1 || AManBits > 23 || BManBits < 1 ||
        BManBits > 23)
      $fatal(1, "lightnorm_fp_add: fraction widths %0d, %0d, %0d not in 1..23", ManBits,
             AManBits, BManBits);
  end
`endif

endmodule
