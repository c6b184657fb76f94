// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_chan_unit: the sequential per-channel floating-point unit of the LightNorm
// core. It runs the per-channel steps of docs/spec.md one channel after the other, one
// operator per step on one small set of units (an accumulator rounder, one adder, one
// multiplier, the reciprocal and rsqrt tables in the statistics format, and one
// multiplier, one adder, a narrowing converter and a widening one in the running format).
// Every unit but the tables and the widening has PipeRegs register stages (the operators'
// PipeRegs, 0..3): a step holds its operands for 1 + PipeRegs cycles and writes its results in the
// last one (the K range-accumulation steps take one cycle each). Below, "steps":
//   OP_FINALIZE (F2 rest, F3, F6), per channel K + 7 steps:
//     r_acc = sum_k max_k - sum_k min_k over the layer's K_n <= K chunks (K cycles, exact
//     fixed point; the steps k >= K_n of a small layer add nothing), S = round(acc_x),
//     mu = round(acc_x * inv_count), r = round(r_acc / K_n), sigma = r * C, t = sigma + eps,
//     s = recip(t), a = gamma * s; running_mean = rm*keep + mu*mom,
//     running_var = rv*keep + (sigma*sigma)*mom (running format, on the other units in
//     the same steps).
//   OP_BWD_FINALIZE (B3), 5 steps: d_beta, d_gamma, k_beta, k_gamma,
//     corr = (a*d_gamma)*C/K_n (C/K_n: the host's range_const_per_chunk).
//   OP_INFER_PREP (I1, I2), 5 steps: mu = round(rm), v = round(rv), t = v + eps,
//     s = rsqrt(t), a = gamma * s.
// With Variance = 1 (two-pass mean / variance statistics, docs/spec.md F2 variance):
//   MEAN (after the core's OP_STATS pass), 2 steps: S = round(acc_x), mu = round(acc_x *
//     inv_count).
//   OP_FINALIZE (F2 rest, F3, F6), 5 steps: var = round(acc_q * inv_count) (acc_q =
//     sum (x - mu)^2, accumulator B), t = var + eps, s = rsqrt(t), a = gamma * s;
//     running_mean = rm*keep + mu*mom, running_var = rv*keep + round(acc_q *
//     inv_count_unbiased)*mom (the unbiased batch variance, read by the same accumulator
//     rounder: Variance = 1 needs the running format equal to the statistics format).
// Formats: every result and every operand except the accumulators and the chunk extremes is
// in the statistics format FP(StatExpBits, StatManBits) (with the running format for the
// running statistics); the accumulators hold exact sums of element-format values
// FP(ExpBits, ManBits) (LSB 2^(emin - ManBits) of that format) and the chunk extremes are
// element values: the accumulator rounder reads them straight into the statistics format
// (one rounding). The two formats are equal by default (numeric contract v1); contract v2
// uses a wider statistics format (docs/spec.md section 12).
// Reciprocal and rsqrt: the table units lightnorm_recip / lightnorm_rsqrt (one cycle) for
// StatManBits <= lightnorm_pkg::TableMaxManBits, else the sequential units
// lightnorm_recip_seq / lightnorm_rsqrt_seq: the step that uses one holds the sequencer until
// its done_o, which makes that step StatManBits + 6 + RoundRegs cycles long (more than
// 1 + PipeRegs; RoundRegs = min(PipeRegs, 2), the register stages of the units' rounders).
// The unit addresses the channel (chan_o) and chunk (chunk_o) whose operands it needs; the
// core returns them combinationally from its register files and stores the results the
// unit writes (at most one statistics-format and one running-format result per cycle). The
// accumulators (acc_a_i, acc_b_i and their flags) are the exception: the core reads them
// through a register addressed by chan_next_o, the channel of the next cycle, so that they
// too are channel chan_o's in every cycle while the unit is busy.
// The core ties sat_i to 1: per-channel results always saturate (docs/spec.md section 2).

