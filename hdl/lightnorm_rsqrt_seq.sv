// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_rsqrt_seq: sequential, correctly rounded reciprocal square root
// res = round(1 / sqrt(v)) in FP(ExpBits, ManBits) (lightnorm.arith.rsqrt, docs/spec.md
// section 3) for fraction widths where a table (lightnorm_rsqrt) is too large, e.g. FP32.
// Bit-serial, one result bit per cycle with shifts, adds and compares only (no multiplier,
// no square-root array). The input is normalized to v = (d0 / 2^M) * 2^e, d0 = 1.f in
// [2^M, 2^(M+1)); with p = e mod 2 and D = d0 * 2^p, the unit finds the largest integer q
// with q^2 * D <= 2^(2W + M), W = M + 3, i.e. q = floor(2^W / sqrt(D / 2^M)) (W + 1 bits, two
// below the rounding position of a normal result), and the sticky bit (q^2 * D != 2^(2W+M)),
// so 1/sqrt(v) = (q + delta) * 2^(-W - (e - p)/2), rounded once by lightnorm_round.
// Recurrence for the bits b = W .. 0 (Y = q * D of the bits accepted so far):
//   trial t = Y * 2^(b+1) + D * 2^(2b)  (= (q + 2^b)^2 D - q^2 D),
//   take the bit if t <= R, the residual 2^(2W+M) - q^2 D: R -= t, Y += D * 2^b.
// A = Y * 2^(b+1) and B = D * 2^(2b) are kept pre-shifted (A += 2B on a taken bit, then
// A >>= 1, B >>= 2 per step), so a step is two additions and a comparison.
// Specials: rsqrt(+-0) = +Inf (max_normal when saturating), rsqrt(+Inf) = +0,
// rsqrt(v < 0) = NaN (-Inf included), NaN -> NaN; same fixed latency as every input.
// Handshake as lightnorm_recip_seq: start_i samples v_i, rnd_i, sat_i; done_o pulses
// Latency = W + 1 + PipeRegs = ManBits + 4 + PipeRegs cycles later (PipeRegs: the rounder's
// register stages); res_o holds the result until PipeRegs cycles after the next start.
//
// Ports:
//   input  logic                     start_i  sample the operand and start
//   input  logic [ExpBits+ManBits:0] v_i      operand {sign, exponent field, fraction}
//   input  logic                     rnd_i    0: RNE, 1: RTZ
//   input  logic                     sat_i    0: overflow to Inf (IEEE), 1: saturate
//   output logic                     busy_o   a computation is running
//   output logic                     done_o   one-cycle pulse: res_o holds the result
//   output logic [ExpBits+ManBits:0] res_o    round(1 / sqrt(v)) (held, see above)

