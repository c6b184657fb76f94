// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_datapath: one lane of the LightNorm core's streaming element datapath
// (docs/spec.md F4, B2, B4, I3). Five register stages (S2..S6) follow the unpacked input
// stage S1 of the core; every stage is one correctly rounded operator (lightnorm_fp_add /
// lightnorm_fp_mul, each ending in lightnorm_round), so the lane computes exactly the
// reference model's chain of roundings:
//   S2  d = x - mu                       e = dy - k_beta
//   S3  xh = d * c3          (c3 = a for OP_NORM, s for the backward passes)
//   S4  NORM: xh   BWD_SUMS: p = dy * xh   DX bn: q = xh * k_gamma   DX range_exact: t = e * a
//   S5  NORM: y = xh + beta   DX bn: e - q   DX range_exact: t -+ corr at the chunk
//       arg-max / arg-min (t where both are the same element)
//   S6  DX bn: dx = (e - q) * a, else pass.
// Mode VAR_SUMS (variance statistics, second pass over x, docs/spec.md F2 variance):
//   S2 d = x - mu, S3 q = d * d, S4 passes q to p_o (the core's accumulator B).
//   (The core uses it only with its Variance parameter set.)
// All stages advance together on en_i (the core's global pipeline enable); the per-stage
// operands (mu, k_beta, ...) are the values of the channel of the beat in the stage that
// feeds them, selected by the core.
// PipeRegs (cvfpu's NumPipeRegs as the pattern; the operators' placement, 0..3): register
// stages inside every operator, so each of S2..S6 is 1 + PipeRegs cycles long; the values
// that pass a stage beside its operator (dy, e, the arg flags, pass-through results) are
// delayed as much (lightnorm_delay). The per-stage operands are consumed in the first cycle
// of their stage: the core reads them for the beat at the operator's input. Stage k's result
// register is then 1 + (k - 1) * (1 + PipeRegs) cycles after S0 (S4: p_o, S6: res_o).
// Formats: elements (x, dy and every stage result) are FP(ExpBits, ManBits) (compute = grad
// format); the per-channel operands (mu, k_beta, a, s, k_gamma, beta, corr) are
// FP(StatExpBits, StatManBits) (statistics format, docs/spec.md section 12), which holds every
// element value. Every operator takes its first operand (a) in the element format and its
// second (b) in the statistics format and rounds once to the element format (mixed-format
// lightnorm_fp_add / lightnorm_fp_mul). Where a b operand is an element value (VAR_SUMS d * d,
// BWD_SUMS dy * xh, DX bn e - q), it enters through lightnorm_fp_widen (exact; a wire when the
// two formats are equal).
// Operand isolation: an operator the current mode does not use (or every operator when the
// lane is idle, e.g. during OP_STATS) sees constant zero operands, so it does not toggle.

