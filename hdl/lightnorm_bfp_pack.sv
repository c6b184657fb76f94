// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_bfp_pack: packs Lanes values of FP(ExpBits, ManBits) into one block-floating-point
// group, rule "max" (docs/spec.md section 5, lightnorm.bfp.bfp_pack). Combinational
// (PipeRegs = 0), or with a register after the shared exponent (PipeRegs = 1: the values,
// lane enables, rounding mode, E and the special flag; the lanes' alignment and rounding in
// the next cycle): the result of inputs applied in cycle t (en_i = 1) is out in cycle
// t + PipeRegs.
// Shared exponent: e = max over the enabled nonzero finite lanes of floor(log2|x|), plus one
// when the largest magnitude's rounding to BfpManBits bits carries out (R(x_max / 2^(e -
// BfpManBits + 1)) = 2^BfpManBits: a lane of exponent e whose top BfpManBits significand bits
// are all ones rounds up); E = clamp(e, Emin, Emax) with Emin = -bias, Emax = 2^BfpExpBits -
// 2 - bias (an all-zero group: Emin). Per lane mant = min(R(|x| / 2^(E - BfpManBits + 1)),
// 2^BfpManBits - 1), R = RNE or RTZ per rnd_i (the saturation only acts for groups beyond
// Emax), sign = sign bit of x (-0 keeps sign 1). Padding lanes (lane_en_i = 0) are +0: they
// never set E, and give sign 0, mant 0. A group holding a NaN or +-Inf gets the reserved
// all-ones exponent; in it an Inf lane has mant 0 and every other lane (finite, padding) mant 1
// (NaN), with sign = sign bit of x except for NaN lanes (sign 0).
// Lane k occupies bits [k*(1+ExpBits+ManBits) +: 1+ExpBits+ManBits] of val_i, bit k of
// lane_en_i / sign_o and bits [k*BfpManBits +: BfpManBits] of mant_o.
//
// Ports:
//   input  logic                                 clk_i      pipeline register (PipeRegs = 1)
//   input  logic                                 en_i       pipeline advance
//   input  logic [Lanes*(1+ExpBits+ManBits)-1:0] val_i      the values, FP(ExpBits, ManBits)
//   input  logic [Lanes-1:0]                     lane_en_i  1: lane holds a value, 0: padding
//   input  logic                                 rnd_i      0: RNE, 1: RTZ
//   output logic [BfpExpBits-1:0]                exp_o      shared exponent field
//   output logic [Lanes-1:0]                     sign_o     element signs
//   output logic [Lanes*BfpManBits-1:0]          mant_o     element magnitudes