module lightnorm_rsqrt_seq #(
  parameter int ExpBits = 8,   // E: exponent field width (2..8)
  parameter int ManBits = 23,  // M: fraction width (1..23)
  parameter int PipeRegs = 0   // register stages of the rounder (0..2, see lightnorm_round)
) (
  input  logic                     clk_i,
  input  logic                     rst_ni,
  input  logic                     start_i,
  input  logic [ExpBits+ManBits:0] v_i,
  input  logic                     rnd_i,
  input  logic                     sat_i,
  output logic                     busy_o,
  output logic                     done_o,
  output logic [ExpBits+ManBits:0] res_o
);

  localparam int W = ManBits + 3;        // result scale 2^-W (2 guard bits)
  localparam int QW = W + 1;             // q width (q = 2^W for D = 2^M)
  localparam int Steps = QW;             // one result bit per cycle
  localparam int CntW = $clog2(Steps + 1);
  localparam int XW = 2 * W + ManBits + 3;  // residual / trial width
  // signed exponents: e in [1 - Bias - ManBits, Bias], raw -W - (e - p)/2
  localparam int ExpWidth = ExpBits + $clog2(2 * ManBits + 8) + 2;

  // ---- operand decode (sampled at start) ------------------------------------------------
  logic               sign;
  logic [ManBits-1:0] frac_n;     // fraction of the normalized input
  logic signed [ExpWidth-1:0] e_in;    // unbiased exponent of the normalized input
  logic signed [ExpWidth-1:0] e_even;  // e - p (even)
  logic [ManBits+1:0] dd;         // D = 1.f * 2^p
  logic               is_nan_in, is_nan, is_zero, is_inf, is_pinf;

  lightnorm_fp_unpack #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .ExpWidth(ExpWidth)
  ) u_unpack (
    .v_i      (v_i),
    .sign_o   (sign),
    .frac_n_o (frac_n),
    .exp_o    (e_in),
    .is_zero_o(is_zero),
    .is_inf_o (is_inf),
    .is_nan_o (is_nan_in)
  );

  // NaN input, or a negative nonzero input (-Inf included)
  assign is_nan  = is_nan_in || (sign && !is_zero);
  assign is_pinf = is_inf && !sign;

  always_comb begin
    e_even = e_in - $signed(ExpWidth'(e_in[0]));
    dd     = e_in[0] ? {1'b1, frac_n, 1'b0} : {1'b0, 1'b1, frac_n};
  end

  // ---- recurrence state -------------------------------------------------------------------
  logic                       busy_q, done_q;
  logic [CntW-1:0]            cnt_q;      // steps left
  logic [XW-1:0]              r_q;        // residual 2^(2W+M) - q^2 D
  logic [XW-1:0]              a_q;        // Y * 2^(b+1)
  logic [XW-1:0]              b_q;        // D * 2^(2b)
  logic [QW-1:0]              q_q;
  logic                       nan_q, zero_q, pinf_q, rnd_q, sat_q;
  logic signed [ExpWidth-1:0] exp_q;      // raw exponent -W - (e - p)/2

  logic [XW-1:0] trial;
  logic          take;
  assign trial = a_q + b_q;
  assign take  = (trial <= r_q);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;
      done_q <= 1'b0;
      cnt_q  <= '0;
    end else begin
      done_q <= 1'b0;
      if (start_i) begin
        busy_q <= 1'b1;
        cnt_q  <= CntW'(Steps);
      end else if (busy_q) begin
        cnt_q <= cnt_q - 1'b1;
        if (cnt_q == CntW'(1)) begin
          busy_q <= 1'b0;
          done_q <= 1'b1;
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (start_i) begin
      r_q    <= XW'(1) << (2 * W + ManBits);
      a_q    <= '0;
      b_q    <= XW'(dd) << (2 * W);
      q_q    <= '0;
      nan_q  <= is_nan;
      zero_q <= is_zero;
      pinf_q <= is_pinf;
      rnd_q  <= rnd_i;
      sat_q  <= sat_i;
      exp_q  <= -$signed(ExpWidth'(W)) - (e_even >>> 1);
    end else if (busy_q) begin
      if (take) begin
        r_q <= r_q - trial;
        a_q <= (a_q + (b_q << 1)) >> 1;
      end else begin
        a_q <= a_q >> 1;
      end
      b_q <= b_q >> 2;
      q_q <= {q_q[QW-2:0], take};
    end
  end

  assign busy_o = busy_q;

  // done_o follows the rounder's PipeRegs register stages (loaded every cycle: the
  // recurrence state holds after the last step, so they carry the result to res_o)
  if (PipeRegs > 0) begin : g_done_pipe
    logic [PipeRegs-1:0] done_s;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        done_s <= '0;
      end else begin
        done_s <= PipeRegs'({done_s, done_q});
      end
    end
    assign done_o = done_s[PipeRegs-1];
  end else begin : g_done_comb
    assign done_o = done_q;
  end

  lightnorm_round #(
    .ExpBits (ExpBits),
    .ManBits (ManBits),
    .SigWidth(QW),
    .ExpWidth(ExpWidth),
    .PipeRegs(PipeRegs)
  ) u_round (
    .clk_i   (clk_i),
    .en_i    (1'b1),
    .sign_i  (1'b0),
    .sig_i   (pinf_q ? '0 : q_q),           // rsqrt(+Inf) = +0
    .exp_i   (exp_q),
    // (the gates keep partial results while busy from raising sticky with sig = 0)
    .sticky_i(!busy_q && (r_q != '0) && (q_q != '0) && !pinf_q),
    .is_nan_i(nan_q),
    .is_inf_i(zero_q),                      // rsqrt(+-0) = +Inf
    .rnd_i   (rnd_q),
    .sat_i   (sat_q),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8)
      $fatal(1, "lightnorm_rsqrt_seq: ExpBits %0d not in 2..8", ExpBits);
    if (ManBits < 1 || ManBits > 23)
      $fatal(1, "lightnorm_rsqrt_seq: ManBits %0d not in 1..23", ManBits);
    if (PipeRegs < 0 || PipeRegs > 2)
      $fatal(1, "lightnorm_rsqrt_seq: PipeRegs %0d not in 0..2", PipeRegs);
  end
`endif

endmodule
