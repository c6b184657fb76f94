// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_round: the one rounding module of LightNorm (docs/spec.md section 2). It maps a
// raw result (-1)^sign_i * (sig_i + s) * 2^exp_i, where s is 0 if sticky_i is 0 and some
// 0 < s < 1 otherwise, to the nearest value of FP(ExpBits, ManBits) under rnd_i (RNE or RTZ),
// exactly like lightnorm.formats.quantize / lightnorm.arith.round_scaled_int: normalize with a
// leading-zero count, denormalize below the smallest normal (gradual underflow), round once
// (a carry out of the significand moves to the next binade), then apply the overflow rule
// (sat_i = 0: RNE -> +-Inf, RTZ -> +-max_normal; sat_i = 1: +-max_normal). Zeros keep sign_i.
// is_nan_i gives the canonical NaN; is_inf_i gives +-Inf (+-max_normal when saturating).
// Callers supply at least two bits of sig_i below the rounding position whenever sticky_i can
// be 1 (then the round bit of the raw value is exact); with sticky_i = 1, sig_i must not be 0.
// Every other arithmetic block ends in this module. PipeRegs (cvfpu's NumPipeRegs as the
// pattern) inserts register stages, loaded when en_i is 1: 0 purely combinational; 1 the
// inputs are registered (a register between the operator that feeds the rounder and the
// rounder); 2 also the normalized significand and exponent (between the leading-zero
// normalizer and the denormalize / round / overflow logic). The result of inputs applied in
// cycle t (en_i = 1) is on res_o in cycle t + PipeRegs; clk_i and en_i are unused at 0.
//
// Ports:
//   input  logic                       clk_i      clock of the pipeline registers
//   input  logic                       en_i       pipeline advance
//   input  logic                       sign_i     sign of the raw value
//   input  logic [SigWidth-1:0]        sig_i      unsigned raw significand (any alignment)
//   input  logic signed [ExpWidth-1:0] exp_i      weight of sig_i's LSB: 2^exp_i
//   input  logic                       sticky_i   the true magnitude is slightly above sig_i
//   input  logic                       is_nan_i   result is NaN (overrides everything)
//   input  logic                       is_inf_i   result is (-1)^sign_i * Inf
//   input  logic                       rnd_i      0: RNE, 1: RTZ
//   input  logic                       sat_i      0: overflow to Inf (IEEE), 1: saturate
//   output logic [ExpBits+ManBits:0]   res_o      {sign, exponent field, fraction}