module lightnorm_chan_unit #(
  parameter int ExpBits     = 5,        // element format exponent bits (accumulated values,
                                        // chunk extremes)
  parameter int ManBits     = 4,        // element format fraction bits
  parameter int StatExpBits = ExpBits,  // statistics format exponent bits (every result)
  parameter int StatManBits = ManBits,  // statistics format fraction bits
  parameter int RunExpBits  = 8,   // running format exponent bits
  parameter int RunManBits  = 23,  // running format fraction bits
  parameter int NumChunks   = 8,   // K
  parameter int AccWidth    = 59,  // accumulator width
  parameter int ChanWidth   = 6,   // width of a channel index
  parameter int Variance    = 0,   // 0 range statistics, 1 two-pass mean / variance
  // 0 exact accumulators (read by lightnorm_acc_round), 1 sequential ones (Variance = 1):
  // statistics-format values in acc_*_i[SW-1:0], read as round(acc * scale) by a multiplier
  parameter int Accumulation = 0,
  // register stages of every shared unit (their PipeRegs, 0..3): each step after
  // the range accumulation holds its operands PipeRegs more cycles and writes its results in
  // its last cycle (1 + PipeRegs cycles per step)
  parameter int PipeRegs    = 1,
  // derived, do not override
  parameter int W           = 1 + ExpBits + ManBits,
  parameter int SW          = 1 + StatExpBits + StatManBits,
  parameter int RW          = 1 + RunExpBits + RunManBits,
  parameter int KW          = (NumChunks > 1) ? $clog2(NumChunks) : 1
) (
  input  logic                 clk_i,
  input  logic                 rst_ni,
  // control
  input  logic                 start_i,
  input  logic [1:0]           op_i,          // 0 FINALIZE, 1 BWD_FINALIZE, 2 INFER_PREP, 3 MEAN
  input  logic [ChanWidth:0]   channels_i,    // C (>= 1), stable while busy
  output logic                 busy_o,
  output logic                 done_o,        // one-cycle pulse after the last channel
  // layer constants (statistics format unless noted), stable while busy
  input  logic [SW-1:0]        inv_count_i,
  input  logic [SW-1:0]        range_const_i,
  input  logic [SW-1:0]        range_const_per_chunk_i,
  input  logic [2:0]           klog_i,        // log2 K_n, the layer's chunks (<= log2 K)
  input  logic [SW-1:0]        eps_i,
  input  logic [RW-1:0]        momentum_i,    // running format
  input  logic [RW-1:0]        keep_i,        // running format (1 - momentum)
  input  logic [RW-1:0]        inv_count_unbiased_i,  // running format (Variance = 1)
  input  logic                 rnd_i,
  input  logic                 sat_i,         // overflow of the per-channel results (core: 1)
  // operand address and operands of the current channel
  output logic [ChanWidth-1:0] chan_o,
  output logic [ChanWidth-1:0] chan_next_o,   // chan_o of the next cycle
  output logic [KW-1:0]        chunk_o,
  input  logic [AccWidth-1:0]  acc_a_i,       // sum x (forward) or sum dy (backward)
  input  logic [2:0]           flags_a_i,     // {nan, +inf, -inf}
  input  logic [AccWidth-1:0]  acc_b_i,       // sum dy * x_hat
  input  logic [2:0]           flags_b_i,
  input  logic [W-1:0]         cmax_i,        // chunk chunk_o maximum (element format)
  input  logic [W-1:0]         cmin_i,        // chunk chunk_o minimum (element format)
  input  logic [SW-1:0]        gamma_i,
  input  logic [SW-1:0]        mean_i,        // mu of channel chan_o (Variance = 1)
  input  logic [SW-1:0]        coeff_i,
  input  logic [RW-1:0]        rmean_i,
  input  logic [RW-1:0]        rvar_i,
  // result writes (statistics-format field / running-format field of channel chan_o)
  output logic                 st_we_o,
  output logic [3:0]           st_field_o,
  output logic [SW-1:0]        st_data_o,
  output logic                 rf_we_o,
  output logic                 rf_field_o,    // 0 running mean, 1 running var
  output logic [RW-1:0]        rf_data_o
);

  // Statistics-format fields of the core's register file (same numbering in the core).
  localparam logic [3:0] FSum    = 4'd0;
  localparam logic [3:0] FMean   = 4'd1;
  localparam logic [3:0] FRange  = 4'd2;  // range_mean (range) / var (variance)
  localparam logic [3:0] FVar    = 4'd2;
  localparam logic [3:0] FSigma  = 4'd3;
  localparam logic [3:0] FScale  = 4'd4;
  localparam logic [3:0] FCoeff  = 4'd5;
  localparam logic [3:0] FDGamma = 4'd8;
  localparam logic [3:0] FDBeta  = 4'd9;
  localparam logic [3:0] FKBeta  = 4'd10;
  localparam logic [3:0] FKGamma = 4'd11;
  localparam logic [3:0] FCorr   = 4'd12;

  localparam logic [1:0] OpFin   = 2'd0;
  localparam logic [1:0] OpBFin  = 2'd1;
  localparam logic [1:0] OpIPrep = 2'd2;
  localparam logic [1:0] OpMean  = 2'd3;

  localparam int Bias = (1 << (StatExpBits - 1)) - 1;
  // 1.0 encoded in the statistics format (a scale of the accumulator rounder)
  localparam logic [SW-1:0] One  = {1'b0, StatExpBits'(Bias), {StatManBits{1'b0}}};
  localparam int StepW = $clog2(NumChunks + 8);
  localparam logic [StepW-1:0] LastFinStep = (Variance != 0) ? StepW'(4) : StepW'(NumChunks + 6);
  localparam logic [StepW-1:0] LastShortStep = StepW'(4);
  localparam logic [StepW-1:0] LastMeanStep = StepW'(1);
  // sequential reciprocal / rsqrt units where a table would be too large
  localparam int SeqUnits = (StatManBits > lightnorm_pkg::TableMaxManBits) ? 1 : 0;

  // ---------------------------------------------------------------------------------------
  // Sequencer
  // ---------------------------------------------------------------------------------------
  logic                 busy_q, done_q;
  logic [1:0]           op_q;
  logic [StepW-1:0]     step_q;
  logic [ChanWidth-1:0] chan_q;
  logic                 last_step, last_chan;
  // FINALIZE: phase j = step - K after the K range-accumulation steps (range), j = step
  // (variance)
  logic                 in_racc;
  logic [StepW-1:0]     j;
  // a step waiting for a sequential reciprocal / rsqrt unit or for the PipeRegs stages of the
  // shared units holds the sequencer (its operands stay put, its results are written in its
  // last cycle)
  logic                 hold, seq_hold, lat_hold;
  localparam int LatW = (PipeRegs > 0) ? $clog2(PipeRegs + 1) : 1;
  logic [LatW-1:0]      lat_q;  // cycles of the current step so far (saturates at PipeRegs)

  assign last_step = (op_q == OpFin)  ? (step_q == LastFinStep) :
                     (op_q == OpMean) ? (step_q == LastMeanStep) : (step_q == LastShortStep);
  assign last_chan = ({1'b0, chan_q} == channels_i - 1'b1);
  assign in_racc   = (Variance == 0) && (op_q == OpFin) && (step_q < StepW'(NumChunks));
  assign j         = (Variance != 0) ? step_q : step_q - StepW'(NumChunks);

  // the range accumulation (K steps) uses no pipelined unit: one cycle per step
  assign lat_hold = busy_q && !in_racc && (32'(lat_q) < PipeRegs);
  assign hold     = seq_hold || lat_hold;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;
      done_q <= 1'b0;
      op_q   <= OpFin;
      step_q <= '0;
      chan_q <= '0;
      lat_q  <= '0;
    end else begin
      done_q <= 1'b0;
      if (lat_hold) begin
        lat_q <= lat_q + 1'b1;
      end
      if (start_i && !busy_q) begin
        busy_q <= 1'b1;
        op_q   <= op_i;
        step_q <= '0;
        chan_q <= '0;
        lat_q  <= '0;
      end else if (busy_q && !hold) begin
        lat_q <= '0;
        if (last_step) begin
          step_q <= '0;
          if (last_chan) begin
            busy_q <= 1'b0;
            done_q <= 1'b1;
          end else begin
            chan_q <= chan_q + 1'b1;
          end
        end else begin
          step_q <= step_q + 1'b1;
        end
      end
    end
  end

  assign busy_o  = busy_q;
  assign done_o  = done_q;
  assign chan_o  = chan_q;
  // the next value of chan_q (the sequencer above)
  assign chan_next_o = (start_i && !busy_q) ? '0 :
                       (busy_q && !hold && last_step && !last_chan) ? chan_q + 1'b1 : chan_q;
  assign chunk_o = in_racc ? step_q[KW-1:0] : '0;

  // ---------------------------------------------------------------------------------------
  // Range accumulator: r_acc = sum_k max_k - sum_k min_k (exact), with special flags
  // ---------------------------------------------------------------------------------------
  logic [AccWidth-1:0] racc_q;
  logic [2:0]          rfl_q;
  // 1/K_n encoded in the statistics format (the accumulator rounder's scale of r; K_n <= K,
  // Bias - log2 K >= 1: a normal value)
  logic [SW-1:0]       inv_kn;
  // the chunk of step k is one of the layer's K_n chunks (k < K_n): it enters r_acc
  logic                chunk_live;

  assign inv_kn     = {1'b0, StatExpBits'(Bias) - StatExpBits'(klog_i), {StatManBits{1'b0}}};
  assign chunk_live = ((step_q >> klog_i) == '0);

  if (Variance == 0) begin : g_racc
    logic [AccWidth-1:0] fx_max, fx_min;
    logic                nan_max, nan_min;
    logic [1:0]          inf_max, inf_min;  // {-Inf, +Inf}
    logic [2:0]          rfl_new;

    // operand isolation: the converters see the chunk extremes only while accumulating them,
    // and zero (nothing to add) for the chunks k >= K_n of a small layer
    logic [W-1:0] cmax_g, cmin_g;
    assign cmax_g = (busy_q && in_racc && chunk_live) ? cmax_i : '0;
    assign cmin_g = (busy_q && in_racc && chunk_live) ? cmin_i : '0;
    // the converters' inputs: the extremes as read (PipeRegs = 0) or registered (below)
    logic [W-1:0] cmax_x, cmin_x;
    if (PipeRegs == 0) begin : g_cm_comb
      assign cmax_x = cmax_g;
      assign cmin_x = cmin_g;
    end

    lightnorm_fp_to_fixed #(.ExpBits(ExpBits), .ManBits(ManBits), .AccWidth(AccWidth)) u_fx_max (
      .a_i(cmax_x), .fixed_o(fx_max), .nan_o(nan_max), .inf_o(inf_max)
    );
    lightnorm_fp_to_fixed #(.ExpBits(ExpBits), .ManBits(ManBits), .AccWidth(AccWidth)) u_fx_min (
      .a_i(cmin_x), .fixed_o(fx_min), .nan_o(nan_min), .inf_o(inf_min)
    );

    // -min_k enters the sum: a minimum of -Inf is a +Inf term.
    assign rfl_new = {nan_max | nan_min, inf_max[0] | inf_min[1], inf_max[1] | inf_min[0]};
    // (cmax_i / cmin_i signs are not needed: the converters report the infinities' signs)

    if (PipeRegs == 0) begin : g_racc_comb
      // one cycle per chunk: read, convert and add in the step that reads the chunk
      always_ff @(posedge clk_i) begin
        if (busy_q && in_racc) begin
          if (step_q == '0) begin
            racc_q <= fx_max - fx_min;
            rfl_q  <= rfl_new;
          end else begin
            racc_q <= racc_q + fx_max - fx_min;
            rfl_q  <= rfl_q | rfl_new;
          end
        end
      end
    end else begin : g_racc_pipe
      // four register stages, one chunk per cycle: (1) the chunk extremes as read, (2) their
      // fixed-point values, (3) two 2-operand sums sum_k max_k and sum_k min_k, (4) their
      // difference. The last chunk is read in step K - 1; r_acc is complete four cycles
      // later, before FINALIZE step j = 2 (its first reader) starts: with PipeRegs >= 1 the
      // steps j = 0, 1 last 2 * (1 + PipeRegs) >= 4 cycles.
      logic               v1_q, v2_q, v3_q, first1_q, first2_q;
      logic [W-1:0]       cmax1_q, cmin1_q;
      logic [AccWidth-1:0] fxmax2_q, fxmin2_q, rmax3_q, rmin3_q;
      logic [2:0]         rfl2_q;

      assign cmax_x = cmax1_q;
      assign cmin_x = cmin1_q;

      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          v1_q <= 1'b0;
          v2_q <= 1'b0;
          v3_q <= 1'b0;
        end else begin
          v1_q <= busy_q && in_racc;
          v2_q <= v1_q;
          v3_q <= v2_q;
        end
      end
      always_ff @(posedge clk_i) begin
        if (busy_q && in_racc) begin
          first1_q <= (step_q == '0);
          cmax1_q  <= cmax_g;
          cmin1_q  <= cmin_g;
        end
        if (v1_q) begin
          first2_q <= first1_q;
          fxmax2_q <= fx_max;
          fxmin2_q <= fx_min;
          rfl2_q   <= rfl_new;
        end
        if (v2_q) begin
          rmax3_q <= first2_q ? fxmax2_q : rmax3_q + fxmax2_q;
          rmin3_q <= first2_q ? fxmin2_q : rmin3_q + fxmin2_q;
          rfl_q   <= first2_q ? rfl2_q : (rfl_q | rfl2_q);
        end
        if (v3_q) begin
          racc_q <= rmax3_q - rmin3_q;
        end
      end
    end
  end else begin : g_no_racc
    // variance statistics: no chunk extremes, no range accumulator
    assign racc_q = '0;
    assign rfl_q  = '0;
    logic unused_chunks;
    assign unused_chunks = ^{cmax_i, cmin_i, chunk_live};
  end

  // ---------------------------------------------------------------------------------------
  // Operand selection for the shared units
  // ---------------------------------------------------------------------------------------
  logic [AccWidth-1:0] ar_acc;
  logic [2:0]          ar_flags;
  logic [SW-1:0]        ar_scale, ar_res;
  logic [SW-1:0]        sm_a, sm_b, sm_res;
  logic [SW-1:0]        sa_a, sa_res;
  logic [SW-1:0]        rcp_res, rsq_res;
  logic [RW-1:0]       cv_r2s_in;
  logic [SW-1:0]        cv_r2s_res;
  logic [SW-1:0]        cv_s2r_in;
  logic [RW-1:0]       cv_s2r_res;
  logic [RW-1:0]       rm_a, rm_b, rm_res;
  logic [RW-1:0]       ra_a, ra_b, ra_res;

  // intermediate registers of the current channel
  logic [SW-1:0]  mu_q, r_q, sig_q, t_q, s_q, dg_q, ad_q;
  logic [RW-1:0] m1_q, m2_q, m3_q, bv_q, m4_q;

  // Operand isolation: a unit's operands are held at zero outside the steps that use it.
  // fin_on: range FINALIZE after the range accumulation; vfin_on: variance FINALIZE
  logic fin_on, vfin_on, bfin_on, iprep_on, mean_on;
  logic use_ar, use_sm, use_sa, use_rcp, use_rsq, use_r2s, use_s2r, use_rm, use_ra;
  assign fin_on   = busy_q && (op_q == OpFin) && (Variance == 0) && !in_racc;
  assign vfin_on  = busy_q && (op_q == OpFin) && (Variance != 0);
  assign bfin_on  = busy_q && (op_q == OpBFin);
  assign iprep_on = busy_q && (op_q == OpIPrep);
  assign mean_on  = busy_q && (op_q == OpMean);
  assign use_ar   = (fin_on && j <= StepW'(2)) || (bfin_on && step_q <= StepW'(3)) ||
                    (vfin_on && step_q <= StepW'(1)) || mean_on;
  assign use_sm   = (fin_on && (j == StepW'(3) || j == StepW'(6))) ||
                    (bfin_on && step_q >= StepW'(3)) || (iprep_on && step_q == StepW'(4)) ||
                    (vfin_on && step_q == StepW'(3));
  assign use_sa   = (fin_on && j == StepW'(4)) || (iprep_on && step_q == StepW'(2)) ||
                    (vfin_on && step_q == StepW'(1));
  assign use_rcp  = fin_on && j == StepW'(5);
  assign use_rsq  = (iprep_on && step_q == StepW'(3)) || (vfin_on && step_q == StepW'(2));
  assign use_r2s  = iprep_on && step_q <= StepW'(1);
  assign use_s2r  = (fin_on && (j == StepW'(2) || j == StepW'(4))) ||
                    (vfin_on && step_q == StepW'(2));
  assign use_rm   = (fin_on && (j <= StepW'(2) || j == StepW'(4) || j == StepW'(5))) ||
                    (vfin_on && step_q <= StepW'(3));
  assign use_ra   = (fin_on && (j == StepW'(3) || j == StepW'(6))) ||
                    (vfin_on && step_q >= StepW'(3));

  // converter inputs (own assignments: their results feed the operand selection below)
  // (the range-only registers mu_q, r_q, sig_q are not read at all when Variance = 1)
  assign cv_s2r_in = (Variance != 0) ? mean_i : (fin_on && j == StepW'(4)) ? sig_q : mu_q;
  assign cv_r2s_in = (busy_q && op_q == OpIPrep && step_q == StepW'(1)) ? rvar_i : rmean_i;

  always_comb begin
    ar_acc    = acc_a_i;
    ar_flags  = flags_a_i;
    ar_scale  = One;
    sm_a      = (Variance != 0) ? gamma_i : r_q;
    sm_b      = range_const_i;
    sa_a      = (Variance != 0) ? t_q : sig_q;
    rm_a      = rmean_i;
    rm_b      = keep_i;
    ra_a      = m1_q;
    ra_b      = m2_q;
    if (busy_q) begin
      unique case (op_q)
        OpFin: begin
          if (Variance != 0) begin
            unique case (step_q)
              StepW'(0): begin  // var = round(acc_q * inv_count); m1 = rm * keep
                ar_acc = acc_b_i; ar_flags = flags_b_i; ar_scale = inv_count_i;
              end
              StepW'(1): begin  // t = var + eps; bv = round(acc_q / (n - 1)); m3 = rv * keep
                sa_a = t_q;
                ar_acc = acc_b_i; ar_flags = flags_b_i; ar_scale = SW'(inv_count_unbiased_i);
                rm_a = rvar_i;
              end
              StepW'(2): begin  // s = rsqrt(t); m2 = mu * mom
                rm_a = cv_s2r_res; rm_b = momentum_i;
              end
              StepW'(3): begin  // a = gamma * s; running_mean = m1 + m2; m4 = bv * mom
                sm_a = gamma_i; sm_b = s_q;
                rm_a = bv_q; rm_b = momentum_i;
              end
              StepW'(4): begin  // running_var = m3 + m4
                ra_a = m3_q; ra_b = m4_q;
              end
              default: ;
            endcase
          end else if (!in_racc) begin
            unique case (j)
              StepW'(0): begin  // S = round(acc); m1 = rm * keep
              end
              StepW'(1): begin  // mu = round(acc * inv_count); m3 = rv * keep
                ar_scale = inv_count_i;
                rm_a = rvar_i;
              end
              StepW'(2): begin  // r = round(r_acc / K_n); m2 = mu * mom
                ar_acc = racc_q; ar_flags = rfl_q; ar_scale = inv_kn;
                rm_a = cv_s2r_res; rm_b = momentum_i;
              end
              StepW'(3): begin  // sigma = r * C; running_mean = m1 + m2
              end
              StepW'(4): begin  // t = sigma + eps; bv = sigma * sigma
                rm_a = cv_s2r_res; rm_b = cv_s2r_res;
              end
              StepW'(5): begin  // s = recip(t); m4 = bv * mom
                rm_a = bv_q; rm_b = momentum_i;
              end
              StepW'(6): begin  // a = gamma * s; running_var = m3 + m4
                sm_a = gamma_i; sm_b = s_q;
                ra_a = m3_q; ra_b = m4_q;
              end
              default: ;
            endcase
          end
        end
        OpBFin: begin
          unique case (step_q)
            StepW'(0): begin  // d_beta = round(sum dy)
            end
            StepW'(1): begin  // d_gamma = round(sum p)
              ar_acc = acc_b_i; ar_flags = flags_b_i;
            end
            StepW'(2): begin  // k_beta = round(sum dy * inv_count)
              ar_scale = inv_count_i;
            end
            StepW'(3): begin  // k_gamma = round(sum p * inv_count); ad = a * d_gamma
              ar_acc = acc_b_i; ar_flags = flags_b_i; ar_scale = inv_count_i;
              sm_a = coeff_i; sm_b = dg_q;
            end
            StepW'(4): begin  // corr = ad * C/K_n
              sm_a = ad_q; sm_b = range_const_per_chunk_i;
            end
            default: ;
          endcase
        end
        OpIPrep: begin
          unique case (step_q)
            StepW'(0): begin  // mu = round(running_mean)
            end
            StepW'(1): begin  // v = round(running_var)
            end
            StepW'(2): begin  // t = v + eps
              sa_a = t_q;
            end
            StepW'(3): begin  // s = rsqrt(t)
            end
            StepW'(4): begin  // a = gamma * s
              sm_a = gamma_i; sm_b = s_q;
            end
            default: ;
          endcase
        end
        OpMean: begin
          if (step_q == StepW'(1)) begin  // mu = round(acc_x * inv_count) (step 0: S)
            ar_scale = inv_count_i;
          end
        end
        default: ;
      endcase
    end
  end

  // Result writes of the current step.
  always_comb begin
    st_we_o    = 1'b0;
    st_field_o = FSum;
    st_data_o  = ar_res;
    rf_we_o    = 1'b0;
    rf_field_o = 1'b0;
    rf_data_o  = ra_res;
    if (busy_q) begin
      unique case (op_q)
        OpFin: begin
          if (Variance != 0) begin
            unique case (step_q)
              StepW'(0): begin st_we_o = 1'b1; st_field_o = FVar; end
              StepW'(2): begin st_we_o = 1'b1; st_field_o = FScale; st_data_o = rsq_res; end
              StepW'(3): begin
                st_we_o = 1'b1; st_field_o = FCoeff; st_data_o = sm_res;
                rf_we_o = 1'b1; rf_field_o = 1'b0;
              end
              StepW'(4): begin rf_we_o = 1'b1; rf_field_o = 1'b1; end
              default: ;
            endcase
          end else if (!in_racc) begin
            unique case (j)
              StepW'(0): begin st_we_o = 1'b1; st_field_o = FSum; end
              StepW'(1): begin st_we_o = 1'b1; st_field_o = FMean; end
              StepW'(2): begin st_we_o = 1'b1; st_field_o = FRange; end
              StepW'(3): begin
                st_we_o = 1'b1; st_field_o = FSigma; st_data_o = sm_res;
                rf_we_o = 1'b1; rf_field_o = 1'b0;
              end
              StepW'(5): begin st_we_o = 1'b1; st_field_o = FScale; st_data_o = rcp_res; end
              StepW'(6): begin
                st_we_o = 1'b1; st_field_o = FCoeff; st_data_o = sm_res;
                rf_we_o = 1'b1; rf_field_o = 1'b1;
              end
              default: ;
            endcase
          end
        end
        OpBFin: begin
          unique case (step_q)
            StepW'(0): begin st_we_o = 1'b1; st_field_o = FDBeta; end
            StepW'(1): begin st_we_o = 1'b1; st_field_o = FDGamma; end
            StepW'(2): begin st_we_o = 1'b1; st_field_o = FKBeta; end
            StepW'(3): begin st_we_o = 1'b1; st_field_o = FKGamma; end
            StepW'(4): begin st_we_o = 1'b1; st_field_o = FCorr; st_data_o = sm_res; end
            default: ;
          endcase
        end
        OpIPrep: begin
          unique case (step_q)
            StepW'(0): begin st_we_o = 1'b1; st_field_o = FMean; st_data_o = cv_r2s_res; end
            StepW'(3): begin st_we_o = 1'b1; st_field_o = FScale; st_data_o = rsq_res; end
            StepW'(4): begin st_we_o = 1'b1; st_field_o = FCoeff; st_data_o = sm_res; end
            default: ;
          endcase
        end
        OpMean: begin
          st_we_o = 1'b1; st_field_o = (step_q == StepW'(0)) ? FSum : FMean;
        end
        default: ;
      endcase
    end
    // a step writes in its last cycle only
    if (hold) begin
      st_we_o = 1'b0;
      rf_we_o = 1'b0;
    end
  end

  // Intermediate registers (written in the step that produces them).
  always_ff @(posedge clk_i) begin
    if (busy_q && !hold) begin
      unique case (op_q)
        OpFin: begin
          if (Variance != 0) begin
            unique case (step_q)
              StepW'(0): begin t_q <= ar_res; m1_q <= rm_res; end  // var, kept in t_q
              StepW'(1): begin t_q <= sa_res; bv_q <= RW'(ar_res); m3_q <= rm_res; end
              StepW'(2): begin s_q <= rsq_res; m2_q <= rm_res; end
              StepW'(3): m4_q <= rm_res;
              default: ;
            endcase
          end else if (!in_racc) begin
            unique case (j)
              StepW'(0): m1_q <= rm_res;
              StepW'(1): begin mu_q <= ar_res; m3_q <= rm_res; end
              StepW'(2): begin r_q <= ar_res; m2_q <= rm_res; end
              StepW'(3): sig_q <= sm_res;
              StepW'(4): begin t_q <= sa_res; bv_q <= rm_res; end
              StepW'(5): begin s_q <= rcp_res; m4_q <= rm_res; end
              default: ;
            endcase
          end
        end
        OpBFin: begin
          unique case (step_q)
            StepW'(1): dg_q <= ar_res;
            StepW'(3): ad_q <= sm_res;
            default: ;
          endcase
        end
        OpIPrep: begin
          unique case (step_q)
            StepW'(1): t_q <= cv_r2s_res;   // v, kept in t_q until t = v + eps
            StepW'(2): t_q <= sa_res;
            StepW'(3): s_q <= rsq_res;
            default: ;
          endcase
        end
        default: ;
      endcase
    end
  end

  // ---------------------------------------------------------------------------------------
  // Units
  // ---------------------------------------------------------------------------------------
  if (Accumulation == 0) begin : g_acc_exact
    lightnorm_acc_round #(
      .ExpBits(StatExpBits), .ManBits(StatManBits), .AccWidth(AccWidth), .AccExpBits(ExpBits),
      .AccManBits(ManBits), .PipeRegs(PipeRegs)
    ) u_acc_round (
      .clk_i     (clk_i),
      .en_i      (1'b1),
      .acc_i     (use_ar ? ar_acc : '0),
      .scale_i   (use_ar ? ar_scale : '0),
      .acc_nan_i (use_ar & ar_flags[2]),
      .acc_inf_i (use_ar ? {ar_flags[0], ar_flags[1]} : 2'b00),
      .rnd_i     (rnd_i),
      .sat_i     (sat_i),
      .res_o     (ar_res)
    );
  end else begin : g_acc_seq
    // the sum is already a statistics-format value: round(acc * scale), one multiplication
    // (scale 1: the value itself, a NaN canonical); the flags are not used
    lightnorm_fp_mul #(.ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(PipeRegs)) u_acc_mul (
      .clk_i(clk_i), .en_i(1'b1),
      .a_i(use_ar ? ar_acc[SW-1:0] : '0), .b_i(use_ar ? ar_scale : '0), .rnd_i(rnd_i),
      .sat_i(sat_i), .res_o(ar_res)
    );
    logic unused_acc;
    assign unused_acc = ^{ar_flags, ar_acc};
  end

  lightnorm_fp_mul #(.ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(PipeRegs)) u_st_mul (
    .clk_i(clk_i), .en_i(1'b1),
    .a_i(use_sm ? sm_a : '0), .b_i(use_sm ? sm_b : '0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(sm_res)
  );

  lightnorm_fp_add #(.ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(PipeRegs)) u_st_add (
    .clk_i(clk_i), .en_i(1'b1),
    .a_i(use_sa ? sa_a : '0), .b_i(use_sa ? eps_i : '0), .sub_i(1'b0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(sa_res)
  );

  // Reciprocal (range FINALIZE only) and rsqrt: tables (combinational, done at once) or
  // sequential units (start at the first cycle of their step, done_o ends the hold).
  logic rcp_done, rsq_done;
  assign seq_hold = (use_rcp && !rcp_done) || (use_rsq && !rsq_done);

  // the units' rounders take up to two of the step's PipeRegs register stages (the table
  // units: within the step; the sequential units: added to their latency)
  localparam int RoundRegs = (PipeRegs > 2) ? 2 : PipeRegs;
  if (SeqUnits == 0) begin : g_table_units
    assign rcp_done = 1'b1;
    assign rsq_done = 1'b1;
    if (Variance == 0) begin : g_recip
      lightnorm_recip #(
        .ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(RoundRegs)
      ) u_recip (
        .clk_i(clk_i), .en_i(1'b1), .v_i(use_rcp ? t_q : '0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(rcp_res)
      );
    end else begin : g_no_recip
      assign rcp_res = '0;
    end
    lightnorm_rsqrt #(
      .ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(RoundRegs)
    ) u_rsqrt (
      .clk_i(clk_i), .en_i(1'b1), .v_i(use_rsq ? t_q : '0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(rsq_res)
    );
  end else begin : g_seq_units
    // x_run_q: the unit of the current step has been started (cleared by its done_o)
    logic rsq_run_q, rsq_busy;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        rsq_run_q <= 1'b0;
      end else if (rsq_done) begin
        rsq_run_q <= 1'b0;
      end else if (use_rsq) begin
        rsq_run_q <= 1'b1;
      end
    end
    if (Variance == 0) begin : g_recip
      logic rcp_run_q, rcp_busy;
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          rcp_run_q <= 1'b0;
        end else if (rcp_done) begin
          rcp_run_q <= 1'b0;
        end else if (use_rcp) begin
          rcp_run_q <= 1'b1;
        end
      end
      lightnorm_recip_seq #(
        .ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(RoundRegs)
      ) u_recip (
        .clk_i(clk_i), .rst_ni(rst_ni), .start_i(use_rcp && !rcp_run_q),
        .v_i(use_rcp ? t_q : '0), .rnd_i(rnd_i), .sat_i(sat_i),
        .busy_o(rcp_busy), .done_o(rcp_done), .res_o(rcp_res)
      );
      logic unused_rcp_busy;
      assign unused_rcp_busy = rcp_busy;  // the step hold follows done_o
    end else begin : g_no_recip
      assign rcp_done = 1'b1;
      assign rcp_res  = '0;
    end
    lightnorm_rsqrt_seq #(
      .ExpBits(StatExpBits), .ManBits(StatManBits), .PipeRegs(RoundRegs)
    ) u_rsqrt (
      .clk_i(clk_i), .rst_ni(rst_ni), .start_i(use_rsq && !rsq_run_q),
      .v_i(use_rsq ? t_q : '0), .rnd_i(rnd_i), .sat_i(sat_i),
      .busy_o(rsq_busy), .done_o(rsq_done), .res_o(rsq_res)
    );
    logic unused_rsq_busy;
    assign unused_rsq_busy = rsq_busy;  // the step hold follows done_o
  end

  if (Variance == 0) begin : g_no_unbiased
    // inv_count_unbiased_i serves the variance statistics only
    logic unused_icu;
    assign unused_icu = ^inv_count_unbiased_i;
  end

  lightnorm_fp_convert #(
    .InExpBits(RunExpBits), .InManBits(RunManBits), .OutExpBits(StatExpBits),
    .OutManBits(StatManBits), .PipeRegs(PipeRegs)
  ) u_cvt_r2s (
    .clk_i(clk_i), .en_i(1'b1),
    .a_i(use_r2s ? cv_r2s_in : '0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(cv_r2s_res)
  );

  // Widening (exact, no rounding: the running format holds every statistics-format value); it
  // feeds the running-format multiplier in the same step, ahead of its pipeline registers.
  lightnorm_fp_widen #(
    .InExpBits(StatExpBits), .InManBits(StatManBits), .OutExpBits(RunExpBits),
    .OutManBits(RunManBits)
  ) u_cvt_s2r (
    .a_i(use_s2r ? cv_s2r_in : '0), .res_o(cv_s2r_res)
  );

  lightnorm_fp_mul #(.ExpBits(RunExpBits), .ManBits(RunManBits), .PipeRegs(PipeRegs)) u_rf_mul (
    .clk_i(clk_i), .en_i(1'b1),
    .a_i(use_rm ? rm_a : '0), .b_i(use_rm ? rm_b : '0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(rm_res)
  );

  lightnorm_fp_add #(.ExpBits(RunExpBits), .ManBits(RunManBits), .PipeRegs(PipeRegs)) u_rf_add (
    .clk_i(clk_i), .en_i(1'b1),
    .a_i(use_ra ? ra_a : '0), .b_i(use_ra ? ra_b : '0), .sub_i(1'b0), .rnd_i(rnd_i), .sat_i(sat_i), .res_o(ra_res)
  );

`ifndef SYNTHESIS
  initial begin
    if (PipeRegs < 0 || PipeRegs > 3)
      $fatal(1, "lightnorm_chan_unit: PipeRegs %0d not in 0..3", PipeRegs);
    if (RunExpBits < StatExpBits || RunManBits < StatManBits)
      $fatal(1, "lightnorm_chan_unit: the running format must hold the statistics format");
    if (Variance != 0 && (RunExpBits != StatExpBits || RunManBits != StatManBits))
      $fatal(1, "lightnorm_chan_unit: Variance = 1 needs the running format = the statistics format");
  end
`endif

endmodule