module lightnorm_bfp_pack #(
  parameter int Lanes      = 16,  // values per group (the BFP group size g)
  parameter int BfpManBits = 5,   // magnitude bits per element (2..16)
  parameter int BfpExpBits = 8,   // shared exponent field width (4..10)
  parameter int ExpBits    = 5,   // E of the element format (2..8)
  parameter int ManBits    = 4,   // M of the element format (1..23)
  parameter int PipeRegs   = 0    // 0 combinational, 1 a register after the shared exponent
) (
  input  logic                                 clk_i,
  input  logic                                 en_i,
  input  logic [Lanes*(1+ExpBits+ManBits)-1:0] val_i,
  input  logic [Lanes-1:0]                     lane_en_i,
  input  logic                                 rnd_i,
  output logic [BfpExpBits-1:0]                exp_o,
  output logic [Lanes-1:0]                     sign_o,
  output logic [Lanes*BfpManBits-1:0]          mant_o
);

  localparam int FpW = 1 + ExpBits + ManBits;
  localparam int Bias = (1 << (ExpBits - 1)) - 1;
  localparam int BfpBias = (1 << (BfpExpBits - 1)) - 1;
  localparam int LzWidth = $clog2(ManBits + 1);
  // Signed exponent arithmetic: element exponents in [-Bias - ManBits + 1, Bias], shared
  // exponents in [-BfpBias, BfpBias + 1], their differences.
  localparam int IntW0 = (ExpBits > BfpExpBits) ? ExpBits : BfpExpBits;
  localparam int IntW = IntW0 + $clog2(ManBits + BfpManBits + 4) + 3;
  // Mantissa alignment: |x| / 2^(E - BfpManBits + 1) = sig * 2^t, computed with FracBits
  // fraction bits (a value below 2^-2 rounds to 0 in both modes, so t < -FracBits gives 0).
  localparam int FracBits = ManBits + 2;
  localparam int MaxSh = BfpManBits - 1 + FracBits;  // t + FracBits in [0, MaxSh] when E >= e
  localparam int ShW = $clog2(MaxSh + 1);
  localparam int YW = ManBits + 1 + MaxSh;           // sig << (t + FracBits)

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1
  // Yosys 0.23 reads a '1 here as 1
  localparam logic [BfpExpBits-1:0] BfpExpOnes = {BfpExpBits{1'b1}};
  // Yosys 0.23 drops the - of -IntW'(x)
  localparam logic signed [IntW-1:0] EminB = IntW'(-BfpBias);
  localparam logic signed [IntW-1:0] EmaxB = IntW'((1 << BfpExpBits) - 2 - BfpBias);
  // Yosys 0.23 reads a '1 here as 1
  localparam logic [BfpManBits-1:0] MantMax = {BfpManBits{1'b1}};

  logic [Lanes*IntW-1:0] ex_flat;    // floor(log2 |x|) per lane
  logic [Lanes-1:0]      nz;         // enabled, finite and nonzero
  logic [Lanes-1:0]      nonfinite;  // enabled and NaN / Inf
  logic                  special;    // the group holds a NaN or Inf
  logic [Lanes-1:0]      carry;      // the lane's rounding to BfpManBits bits at its own
                                     // exponent carries out
  logic [Lanes-1:0]      at_max;     // nonzero lane of the largest exponent
  logic signed [IntW-1:0] e_max;     // max(Emin, largest lane exponent)
  logic signed [IntW-1:0] e_carry;   // e_max + 1 if the largest magnitude carries
  logic signed [IntW-1:0] shared_e;  // E

  // ---- shared exponent: the maximum, bumped by a carry, clamped ----
  // The maximum by a balanced tree of 2:1 compare-selects (log2 Lanes levels, heap order: node
  // i has children 2i and 2i + 1, the lanes are the leaves PadLanes .. 2 PadLanes - 1) of
  // max(Emin, lane exponent); a lane that is not enabled, finite and nonzero enters as Emin
  // (the all-zero group's exponent and the lower clamp).
  localparam int PadLanes = 1 << $clog2(Lanes);
  logic [2*PadLanes*IntW-1:0] node;
  always_comb begin
    node = '0;
    for (int k = 0; k < PadLanes; k++) begin
      node[(PadLanes + k)*IntW +: IntW] =
          (k < Lanes && nz[k % Lanes] && ($signed(ex_flat[(k % Lanes)*IntW +: IntW]) > EminB)) ?
          ex_flat[(k % Lanes)*IntW +: IntW] : EminB;
    end
    for (int i = PadLanes - 1; i >= 1; i--) begin
      node[i*IntW +: IntW] =
          ($signed(node[2*i*IntW +: IntW]) >= $signed(node[(2*i + 1)*IntW +: IntW])) ?
          node[2*i*IntW +: IntW] : node[(2*i + 1)*IntW +: IntW];
    end
    e_max = $signed(node[IntW +: IntW]);  // the root (the only leaf when PadLanes = 1)
  end

  always_comb begin
    // R is monotonic: the largest magnitude carries iff some lane of exponent e_max does
    e_carry  = e_max + $signed({{(IntW - 1) {1'b0}}, |(carry & at_max)});
    shared_e = (e_carry > EmaxB) ? EmaxB : e_carry;
  end

  assign special = |nonfinite;

  // ---- the register after the shared exponent (PipeRegs = 1) ----
  logic [Lanes*FpW-1:0]   val2;      // the second half's inputs
  logic [Lanes-1:0]       en2;
  logic                   rnd2, special2;
  logic signed [IntW-1:0] shared2;
  if (PipeRegs > 0) begin : g_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        val2     <= val_i;
        en2      <= lane_en_i;
        rnd2     <= rnd_i;
        special2 <= special;
        shared2  <= shared_e;
      end
    end
  end else begin : g_comb
    assign {val2, en2, rnd2, special2, shared2} = {val_i, lane_en_i, rnd_i, special, shared_e};
    logic unused_clk;
    assign unused_clk = ^{clk_i, en_i};
  end

  assign exp_o = special2 ? BfpExpOnes : BfpExpBits'(shared2 + IntW'(BfpBias));

  // ---- per lane ----
  // per lane, first half: floor(log2 |x|), nonzero / special, the carry at its own exponent
  for (genvar k = 0; k < Lanes; k++) begin : g_lane
    logic               en;
    logic [ExpBits-1:0] field;
    logic [ManBits-1:0] frac;
    logic               is_nan, is_inf;
    logic [LzWidth-1:0] lz;
    logic signed [IntW-1:0] ex;     // floor(log2 |x|)

    assign en     = lane_en_i[k];
    assign field  = val_i[k*FpW + ManBits +: ExpBits];
    assign frac   = val_i[k*FpW +: ManBits];
    assign is_nan = en && (field == ExpOnes) && (frac != '0);
    assign is_inf = en && (field == ExpOnes) && (frac == '0);
    assign nonfinite[k] = is_nan || is_inf;
    assign nz[k]  = en && (field != ExpOnes) && ((field != '0) || (frac != '0));

    always_comb begin
      lz = LzWidth'(ManBits);
      for (int i = 0; i < ManBits; i++) begin
        if (frac[i]) lz = LzWidth'(ManBits - 1 - i);
      end
    end

    // Carry of this lane rounded at its own exponent: only when its significand has more
    // bits than BfpManBits; then the top BfpManBits bits (of the normalized significand) are
    // all ones and the round bit is set (RNE).
    if (ManBits + 1 > BfpManBits) begin : g_carry
      logic [ManBits-1:0] frac_n;  // fraction of the normalized significand 1.frac_n
      assign frac_n = (field == '0) ? (frac << (lz + 1'b1)) : frac;
      assign carry[k] = (rnd_i == lightnorm_pkg::RndRne) && (&frac_n[ManBits-1 -: BfpManBits-1])
                      && frac_n[ManBits-BfpManBits];
    end else begin : g_no_carry
      assign carry[k] = 1'b0;
    end

    assign at_max[k] = nz[k] && (ex == e_max);
    // subnormal: frac * 2^(1 - Bias - ManBits), leading one at bit ManBits - 1 - lz
    assign ex = (field == '0) ? (IntW'(-Bias) - IntW'(lz)) : ($signed(IntW'(field)) - IntW'(Bias));
    assign ex_flat[k*IntW +: IntW] = ex;
  end

  // per lane, second half (the register's outputs): alignment to E and rounding
  for (genvar k = 0; k < Lanes; k++) begin : g_out
    logic               sign, en, nzk;
    logic [ExpBits-1:0] field;
    logic [ManBits-1:0] frac;
    logic               is_nan, is_inf;
    logic [LzWidth-1:0] lz;
    logic signed [IntW-1:0] ex;     // floor(log2 |x|)
    logic signed [IntW-1:0] t_sh;   // t + FracBits
    logic [ShW-1:0]     sh;
    logic [YW-1:0]      y;
    logic [BfpManBits-1:0] ipart;   // integer part of sig * 2^t (before rounding)
    logic               too_big;    // integer part >= 2^BfpManBits
    logic               round_bit, sticky, inc;
    logic [BfpManBits:0] rounded;
    logic [BfpManBits-1:0] mant;

    assign en     = en2[k];
    assign sign   = val2[k*FpW + FpW - 1];
    assign field  = val2[k*FpW + ManBits +: ExpBits];
    assign frac   = val2[k*FpW +: ManBits];
    assign is_nan = en && (field == ExpOnes) && (frac != '0);
    assign is_inf = en && (field == ExpOnes) && (frac == '0);
    assign nzk    = en && (field != ExpOnes) && ((field != '0) || (frac != '0));

    always_comb begin
      lz = LzWidth'(ManBits);
      for (int i = 0; i < ManBits; i++) begin
        if (frac[i]) lz = LzWidth'(ManBits - 1 - i);
      end
    end

    always_comb begin
      ex = (field == '0) ? (IntW'(-Bias) - IntW'(lz)) : ($signed(IntW'(field)) - IntW'(Bias));
      // sig * 2^t, sig = {hidden, frac}, t = (max(field,1) - Bias - ManBits) - (E - BfpManBits + 1)
      t_sh = $signed(IntW'((field == '0) ? ExpBits'(1) : field))
           - IntW'(Bias + ManBits - BfpManBits + 1 - FracBits) - shared2;
      if (t_sh < 0) begin
        sh = '0;
      end else if (t_sh > IntW'(MaxSh)) begin
        sh = ShW'(MaxSh);  // only when E < e (E clamped at Emax): the lane saturates anyway
      end else begin
        sh = t_sh[ShW-1:0];
      end
      y = (t_sh < 0) ? '0 : (YW'({(field != '0), frac}) << sh);
      ipart     = y[FracBits +: BfpManBits];
      too_big   = |y[YW-1:FracBits+BfpManBits];
      round_bit = y[FracBits-1];
      sticky    = |y[FracBits-2:0];
      inc       = (rnd2 == lightnorm_pkg::RndRne) & round_bit & (sticky | ipart[0]);
      rounded   = {1'b0, ipart} + (BfpManBits + 1)'(inc);
      if (!nzk) begin
        mant = '0;
      end else if ((ex > shared2) || too_big || rounded[BfpManBits]) begin
        mant = MantMax;  // only for groups above Emax (E clamped)
      end else begin
        mant = rounded[BfpManBits-1:0];
      end
    end

    assign sign_o[k] = en && sign && !is_nan;
    assign mant_o[k*BfpManBits +: BfpManBits] =
        special2 ? (is_inf ? '0 : BfpManBits'(1)) : mant;
  end

`ifndef SYNTHESIS
  initial begin
    if (Lanes < 1) $fatal(1, "lightnorm_bfp_pack: Lanes %0d < 1", Lanes);
    if (BfpManBits < 2 || BfpManBits > 16)
      $fatal(1, "lightnorm_bfp_pack: BfpManBits %0d not in 2..16", BfpManBits);
    if (BfpExpBits < 4 || BfpExpBits > 10)
      $fatal(1, "lightnorm_bfp_pack: BfpExpBits %0d not in 4..10", BfpExpBits);
  end
`endif

endmodule