module lightnorm_round #(
  parameter int ExpBits  = 5,   // E: result exponent field width (2..8)
  parameter int ManBits  = 4,   // M: result fraction width (1..23)
  parameter int SigWidth = 12,  // width of the raw significand sig_i
  parameter int ExpWidth = 8,   // width of the signed raw exponent exp_i
  parameter int PipeRegs = 0    // register stages: 0, 1 (inputs), 2 (+ after normalization)
) (
  input  logic                       clk_i,
  input  logic                       en_i,
  input  logic                       sign_i,
  input  logic [SigWidth-1:0]        sig_i,
  input  logic signed [ExpWidth-1:0] exp_i,
  input  logic                       sticky_i,
  input  logic                       is_nan_i,
  input  logic                       is_inf_i,
  input  logic                       rnd_i,
  input  logic                       sat_i,
  output logic [ExpBits+ManBits:0]   res_o
);

  localparam int Bias = (1 << (ExpBits - 1)) - 1;
  localparam int Emin = 1 - Bias;  // exponent of the smallest normal
  localparam int Emax = Bias;      // exponent of the largest finite value
  localparam int LzWidth = $clog2(SigWidth + 1);
  // Internal signed exponent width: holds exp_i + SigWidth, Emin - 1 - ManBits and Emax + 1.
  localparam int IntW0 = (ExpWidth > LzWidth + 1) ? ExpWidth : LzWidth + 1;
  localparam int IntW = ((IntW0 > ExpBits + 2) ? IntW0 : ExpBits + 2) + 2;
  // Denormalization shifts beyond ManBits + 3 only feed the sticky bit: cap them there.
  localparam int MaxShift = ManBits + 3;
  localparam int ShW = $clog2(MaxShift + 1);
  localparam int ExtW = SigWidth + MaxShift;  // normalized significand + room to shift right
  // Leading-zero count by a log-step normalizer over the significand padded to a power of two.
  localparam int LzSteps = (SigWidth > 1) ? $clog2(SigWidth) : 1;
  localparam int PadW = 1 << LzSteps;

  localparam logic signed [IntW-1:0] EminS = IntW'(Emin);
  localparam logic signed [IntW-1:0] EmaxS = IntW'(Emax);
  localparam logic signed [IntW-1:0] TopS = IntW'(SigWidth - 1);
  localparam logic signed [IntW-1:0] MaxShiftS = IntW'(MaxShift);

  localparam logic [ExpBits-1:0] ExpOnes = {ExpBits{1'b1}};  // Yosys 0.23 reads a '1 here as 1
  localparam logic [ExpBits-1:0] BiasF = ExpBits'(Bias);
  localparam logic [ExpBits+ManBits:0] QNaN = {1'b0, ExpOnes, 1'b1, {(ManBits - 1) {1'b0}}};

  logic [LzWidth-1:0]     lz;         // leading zeros of sig_i (SigWidth when zero)
  logic [LzWidth-1:0]     lz_nz;      // leading zeros of sig_i if nonzero
  logic [PadW-1:0]        sig_pad;    // sig_i left-aligned in PadW bits, normalized in steps
  logic [SigWidth-1:0]    sig_norm;   // sig_i << lz: MSB set unless sig_i == 0
  logic signed [IntW-1:0] exp_ext;    // exp_i sign-extended
  logic signed [IntW-1:0] e_norm;     // floor(log2 |raw|)
  logic signed [IntW-1:0] under;      // Emin - e_norm
  logic [ShW-1:0]         dshift;     // right shift of a subnormal result (capped)
  logic [ExtW-1:0]        ext;        // {sig_norm, 0...} >> dshift
  logic [ManBits:0]       q;          // kept significand bits (hidden bit included)
  logic                   round_bit;
  logic                   sticky;
  logic                   inc;
  logic [ManBits+1:0]     q_inc;
  logic                   carry;
  logic [ManBits:0]       q_fin;
  logic signed [IntW-1:0] e_fin;      // exponent of the rounded result
  logic [ExpBits-1:0]     field;      // biased exponent field of a finite result
  logic                   overflow;
  logic [ExpBits+ManBits:0] max_normal, inf;

  // ---- optional input register (PipeRegs >= 1) ----
  // {sign, sticky, nan, inf, rnd, sat} travel with the value through every stage
  localparam int FlW = 6;
  logic [SigWidth-1:0]        sig_a;
  logic signed [ExpWidth-1:0] exp_a;
  logic [FlW-1:0]             fl_a, fl_b;

  if (PipeRegs >= 1) begin : g_in_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        sig_a <= sig_i;
        exp_a <= exp_i;
        fl_a  <= {sign_i, sticky_i, is_nan_i, is_inf_i, rnd_i, sat_i};
      end
    end
  end else begin : g_in_wire
    assign sig_a = sig_i;
    assign exp_a = exp_i;
    assign fl_a  = {sign_i, sticky_i, is_nan_i, is_inf_i, rnd_i, sat_i};
  end

  // Normalize in LzSteps steps (widest first): shift out the top 2^k bits when all are zero.
  // The same shifter yields the count and the normalized significand (a short loop also
  // keeps event-driven simulators fast).
  logic [SigWidth-1:0]    sig_norm_d;
  logic signed [IntW-1:0] e_norm_d;
  always_comb begin
    sig_pad = PadW'(sig_a) << (PadW - SigWidth);
    lz_nz   = '0;
    for (int k = LzSteps - 1; k >= 0; k--) begin
      if ((sig_pad >> (PadW - (1 << k))) == '0) begin
        sig_pad = sig_pad << (1 << k);
        lz_nz   = lz_nz | LzWidth'(1 << k);
      end
    end
    lz         = (sig_a == '0) ? LzWidth'(SigWidth) : lz_nz;
    sig_norm_d = sig_pad[PadW-1 -: SigWidth];
    exp_ext    = IntW'(exp_a);
    e_norm_d   = exp_ext + TopS - $signed(IntW'(lz));
  end

  // ---- optional normalized-value register (PipeRegs >= 2) ----
  if (PipeRegs >= 2) begin : g_norm_reg
    always_ff @(posedge clk_i) begin
      if (en_i) begin
        sig_norm <= sig_norm_d;
        e_norm   <= e_norm_d;
        fl_b     <= fl_a;
      end
    end
  end else begin : g_norm_wire
    assign sig_norm = sig_norm_d;
    assign e_norm   = e_norm_d;
    assign fl_b     = fl_a;
  end

  if (PipeRegs == 0) begin : g_no_clk
    logic unused_clk;
    assign unused_clk = ^{clk_i, en_i};
  end

  logic sign_b, sticky_b, nan_b, inf_b, rnd_b, sat_b;
  assign {sign_b, sticky_b, nan_b, inf_b, rnd_b, sat_b} = fl_b;

  always_comb begin
    under    = EminS - e_norm;
    if (under <= 0) begin
      dshift = '0;
    end else if (under >= MaxShiftS) begin
      dshift = ShW'(MaxShift);
    end else begin
      dshift = under[ShW-1:0];
    end
    ext       = {sig_norm, {MaxShift{1'b0}}} >> dshift;
    q         = ext[ExtW-1 -: ManBits+1];
    round_bit = ext[ExtW-ManBits-2];
    sticky    = (|ext[ExtW-ManBits-3:0]) | sticky_b;
    inc       = (rnd_b == lightnorm_pkg::RndRne) & round_bit & (sticky | q[0]);
    q_inc     = {1'b0, q} + {{(ManBits + 1) {1'b0}}, inc};
    carry     = q_inc[ManBits+1];
    q_fin     = carry ? q_inc[ManBits+1:1] : q_inc[ManBits:0];
    // A subnormal result (e_norm < Emin) is aligned to Emin; a carry moves up one binade.
    e_fin     = ((e_norm < EminS) ? EminS : e_norm) + $signed({{(IntW - 1) {1'b0}}, carry});
    overflow  = q_fin[ManBits] & (e_fin > EmaxS);
    // q_fin[ManBits] = 0: subnormal or zero (field 0); a subnormal rounding up to 2^ManBits
    // becomes the smallest normal (field 1) with e_fin = Emin.
    field     = q_fin[ManBits] ? (e_fin[ExpBits-1:0] + BiasF) : '0;
  end

  assign max_normal = {sign_b, {(ExpBits - 1) {1'b1}}, 1'b0, {ManBits{1'b1}}};
  assign inf        = {sign_b, ExpOnes, {ManBits{1'b0}}};

  always_comb begin
    if (nan_b) begin
      res_o = QNaN;
    end else if (inf_b) begin
      res_o = (sat_b == lightnorm_pkg::OvfSat) ? max_normal : inf;
    end else if (overflow) begin
      res_o = ((sat_b == lightnorm_pkg::OvfSat) || (rnd_b == lightnorm_pkg::RndRtz)) ?
              max_normal : inf;
    end else begin
      res_o = {sign_b, field, q_fin[ManBits-1:0]};
    end
  end

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8) $fatal(1, "lightnorm_round: ExpBits %0d not in 2..8", ExpBits);
    if (ManBits < 1 || ManBits > 23)
      $fatal(1, "lightnorm_round: ManBits %0d not in 1..23", ManBits);
    if (SigWidth < 1) $fatal(1, "lightnorm_round: SigWidth %0d < 1", SigWidth);
    if (ExpWidth < 2) $fatal(1, "lightnorm_round: ExpWidth %0d < 2", ExpWidth);
    if (PipeRegs < 0 || PipeRegs > 2)
      $fatal(1, "lightnorm_round: PipeRegs %0d not in 0..2", PipeRegs);
  end
  // A sticky bit needs a nonzero significand (the raw value would be ill-defined otherwise).
  always @(*) begin
    if (!is_nan_i && !is_inf_i && sticky_i && sig_i == '0) begin
      $error("lightnorm_round: sticky_i set with sig_i == 0");
    end
  end
`endif

endmodule