module lightnorm_datapath #(
  parameter int ExpBits     = 5,        // element (compute / grad) format exponent bits
  parameter int ManBits     = 4,        // element format fraction bits
  parameter int StatExpBits = ExpBits,  // statistics format exponent bits (>= ExpBits)
  parameter int StatManBits = ManBits,  // statistics format fraction bits (>= ManBits)
  parameter int PipeRegs    = 0,        // register stages inside each stage's operator (0..3)
  // derived, do not override
  parameter int W           = 1 + ExpBits + ManBits,
  parameter int SW          = 1 + StatExpBits + StatManBits
) (
  input  logic         clk_i,
  input  logic         en_i,        // pipeline advance
  input  logic         active_i,    // the current command streams through the lane
  input  logic [2:0]   mode_i,      // 0 NORM, 1 BWD_SUMS, 2 DX bn, 3 DX range_exact, 4 VAR_SUMS
  input  logic         rnd_i,       // 0 RNE, 1 RTZ
  input  logic         sat_i,       // 0 overflow to Inf, 1 saturate
  // S1 (inputs of the S2 operators)
  input  logic [W-1:0] x_i,
  input  logic [W-1:0] dy_i,
  input  logic         is_max_i,    // this element is its chunk's arg-max (range_exact)
  input  logic         is_min_i,    // ... arg-min
  input  logic [SW-1:0] mean_i,     // mu of the S1 beat's channel (statistics format)
  input  logic [SW-1:0] kbeta_i,    // k_beta of the S1 beat's channel
  // operands of the S3, S4, S5, S6 operators (channel of the S2, S3, S4, S5 beat; statistics
  // format)
  input  logic [SW-1:0] c3_i,
  input  logic [SW-1:0] kgamma4_i,
  input  logic [SW-1:0] coeff4_i,
  input  logic [SW-1:0] beta5_i,
  input  logic [SW-1:0] corr5_i,
  input  logic [SW-1:0] coeff6_i,
  // results
  output logic [W-1:0] p_o,         // S4 register: dy * x_hat (BWD_SUMS), (x - mu)^2 (VAR_SUMS)
  output logic [W-1:0] res_o        // S6 register: y or dx
);

  localparam logic [2:0] ModeNorm = 3'd0;
  localparam logic [2:0] ModeSums = 3'd1;
  localparam logic [2:0] ModeDxBn = 3'd2;
  localparam logic [2:0] ModeDxRe = 3'd3;
  localparam logic [2:0] ModeVar  = 3'd4;

  // ---- the command's mode and activity, registered in the lane (static while a command
  // streams; its first beat reaches S2 two cycles after the core sets them), so that their
  // fan-out inside the lane starts at a local flip-flop
  logic       active;
  logic [2:0] mode;
  always_ff @(posedge clk_i) begin
    active <= active_i;
    mode   <= mode_i;
  end

  // ---- operand isolation ------------------------------------------------------------
  logic use_sub_mu, use_sub_kb, use_mul3, use_mul4, use_add5, use_mul6, en;
  assign use_sub_mu = active && (mode != ModeDxRe);
  assign use_sub_kb = active && (mode == ModeDxBn || mode == ModeDxRe);
  assign use_mul3   = use_sub_mu;
  assign use_mul4   = active && (mode != ModeNorm) && (mode != ModeVar);
  assign use_add5   = active && (mode != ModeSums) && (mode != ModeVar);
  assign use_mul6   = active && (mode == ModeDxBn);
  assign en         = en_i && active;

  // ---- S2 ----------------------------------------------------------------------------
  logic [W-1:0] d2_d, e2_d;
  logic [W-1:0] d2_q, e2_q, dy2_q;
  logic         max2_q, min2_q;

  lightnorm_fp_add #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_sub_mu (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_sub_mu ? x_i : '0), .b_i(use_sub_mu ? mean_i : '0), .sub_i(1'b1),
    .rnd_i(rnd_i), .sat_i(sat_i), .res_o(d2_d)
  );
  lightnorm_fp_add #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_sub_kb (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_sub_kb ? dy_i : '0), .b_i(use_sub_kb ? kbeta_i : '0), .sub_i(1'b1),
    .rnd_i(rnd_i), .sat_i(sat_i), .res_o(e2_d)
  );

  // beside the S2 operators: dy and the arg flags
  logic [W-1:0] dy1_p;
  logic         max1_p, min1_p;
  lightnorm_delay #(.Width(W + 2), .Depth(PipeRegs)) u_dly2 (
    .clk_i(clk_i), .en_i(en), .d_i({dy_i, is_max_i, is_min_i}), .q_o({dy1_p, max1_p, min1_p})
  );

  always_ff @(posedge clk_i) begin
    if (en) begin
      d2_q   <= d2_d;
      e2_q   <= e2_d;
      dy2_q  <= dy1_p;
      max2_q <= max1_p;
      min2_q <= min1_p;
    end
  end

  // ---- S3 ----------------------------------------------------------------------------
  logic [W-1:0]  xh3_d;
  logic [W-1:0]  xh3_q, e3_q, dy3_q;
  logic          max3_q, min3_q;
  logic [SW-1:0] d2_w;  // d in the statistics format (VAR_SUMS: d * d)

  lightnorm_fp_widen #(
    .InExpBits(ExpBits), .InManBits(ManBits), .OutExpBits(StatExpBits), .OutManBits(StatManBits)
  ) u_widen3 (
    .a_i  (d2_q),
    .res_o(d2_w)
  );

  lightnorm_fp_mul #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_mul3 (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_mul3 ? d2_q : '0), .b_i(use_mul3 ? ((mode == ModeVar) ? d2_w : c3_i) : '0),
    .rnd_i(rnd_i), .sat_i(sat_i),
    .res_o(xh3_d)
  );

  logic [W-1:0] e2_p, dy2_p;
  logic         max2_p, min2_p;
  lightnorm_delay #(.Width(2 * W + 2), .Depth(PipeRegs)) u_dly3 (
    .clk_i(clk_i), .en_i(en), .d_i({e2_q, dy2_q, max2_q, min2_q}),
    .q_o({e2_p, dy2_p, max2_p, min2_p})
  );

  always_ff @(posedge clk_i) begin
    if (en) begin
      xh3_q  <= xh3_d;
      e3_q   <= e2_p;
      dy3_q  <= dy2_p;
      max3_q <= max2_p;
      min3_q <= min2_p;
    end
  end

  // ---- S4 ----------------------------------------------------------------------------
  logic [W-1:0]  m4a, m4_res;
  logic [SW-1:0] m4b;
  logic [W-1:0]  m4_q, e4_q;
  logic          max4_q, min4_q;
  logic [SW-1:0] xh3_w;  // x_hat in the statistics format (BWD_SUMS: dy * x_hat)

  lightnorm_fp_widen #(
    .InExpBits(ExpBits), .InManBits(ManBits), .OutExpBits(StatExpBits), .OutManBits(StatManBits)
  ) u_widen4 (
    .a_i  (xh3_q),
    .res_o(xh3_w)
  );

  always_comb begin
    unique case (mode)
      ModeSums: begin m4a = dy3_q; m4b = xh3_w;     end
      ModeDxBn: begin m4a = xh3_q; m4b = kgamma4_i; end
      ModeDxRe: begin m4a = e3_q;  m4b = coeff4_i;  end
      default:  begin m4a = xh3_q; m4b = xh3_w;     end
    endcase
  end

  lightnorm_fp_mul #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_mul4 (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_mul4 ? m4a : '0), .b_i(use_mul4 ? m4b : '0), .rnd_i(rnd_i), .sat_i(sat_i),
    .res_o(m4_res)
  );

  logic [W-1:0] xh3_p, e3_p;
  logic         max3_p, min3_p;
  lightnorm_delay #(.Width(2 * W + 2), .Depth(PipeRegs)) u_dly4 (
    .clk_i(clk_i), .en_i(en), .d_i({xh3_q, e3_q, max3_q, min3_q}),
    .q_o({xh3_p, e3_p, max3_p, min3_p})
  );

  always_ff @(posedge clk_i) begin
    if (en) begin
      m4_q   <= (mode == ModeNorm || mode == ModeVar) ? xh3_p : m4_res;
      e4_q   <= e3_p;
      max4_q <= max3_p;
      min4_q <= min3_p;
    end
  end

  assign p_o = m4_q;

  // ---- S5 ----------------------------------------------------------------------------
  logic [W-1:0]  a5a, a5_res;
  logic [SW-1:0] a5b;
  logic          a5_sub, a5_pass;
  logic [W-1:0]  r5_q;
  logic [SW-1:0] m4_w;  // S4 result in the statistics format (DX bn: e - q)

  lightnorm_fp_widen #(
    .InExpBits(ExpBits), .InManBits(ManBits), .OutExpBits(StatExpBits), .OutManBits(StatManBits)
  ) u_widen5 (
    .a_i  (m4_q),
    .res_o(m4_w)
  );

  always_comb begin
    a5_pass = 1'b0;
    unique case (mode)
      ModeNorm: begin a5a = m4_q; a5b = beta5_i; a5_sub = 1'b0; end
      ModeDxBn: begin a5a = e4_q; a5b = m4_w;    a5_sub = 1'b1; end
      ModeDxRe: begin
        a5a     = m4_q;
        a5b     = corr5_i;
        a5_sub  = max4_q;
        a5_pass = (max4_q == min4_q);  // neither, or an all-equal chunk (same element)
      end
      default:  begin a5a = m4_q; a5b = m4_w;    a5_sub = 1'b0; a5_pass = 1'b1; end
    endcase
  end

  lightnorm_fp_add #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_add5 (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_add5 ? a5a : '0), .b_i(use_add5 ? a5b : '0), .sub_i(a5_sub), .rnd_i(rnd_i),
    .sat_i(sat_i), .res_o(a5_res)
  );

  logic [W-1:0] m4_p;
  logic         a5_pass_p;
  lightnorm_delay #(.Width(W + 1), .Depth(PipeRegs)) u_dly5 (
    .clk_i(clk_i), .en_i(en), .d_i({m4_q, a5_pass}), .q_o({m4_p, a5_pass_p})
  );

  always_ff @(posedge clk_i) begin
    if (en) begin
      r5_q <= a5_pass_p ? m4_p : a5_res;
    end
  end

  // ---- S6 ----------------------------------------------------------------------------
  logic [W-1:0] m6_res;
  logic [W-1:0] r6_q;

  lightnorm_fp_mul #(
    .ExpBits(ExpBits), .ManBits(ManBits), .AExpBits(ExpBits), .AManBits(ManBits),
    .BExpBits(StatExpBits), .BManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_mul6 (
    .clk_i(clk_i), .en_i(en),
    .a_i(use_mul6 ? r5_q : '0), .b_i(use_mul6 ? coeff6_i : '0), .rnd_i(rnd_i), .sat_i(sat_i),
    .res_o(m6_res)
  );

  logic [W-1:0] r5_p;
  lightnorm_delay #(.Width(W), .Depth(PipeRegs)) u_dly6 (
    .clk_i(clk_i), .en_i(en), .d_i(r5_q), .q_o(r5_p)
  );

  always_ff @(posedge clk_i) begin
    if (en) begin
      r6_q <= (mode == ModeDxBn) ? m6_res : r5_p;
    end
  end

  assign res_o = r6_q;

endmodule
