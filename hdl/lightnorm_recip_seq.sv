// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_recip_seq: sequential, correctly rounded reciprocal res = round(1 / v) in
// FP(ExpBits, ManBits) (lightnorm.arith.recip, docs/spec.md section 3) for fraction widths
// where a table (lightnorm_recip) is too large, e.g. FP32. Restoring digit recurrence, one
// quotient bit per cycle on a (ManBits + 2)-bit subtractor: no divider array, no multiplier.
// The input is normalized to v = d * 2^(e - M), d = 1.f in [2^M, 2^(M+1)) (a subnormal input
// by its leading-zero count); the recurrence computes q = floor(2^(M + W) / d) with
// W = M + 3 (q has W + 1 bits: two bits below the rounding position of a normal result) and
// the sticky bit (remainder != 0), so 1/v = (q + delta) * 2^(-W - e), which lightnorm_round
// rounds once (subnormal and overflowing results included).
// Specials: 1/+-0 = +-Inf (+-max_normal when saturating), 1/+-Inf = +-0, NaN -> NaN; they take
// the same fixed latency as every other input.
// Handshake: start_i (while idle or busy: a new start restarts) samples v_i, rnd_i, sat_i;
// done_o pulses Latency = W + 1 + PipeRegs = ManBits + 4 + PipeRegs cycles later (the cycle
// after the last recurrence step, plus the rounder's register stages), res_o is valid from
// that cycle until PipeRegs cycles after the next start. busy_o is high during the recurrence.
//
// Ports:
//   input  logic                     start_i  sample the operand and start
//   input  logic [ExpBits+ManBits:0] v_i      operand {sign, exponent field, fraction}
//   input  logic                     rnd_i    0: RNE, 1: RTZ
//   input  logic                     sat_i    0: overflow to Inf (IEEE), 1: saturate
//   output logic                     busy_o   a division is running
//   output logic                     done_o   one-cycle pulse: res_o holds the result
//   output logic [ExpBits+ManBits:0] res_o    round(1 / v) (held, see above)

module lightnorm_recip_seq #(
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

  localparam int W = ManBits + 3;        // quotient scale 2^-W (2 guard bits)
  localparam int QW = W + 1;             // quotient width (q = 2^W for d = 2^M)
  localparam int Steps = QW;             // one quotient bit per cycle
  localparam int CntW = $clog2(Steps + 1);
  localparam int RemW = ManBits + 2;     // partial remainder (< 2 d)
  // signed exponents: e in [1 - Bias - ManBits, Bias], raw -W - e
  localparam int ExpWidth = ExpBits + $clog2(2 * ManBits + 8) + 2;

  // ---- operand decode (sampled at start) ------------------------------------------------
  logic               sign;
  logic [ManBits-1:0] frac_n;     // fraction of the normalized input
  logic signed [ExpWidth-1:0] e_in;  // unbiased exponent of the normalized input
  logic               is_nan, is_zero, is_inf;

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
    .is_nan_o (is_nan)
  );

  // ---- recurrence state -------------------------------------------------------------------
  logic                       busy_q, done_q;
  logic [CntW-1:0]            cnt_q;      // steps left
  logic [ManBits:0]           d_q;        // divisor 1.f (M + 1 bits)
  logic [RemW-1:0]            rem_q;      // partial remainder before the doubling of a step
  logic [QW-1:0]              quo_q;
  logic                       sign_q, nan_q, zero_q, inf_q, rnd_q, sat_q;
  logic signed [ExpWidth-1:0] exp_q;      // raw exponent -W - e

  logic [RemW-1:0] rem2, rem_sub;
  logic            take;
  assign rem2    = rem_q << 1;
  assign take    = (rem2 >= RemW'(d_q));
  assign rem_sub = take ? (rem2 - RemW'(d_q)) : rem2;

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
      d_q    <= {1'b1, frac_n};
      rem_q  <= RemW'(1) << (ManBits - 1);  // doubled by the first step: 2^M (the dividend)
      quo_q  <= '0;
      sign_q <= sign;
      nan_q  <= is_nan;
      zero_q <= is_zero;
      inf_q  <= is_inf;
      rnd_q  <= rnd_i;
      sat_q  <= sat_i;
      exp_q  <= -$signed(ExpWidth'(W)) - e_in;
    end else if (busy_q) begin
      rem_q <= rem_sub;
      quo_q <= {quo_q[QW-2:0], take};
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
    .sign_i  (sign_q),
    .sig_i   (inf_q ? '0 : quo_q),        // 1/Inf = 0 (signed)
    .exp_i   (exp_q),
    // (the gates keep partial results while busy from raising sticky with sig = 0)
    .sticky_i(!busy_q && (rem_q != '0) && (quo_q != '0) && !inf_q),
    .is_nan_i(nan_q),
    .is_inf_i(zero_q),                    // 1/0 = Inf (signed)
    .rnd_i   (rnd_q),
    .sat_i   (sat_q),
    .res_o   (res_o)
  );

`ifndef SYNTHESIS
  initial begin
    if (ExpBits < 2 || ExpBits > 8)
      $fatal(1, "lightnorm_recip_seq: ExpBits %0d not in 2..8", ExpBits);
    if (ManBits < 1 || ManBits > 23)
      $fatal(1, "lightnorm_recip_seq: ManBits %0d not in 1..23", ManBits);
    if (PipeRegs < 0 || PipeRegs > 2)
      $fatal(1, "lightnorm_recip_seq: PipeRegs %0d not in 0..2", PipeRegs);
  end
`endif

endmodule
