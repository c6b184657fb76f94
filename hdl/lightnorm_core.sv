// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_core: the LightNorm batch-normalization core (docs/spec.md, docs/hardware.md).
// Commands (cmd_valid_i / cmd_ready_o / cmd_op_i) run the phases of a training step or of
// inference: OP_STATS (forward statistics on the producer's BFP output stream, groups passed
// through unchanged), OP_FINALIZE (per-channel mu, sigma, s, a, running statistics),
// OP_NORM (x in, y out), OP_BWD_SUMS (x and dy in), OP_BWD_FINALIZE (d_beta, d_gamma,
// k_beta, k_gamma, corr), OP_BWD_DX (x, dy in, dx out), OP_INFER_PREP (mu, s, a from the
// running statistics). A stream beat is one BFP group: Lanes channels at one (n, h, w)
// position, positions outer, channel groups inner; one group per cycle is sustained
// through a pipeline (S0 input register, S1 BFP unpack + statistics read-modify-write, the
// five lane datapath stages of 1 + DpPipeRegs cycles each, BFP pack = output register) with full
// valid/ready backpressure (a stalled output holds the whole pipeline). Per-channel
// results live in a small register file (statistics format) and a running-format file;
// the per-channel steps run on one sequential unit (lightnorm_chan_unit). Illegal
// configurations refuse the command (error_o, err_code_o) without consuming data.
// Numerics: element (compute = grad) format FP(ExpBits, ManBits) for x, dy, y, dx and every
// lane operator result; statistics format FP(StatExpBits, StatManBits) (default: the element
// format, numeric contract v1; contract v2: E8M7, docs/spec.md section 12) for every
// per-channel scalar (register file, channel unit, layer constants); the lane operators that
// combine an element with a per-channel scalar take both formats and round once to the
// element format. Range statistics, BFP rule max, rounding / overflow / grad mode selected
// at run time (per-channel results always saturate, spec section 2); bit-exact to
// lightnorm.reference. Range statistics use K_n = min(K, 2^(floor(log2 n) - 1)) chunks of a
// layer with n values per channel (spec section 4: K itself for n >= 2K, fewer for a small
// layer), derived from cfg_count_i when a command is accepted; a training command needs
// n >= 2.
// Two parameters turn the same core into the conventional batch-norm baseline
// (bn_fp32_core: FP32, Variance = 1, Bfp = 0):
//   Variance = 1: two-pass mean / variance statistics (spec F2 variance). OP_STATS gathers
//     sum x only and ends with the per-channel S, mu (2 channel-unit steps per channel); the
//     extra streaming command OP_VAR_SUMS (opcode 7, x in, no output) gathers sum (x - mu)^2;
//     OP_FINALIZE computes var, s = rsqrt(var + eps), a and the running statistics (unbiased
//     running variance). No chunk max / min storage; cfg_grad_mode_i is ignored (bn);
//     n >= 2. The running format must equal the statistics format.
//   Bfp = 0: a beat carries Lanes plain FP(ExpBits, ManBits) words (lane l's sign at
//     in_sign_i[l], its exponent field and fraction at in_mant_i[l*MagBits +: MagBits],
//     MagBits = ExpBits + ManBits); no BFP unpack / pack, in_exp_i is ignored and out_exp_o
//     is 0.

module lightnorm_core #(
  parameter int Lanes       = 16,  // channels per beat = BFP group size (power of two >= 2)
  parameter int ExpBits     = 5,   // element (compute / grad) format exponent bits
  parameter int ManBits     = 4,   // element (compute / grad) format fraction bits
  // statistics format of every per-channel scalar (holds every element value)
  parameter int StatExpBits = ExpBits,
  parameter int StatManBits = ManBits,
  parameter int BfpManBits  = 5,   // BFP magnitude bits per element
  parameter int BfpExpBits  = 8,   // BFP shared exponent bits
  parameter int NumChunks   = 8,   // K, range-statistics chunks (power of two, 1..64)
  parameter int MaxChannels = 64,  // largest C supported
  parameter int CountWidth  = 24,  // n = N*H*W must be < 2^CountWidth
  parameter int RunExpBits  = 8,   // running-statistics format exponent bits (>= StatExpBits)
  parameter int RunManBits  = 23,  // running-statistics format fraction bits (>= StatManBits)
  parameter int Variance    = 0,   // statistics: 0 range (one pass), 1 mean / variance (two)
  parameter int Bfp         = 1,   // streams: 1 BFP groups, 0 plain FP(ExpBits, ManBits) words
  // per-channel sums: 0 exact (fixed point, AccWidth bits), 1 sequential in the statistics
  // format (one rounded addition per value, stream order; Variance = 1 only)
  parameter int Accumulation = 0,
  // Accumulation = 1: register stages of the accumulator adders (lightnorm_stats AccPipeRegs,
  // 0..3): an update of a group still in flight holds the pipeline (docs/hardware.md
  // section 9), which never happens while the layer has G >= AccPipeRegs + 1 groups
  parameter int AccPipeRegs = 0,
  // register stages of every unit of the per-channel unit (lightnorm_chan_unit PipeRegs, 0..3):
  // each of its steps is 1 + ChanPipeRegs cycles long
  parameter int ChanPipeRegs = 3,
  // register stages inside every lane operator (lightnorm_datapath PipeRegs, 0..3): each lane
  // stage S2..S6 is 1 + DpPipeRegs cycles long
  parameter int DpPipeRegs  = 1,
  // Bfp = 1: register stages of the BFP pack (lightnorm_bfp_pack PipeRegs, 0..1): a register
  // after the shared exponent, one more cycle from the last lane stage to the output
  parameter int PackPipeRegs = 1,
  // storage of the per-channel register files (lightnorm_regfile Impl): 0 flip-flops,
  // 1 latches with a clock gate per word (same cycle behaviour)
  parameter int RegFile     = 0,
  // accumulator width: holds n * max_normal with LSB 2^(emin - ManBits), plus a sign bit
  parameter int AccWidth    = (1 << ExpBits) - 2 + ManBits + CountWidth + 1,
  // width of par_wdata_i / stat_rdata_o (derived, do not override)
  parameter int DataWidth   = ((1 + RunExpBits + RunManBits) > CountWidth) ?
                              (1 + RunExpBits + RunManBits) : CountWidth,
  // channel index width (derived, do not override)
  parameter int ChanWidth   = $clog2(((MaxChannels + Lanes - 1) / Lanes) * Lanes),
  // chunk index width (derived, do not override)
  parameter int KW          = (NumChunks > 1) ? $clog2(NumChunks) : 1,
  // per-lane magnitude width of the stream ports (derived, do not override): BFP magnitude
  // (Bfp = 1) or {exponent field, fraction} of a plain word (Bfp = 0)
  parameter int MagBits     = (Bfp != 0) ? BfpManBits : ExpBits + ManBits
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  // command
  input  logic                        cmd_valid_i,
  output logic                        cmd_ready_o,
  input  logic [2:0]                  cmd_op_i,
  output logic                        busy_o,
  output logic                        done_o,       // one-cycle pulse: command finished
  output logic                        error_o,      // last command refused (until next one)
  output logic [2:0]                  err_code_o,
  // layer configuration (stable while a command runs)
  input  logic [15:0]                 cfg_channels_i,             // C
  input  logic [31:0]                 cfg_count_i,                // n = N*H*W
  input  logic [StatExpBits+StatManBits:0] cfg_inv_count_i,       // stat format
  input  logic [StatExpBits+StatManBits:0] cfg_range_const_i,     // stat format
  input  logic [StatExpBits+StatManBits:0] cfg_range_const_per_chunk_i,  // stat format
  input  logic [StatExpBits+StatManBits:0] cfg_eps_i,             // stat format
  input  logic [RunExpBits+RunManBits:0] cfg_inv_count_unbiased_i,// running format (variance only)
  input  logic [RunExpBits+RunManBits:0] cfg_momentum_i,          // running format
  input  logic [RunExpBits+RunManBits:0] cfg_keep_i,              // running format, 1 - momentum
  input  logic                        cfg_rnd_i,                  // 0 RNE, 1 RTZ
  input  logic                        cfg_sat_i,                  // 0 overflow to Inf, 1 saturate
  input  logic                        cfg_grad_mode_i,            // 0 bn, 1 range_exact
  // per-channel parameter / context write (taken while idle; selects as stat_sel_i)
  input  logic                        par_we_i,
  input  logic [ChanWidth-1:0]        par_addr_i,
  input  logic [4:0]                  par_sel_i,    // field (stat_sel_i codes, see below)
  input  logic [KW-1:0]               par_chunk_i,  // chunk of a chunk max / min write
  input  logic [DataWidth-1:0]        par_wdata_i,  // the field's format, zero-extended
  // per-channel statistics read (combinational)
  input  logic [ChanWidth-1:0]        stat_addr_i,
  input  logic [4:0]                  stat_sel_i,
  input  logic [KW-1:0]               stat_chunk_i,
  output logic [DataWidth-1:0]        stat_rdata_o,
  // input stream: x group (and dy group for the backward passes)
  input  logic                        in_valid_i,
  output logic                        in_ready_o,
  input  logic [BfpExpBits-1:0]       in_exp_i,      // shared exponent (Bfp = 1)
  input  logic [Lanes-1:0]            in_sign_i,
  input  logic [Lanes*MagBits-1:0]    in_mant_i,
  input  logic [BfpExpBits-1:0]       in_dy_exp_i,
  input  logic [Lanes-1:0]            in_dy_sign_i,
  input  logic [Lanes*MagBits-1:0]    in_dy_mant_i,
  // output stream: x (OP_STATS), y (OP_NORM) or dx (OP_BWD_DX) group
  output logic                        out_valid_o,
  input  logic                        out_ready_i,
  output logic [BfpExpBits-1:0]       out_exp_o,     // 0 when Bfp = 0
  output logic [Lanes-1:0]            out_sign_o,
  output logic [Lanes*MagBits-1:0]    out_mant_o
);

  // ---------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------
  localparam int W         = 1 + ExpBits + ManBits;          // element word
  localparam int SW        = 1 + StatExpBits + StatManBits;  // statistics word
  localparam int RW        = 1 + RunExpBits + RunManBits;
  localparam int CW        = CountWidth;
  localparam int LW        = $clog2(Lanes);
  localparam int KLog      = $clog2(NumChunks);
  localparam int MaxGroups = (MaxChannels + Lanes - 1) / Lanes;
  localparam int MaxChP    = MaxGroups * Lanes;
  localparam int GW        = (MaxGroups > 1) ? $clog2(MaxGroups) : 1;
  localparam int BW        = BfpExpBits + Lanes + Lanes * MagBits;  // one beat
  localparam int MinCount  = 2;  // smallest n of a training command (range: K_n chunks, below)
  localparam int NumSt     = 13;
  // accumulator word: exact fixed point, or a statistics-format value (sequential)
  localparam int AccW      = (Accumulation != 0) ? SW : AccWidth;

  // command opcodes
  localparam logic [2:0] OpStats     = 3'd0;
  localparam logic [2:0] OpFinalize  = 3'd1;
  localparam logic [2:0] OpNorm      = 3'd2;
  localparam logic [2:0] OpBwdSums   = 3'd3;
  localparam logic [2:0] OpBwdFinal  = 3'd4;
  localparam logic [2:0] OpBwdDx     = 3'd5;
  localparam logic [2:0] OpInferPrep = 3'd6;
  localparam logic [2:0] OpVarSums   = 3'd7;  // Variance = 1 only (else a bad opcode)
  // error codes
  localparam logic [2:0] ErrNone        = 3'd0;
  localparam logic [2:0] ErrNoChannels  = 3'd1;  // C = 0
  localparam logic [2:0] ErrChannels    = 3'd2;  // C > MaxChannels
  localparam logic [2:0] ErrCountSmall  = 3'd3;  // n < 2 (training), n = 0 (norm)
  localparam logic [2:0] ErrCountLarge  = 3'd4;  // n >= 2^CountWidth
  localparam logic [2:0] ErrBadOp       = 3'd5;  // unknown opcode
  // statistics-format register-file fields (lightnorm_chan_unit uses the same numbers)
  // (0 sum_x, 1 mean, 2 range_mean, 3 sigma, 4 scale, 5 coeff, 6 gamma, 7 beta, 8 d_gamma,
  // 9 d_beta, 10 k_beta, 11 k_gamma, 12 correction; stat_sel_i 0..12 reads them directly)
  localparam int FMean = 1, FVar = 2, FScale = 4, FCoeff = 5, FGamma = 6, FBeta = 7;
  localparam int FKBeta = 10, FKGamma = 11, FCorr = 12;
  // stat_sel_i codes beyond the statistics-format fields 0..12
  localparam logic [4:0] SelRunMean  = 5'd13;
  localparam logic [4:0] SelRunVar   = 5'd14;
  localparam logic [4:0] SelVar      = 5'd15;  // var (Variance = 1; same field as range_mean)
  localparam logic [4:0] SelChMax    = 5'd16;
  localparam logic [4:0] SelChMin    = 5'd17;
  // datapath modes
  localparam logic [2:0] ModeNorm = 3'd0;
  localparam logic [2:0] ModeSums = 3'd1;
  localparam logic [2:0] ModeDxBn = 3'd2;
  localparam logic [2:0] ModeDxRe = 3'd3;
  localparam logic [2:0] ModeVar  = 3'd4;
  // Pipeline stages carry a valid bit: S0 input, S1 unpacked, the lane stages (operators of
  // 1 + DpPipeRegs cycles: stage k's operator takes its operands in stage op_in(k) and its
  // result register is op_in(k + 1)), then the output register (not counted). With
  // DpPipeRegs = 0: S0..S6 and the output register S7.
  localparam int DpStage   = 1 + DpPipeRegs;
  localparam int PackRegs = (Bfp != 0) ? PackPipeRegs : 0;
  // S0, S1, the five lane stages, the pack's register (PackRegs); the output register after
  localparam int NumStages = 2 + 5 * DpStage + PackRegs;
  // the stage that feeds lane stage k (2..7; 7: the last lane stage, feeding the packer)
  function automatic int op_in(input int k);
    op_in = 1 + (k - 2) * DpStage;
  endfunction
  localparam int SAccB = op_in(5);  // the S4 result register (p: accumulator B's input)

  typedef enum logic [1:0] {StIdle, StStream, StChan} state_e;

  // ---------------------------------------------------------------------------------------
  // Command acceptance and configuration check
  // ---------------------------------------------------------------------------------------
  state_e        state_q;
  logic [2:0]    op_q;
  logic          error_q, done_q;
  logic [2:0]    err_code_q;
  logic          rnd_q, sat_q;
  logic [ChanWidth:0] chan_q;    // C
  logic [CW-1:0] count_q;        // n
  logic [CW-1:0] chunk_len_q;    // m = n / K_n
  logic [2:0]    klog_q;         // log2 K_n (K_n: chunks of this layer, <= K)
  logic [KW-1:0] last_chunk_q;   // K_n - 1
  logic [GW-1:0] last_grp_q;     // G - 1
  logic [Lanes-1:0] last_mask_q; // valid lanes of the last group

  logic       cmd_fire, cmd_stream, cmd_chan, cmd_var, mean_epi;
  logic [2:0] cmd_err;

  assign cmd_ready_o = (state_q == StIdle);
  assign cmd_fire    = cmd_valid_i && cmd_ready_o;
  assign cmd_var     = (Variance != 0) && (cmd_op_i == OpVarSums);
  assign cmd_stream  = (cmd_op_i == OpStats) || (cmd_op_i == OpNorm) ||
                       (cmd_op_i == OpBwdSums) || (cmd_op_i == OpBwdDx) || cmd_var;
  assign cmd_chan    = (cmd_op_i == OpFinalize) || (cmd_op_i == OpBwdFinal) ||
                       (cmd_op_i == OpInferPrep);

  always_comb begin
    cmd_err = ErrNone;
    if (cmd_op_i > OpInferPrep && !cmd_var) begin
      cmd_err = ErrBadOp;
    end else if (cfg_channels_i == 16'd0) begin
      cmd_err = ErrNoChannels;
    end else if (32'(cfg_channels_i) > 32'(MaxChannels)) begin
      cmd_err = ErrChannels;
    end else if (cmd_op_i != OpInferPrep && (cfg_count_i >> CW) != 32'd0) begin
      cmd_err = ErrCountLarge;
    end else if (cmd_op_i == OpNorm && cfg_count_i == 32'd0) begin
      cmd_err = ErrCountSmall;
    end else if (cmd_op_i != OpNorm && cmd_op_i != OpInferPrep &&
                 cfg_count_i < 32'(MinCount)) begin
      cmd_err = ErrCountSmall;
    end
  end

  logic [ChanWidth:0] cmd_chan_n;
  logic [GW:0]        cmd_groups;
  logic [LW:0]        cmd_last_lanes;
  assign cmd_chan_n     = cfg_channels_i[ChanWidth:0];
  assign cmd_groups     = (GW+1)'((32'(cfg_channels_i) + 32'(Lanes) - 1) >> LW);
  assign cmd_last_lanes = (LW+1)'(32'(cfg_channels_i) - ((32'(cmd_groups) - 1) << LW));

  // K_n = min(K, 2^(floor(log2 n) - 1)) (docs/spec.md section 4): log2 K_n = min(log2 K,
  // msb(n) - 1), the largest power of two <= K with chunk length m = n >> log2 K_n >= 2; K
  // itself for every n >= 2K. (n < 2 has no training command; OP_NORM does not use it.)
  logic [4:0] cmd_msb;
  logic [2:0] cmd_klog;
  always_comb begin
    cmd_msb = '0;
    for (int b = 1; b < CW; b++) begin
      if (cfg_count_i[b]) cmd_msb = 5'(b);
    end
    if (cmd_msb > 5'(KLog)) begin
      cmd_klog = 3'(KLog);
    end else if (cmd_msb != '0) begin
      cmd_klog = 3'(cmd_msb - 5'd1);
    end else begin
      cmd_klog = '0;
    end
  end

  logic chan_done, stream_done;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q      <= StIdle;
      op_q         <= OpStats;
      error_q      <= 1'b0;
      err_code_q   <= ErrNone;
      done_q       <= 1'b0;
      rnd_q        <= 1'b0;
      sat_q        <= 1'b0;
      chan_q       <= '0;
      count_q      <= '0;
      chunk_len_q  <= '0;
      klog_q       <= '0;
      last_chunk_q <= '0;
      last_grp_q   <= '0;
      last_mask_q  <= '0;
    end else begin
      done_q <= 1'b0;
      if (cmd_fire) begin
        error_q    <= (cmd_err != ErrNone);
        err_code_q <= cmd_err;
        if (cmd_err != ErrNone) begin
          done_q <= 1'b1;
        end else begin
          state_q      <= cmd_stream ? StStream : StChan;
          op_q         <= cmd_op_i;
          rnd_q        <= cfg_rnd_i;
          sat_q        <= cfg_sat_i;
          chan_q       <= cmd_chan_n;
          count_q      <= cfg_count_i[CW-1:0];
          chunk_len_q  <= cfg_count_i[CW-1:0] >> cmd_klog;
          klog_q       <= cmd_klog;
          last_chunk_q <= KW'((32'd1 << cmd_klog) - 32'd1);
          last_grp_q   <= cmd_groups[GW-1:0] - 1'b1;
          for (int l = 0; l < Lanes; l++) begin
            last_mask_q[l] <= ((LW+1)'(l) < cmd_last_lanes);
          end
        end
      end else if (state_q == StStream && stream_done && mean_epi) begin
        state_q <= StChan;  // Variance = 1: S and mu follow the statistics pass
      end else if ((state_q == StStream && stream_done) || (state_q == StChan && chan_done)) begin
        state_q <= StIdle;
        done_q  <= 1'b1;
      end
    end
  end

  assign mean_epi   = (Variance != 0) && (op_q == OpStats);
  assign busy_o     = (state_q != StIdle);
  assign done_o     = done_q;
  assign error_o    = error_q;
  assign err_code_o = err_code_q;

  // ---------------------------------------------------------------------------------------
  // Input beat counters: group (inner), position (outer), chunk of the position
  // ---------------------------------------------------------------------------------------
  logic          adv;             // global pipeline advance
  logic          in_fire, in_done_q;
  logic [GW-1:0] grp_q;
  logic [CW-1:0] pos_q, cpos_q;
  logic [KW-1:0] chunk_q;
  logic          last_beat;

  assign in_ready_o = (state_q == StStream) && !in_done_q && adv;
  assign in_fire    = in_valid_i && in_ready_o;
  assign last_beat  = (grp_q == last_grp_q) && (pos_q == count_q - 1'b1);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      in_done_q <= 1'b0;
      grp_q     <= '0;
      pos_q     <= '0;
      cpos_q    <= '0;
      chunk_q   <= '0;
    end else if (cmd_fire) begin
      in_done_q <= 1'b0;
      grp_q     <= '0;
      pos_q     <= '0;
      cpos_q    <= '0;
      chunk_q   <= '0;
    end else if (in_fire) begin
      if (last_beat) begin
        in_done_q <= 1'b1;
      end
      if (grp_q == last_grp_q) begin
        grp_q <= '0;
        pos_q <= pos_q + 1'b1;
        if (cpos_q == chunk_len_q - 1'b1 && chunk_q != last_chunk_q) begin
          chunk_q <= chunk_q + 1'b1;
          cpos_q  <= '0;
        end else begin
          cpos_q <= cpos_q + 1'b1;
        end
      end else begin
        grp_q <= grp_q + 1'b1;
      end
    end
  end

  // ---------------------------------------------------------------------------------------
  // Pipeline control: valid bits and beat tags of S0..S6, output register S7
  // ---------------------------------------------------------------------------------------
  logic [NumStages-1:0]    v_q;
  logic [NumStages*GW-1:0] g_q;       // channel group of each stage
  logic [SAccB:0]          pinit_q;   // S0..SAccB: first position of the pass
  logic [KW-1:0]           chunk0_q, chunk1_q;
  logic                    cinit0_q, cinit1_q;
  logic                    out_valid_q;
  logic                    has_output;
  logic                    acc_busy;
  logic                    acc_hazard, hazard_a, hazard_b;

  assign has_output = (op_q == OpStats) || (op_q == OpNorm) || (op_q == OpBwdDx);
  // (acc_hazard: a sequential accumulator update at S1 / S4 would read a word still in
  // flight: S0..S4 hold, the output register drains)
  assign adv        = (!out_valid_q || out_ready_i) && !acc_hazard;
  // (acc_busy: the exact accumulators' two read-modify-write halves still landing)
  assign stream_done = in_done_q && (v_q == '0) && !out_valid_q && !acc_busy;

  // Stages a beat of the current command still needs: OP_STATS ends at S1 (statistics RMW;
  // its output comes from S0), OP_BWD_SUMS and OP_VAR_SUMS at the S4 result register
  // (accumulator B RMW), the others at the last lane stage.
  logic [NumStages-1:0] stage_mask;
  always_comb begin
    unique case (op_q)
      OpStats:   stage_mask = NumStages'(2'b11);
      OpBwdSums: stage_mask = NumStages'((1 << (SAccB + 1)) - 1);
      OpVarSums: stage_mask = NumStages'((1 << (SAccB + 1)) - 1);
      default:   stage_mask = '1;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v_q         <= '0;
      out_valid_q <= 1'b0;
    end else if (adv) begin
      v_q         <= {v_q[NumStages-2:0], in_fire} & stage_mask;
      out_valid_q <= has_output && ((op_q == OpStats) ? v_q[0] : v_q[NumStages-1]);
    end else if (out_ready_i) begin
      out_valid_q <= 1'b0;  // held by acc_hazard: the beat taken, a bubble follows
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv) begin
      g_q      <= {g_q[(NumStages-1)*GW-1:0], grp_q};
      pinit_q  <= {pinit_q[SAccB-1:0], (pos_q == '0)};
      chunk0_q <= chunk_q;
      chunk1_q <= chunk0_q;
      cinit0_q <= (cpos_q == '0);
      cinit1_q <= cinit0_q;
    end
  end

  function automatic logic [GW-1:0] stage_grp(input logic [NumStages*GW-1:0] gv, input int s);
    stage_grp = gv[s*GW +: GW];
  endfunction

  // g1..g5: the beat at the input of lane stage 2..6 (its operands)
  logic [GW-1:0] g1, g2, g3, g4, g5;
  assign g1 = stage_grp(g_q, 1);
  assign g2 = stage_grp(g_q, op_in(3));
  assign g3 = stage_grp(g_q, op_in(4));
  assign g4 = stage_grp(g_q, op_in(5));
  assign g5 = stage_grp(g_q, op_in(6));

  // ---------------------------------------------------------------------------------------
  // S0: input register (raw BFP groups); S1: unpacked element values
  // ---------------------------------------------------------------------------------------
  logic [BW-1:0]      x0_q, dy0_q;
  logic [Lanes*W-1:0] x_unp, dy_unp, x1_q, dy1_q;

  // (Bfp = 0: the unused shared-exponent field is held at zero)
  logic [BfpExpBits-1:0] in_exp_g, in_dy_exp_g;
  assign in_exp_g    = (Bfp != 0) ? in_exp_i : '0;
  assign in_dy_exp_g = (Bfp != 0) ? in_dy_exp_i : '0;

  always_ff @(posedge clk_i) begin
    if (adv && in_fire) begin
      x0_q  <= {in_exp_g, in_sign_i, in_mant_i};
      if (op_q == OpBwdSums || op_q == OpBwdDx) begin
        dy0_q <= {in_dy_exp_g, in_dy_sign_i, in_dy_mant_i};
      end
    end
  end

  if (Bfp != 0) begin : g_unpack
  lightnorm_bfp_unpack #(
    .Lanes(Lanes), .BfpManBits(BfpManBits), .BfpExpBits(BfpExpBits),
    .ExpBits(ExpBits), .ManBits(ManBits)
  ) u_unpack_x (
    .exp_i (x0_q[BW-1 -: BfpExpBits]),
    .sign_i(x0_q[Lanes*BfpManBits +: Lanes]),
    .mant_i(x0_q[Lanes*BfpManBits-1:0]),
    .rnd_i (rnd_q),
    .sat_i (sat_q),
    .val_o (x_unp)
  );

  lightnorm_bfp_unpack #(
    .Lanes(Lanes), .BfpManBits(BfpManBits), .BfpExpBits(BfpExpBits),
    .ExpBits(ExpBits), .ManBits(ManBits)
  ) u_unpack_dy (
    .exp_i (dy0_q[BW-1 -: BfpExpBits]),
    .sign_i(dy0_q[Lanes*BfpManBits +: Lanes]),
    .mant_i(dy0_q[Lanes*BfpManBits-1:0]),
    .rnd_i (rnd_q),
    .sat_i (sat_q),
    .val_o (dy_unp)
  );
  end else begin : g_plain_in
    // a plain beat: lane l = {sign, exponent field, fraction}, no rounding
    for (genvar l = 0; l < Lanes; l++) begin : g_lane
      assign x_unp[l*W +: W]  = {x0_q[Lanes*MagBits + l], x0_q[l*MagBits +: MagBits]};
      assign dy_unp[l*W +: W] = {dy0_q[Lanes*MagBits + l], dy0_q[l*MagBits +: MagBits]};
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv) begin
      x1_q  <= x_unp;
      dy1_q <= dy_unp;
    end
  end

  // ---------------------------------------------------------------------------------------
  // Per-channel register files: statistics format (13 fields) and running format (2), field f
  // of channel c at word f * MaxChP + c (lightnorm_regfile, RegFile: its storage variant).
  // One write port each; read ports: 8 per lane for the lane operators' per-channel operands,
  // 3 / 2 for the channel unit, 1 each for the statistics read port.
  // ---------------------------------------------------------------------------------------
  localparam int StWords = NumSt * MaxChP;
  localparam int StAW    = $clog2(StWords);
  localparam int RfAW    = $clog2(2 * MaxChP);
  localparam int LaneRd  = 8;               // st reads per lane
  localparam int StCu    = Lanes * LaneRd;  // the channel unit's 3 st reads
  localparam int StStat  = StCu + 3;        // the statistics read port's
  localparam int StRd    = StStat + 1;
  logic [StRd*StAW-1:0] st_raddr;
  logic [StRd*SW-1:0]   st_rdata;
  logic [3*RfAW-1:0]    rf_raddr;  // channel unit: rmean, rvar; statistics read port
  logic [3*RW-1:0]      rf_rdata;
  logic                 st_we, rf_we;
  logic [StAW-1:0]      st_waddr;
  logic [RfAW-1:0]      rf_waddr;

  logic                 cu_busy, cu_st_we, cu_rf_we, cu_rf_field;
  logic [3:0]           cu_st_field;
  logic [SW-1:0]        cu_st_data;
  logic [RW-1:0]        cu_rf_data;
  logic [ChanWidth-1:0] cu_chan, cu_chan_next;
  logic [KW-1:0]        cu_chunk;
  // Parameter / context write port (docs/hardware.md "Per-layer context"): while idle, any
  // field the statistics read port reads can be written back, so that a layer's context
  // saved after its forward phases (stat_* reads) restores the core before its later phases
  // (par_* writes): statistics-format fields 0..12 (15: var, field 2, Variance = 1), the
  // running statistics 13, 14 and the chunk extremes 16, 17 (range statistics).
  logic par_ok, par_st, par_rf, par_ch, par_sel_ok;
  assign par_ok     = par_we_i && (state_q == StIdle) && (32'(par_addr_i) < 32'(MaxChP));
  assign par_st     = (par_sel_i < 5'(NumSt)) || (Variance != 0 && par_sel_i == SelVar);
  assign par_rf     = (par_sel_i == SelRunMean) || (par_sel_i == SelRunVar);
  assign par_ch     = (Variance == 0) && (par_sel_i == SelChMax || par_sel_i == SelChMin);
  assign par_sel_ok = par_st || par_rf || par_ch;

  logic [3:0] par_field;
  assign par_field = (par_sel_i == SelVar) ? 4'(FVar) : par_sel_i[3:0];

  // The channel unit's results are registered before their register-file write (its
  // rounders' last stage and the files' write decode fall in different cycles): a result
  // lands one cycle after the step that computes it. No step reads the result of the step
  // just before it through the files (those pass in the unit's own registers), and a
  // command's done_o comes a cycle after its last write has landed; host writes (par_*)
  // only happen while idle.
  logic                 cw_st_we_q, cw_rf_we_q, cw_rf_field_q;
  logic [3:0]           cw_st_field_q;
  logic [ChanWidth-1:0] cw_chan_q;
  logic [SW-1:0]        cw_st_data_q;
  logic [RW-1:0]        cw_rf_data_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cw_st_we_q <= 1'b0;
      cw_rf_we_q <= 1'b0;
    end else begin
      cw_st_we_q <= cu_st_we;
      cw_rf_we_q <= cu_rf_we;
    end
  end
  always_ff @(posedge clk_i) begin
    if (cu_st_we || cu_rf_we) begin
      cw_chan_q     <= cu_chan;
      cw_st_field_q <= cu_st_field;
      cw_st_data_q  <= cu_st_data;
      cw_rf_field_q <= cu_rf_field;
      cw_rf_data_q  <= cu_rf_data;
    end
  end

  // the write port: the channel unit's registered result, else a host write
  assign st_we    = cw_st_we_q || (par_ok && par_st);
  assign st_waddr = cw_st_we_q ? StAW'(32'(cw_st_field_q) * MaxChP + 32'(cw_chan_q))
                               : StAW'(32'(par_field) * MaxChP + 32'(par_addr_i));
  assign rf_we    = cw_rf_we_q || (par_ok && par_rf);
  assign rf_waddr = cw_rf_we_q ? RfAW'((cw_rf_field_q ? MaxChP : 0) + 32'(cw_chan_q))
                               : RfAW'(((par_sel_i == SelRunVar) ? MaxChP : 0) +
                                       32'(par_addr_i));

  lightnorm_regfile #(.Words(StWords), .Width(SW), .NumRead(StRd), .Impl(RegFile)) u_st_file (
    .clk_i  (clk_i),
    .we_i   (st_we),
    .waddr_i(st_waddr),
    .wdata_i(cw_st_we_q ? cw_st_data_q : par_wdata_i[SW-1:0]),
    .raddr_i(st_raddr),
    .rdata_o(st_rdata)
  );

  lightnorm_regfile #(.Words(2 * MaxChP), .Width(RW), .NumRead(3), .Impl(RegFile)) u_rf_file (
    .clk_i  (clk_i),
    .we_i   (rf_we),
    .waddr_i(rf_waddr),
    .wdata_i(cw_rf_we_q ? cw_rf_data_q : par_wdata_i[RW-1:0]),
    .raddr_i(rf_raddr),
    .rdata_o(rf_rdata)
  );

  // Datapath mode of the current command: registered at the command's acceptance (with
  // op_q), so that the 16 lanes' operand selects start at a flip-flop, not at op_q's decoder.
  logic [2:0] mode, cmd_mode;

  always_comb begin
    unique case (cmd_op_i)
      OpNorm:    cmd_mode = ModeNorm;
      OpBwdSums: cmd_mode = ModeSums;
      OpVarSums: cmd_mode = ModeVar;
      OpBwdDx:   cmd_mode = (cfg_grad_mode_i && (Variance == 0)) ? ModeDxRe : ModeDxBn;
      default:   cmd_mode = ModeNorm;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      mode <= ModeNorm;
    end else if (cmd_fire && (cmd_err == ErrNone)) begin
      mode <= cmd_mode;
    end
  end

  // Register-file index of (field, channel group, lane). Every lane reads its own operands
  // (section "Lane datapath"): no wide shared operand vector.
  function automatic logic [StAW-1:0] st_idx(input int unsigned field, input logic [GW-1:0] g,
                                              input int unsigned lane);
    st_idx = StAW'(field * MaxChP + 32'(g) * Lanes + lane);
  endfunction

  // ---------------------------------------------------------------------------------------
  // Streaming statistics (accumulators, chunk extremes)
  // ---------------------------------------------------------------------------------------
  logic [Lanes*W-1:0]  p4;
  logic [GW-1:0]       cu_grp, stat_grp;
  assign cu_grp   = GW'(cu_chan >> LW);
  assign stat_grp = GW'(stat_addr_i >> LW);
  logic [Lanes-1:0]    is_max_w, is_min_w;
  logic [AccW-1:0]     f_acc_a, f_acc_b;
  logic [2:0]          f_flags_a, f_flags_b;
  logic [W-1:0]        f_max, f_min, s_max, s_min;

  // Operand isolation: the statistics RAMs are addressed (and their update logic fed) only
  // in the phases that use them, so their wide words do not toggle otherwise. The enables
  // are registered at the command's acceptance (with op_q, like `mode`): they select the
  // group address of every accumulator read, so they start at a flip-flop, not at op_q's
  // decoder.
  logic               acc_a_on, acc_b_on, chunk_on, acc_a_x;
  logic [Lanes*W-1:0] acc_a_val;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      acc_a_on <= 1'b0;
      acc_b_on <= 1'b0;
      chunk_on <= 1'b0;
      acc_a_x  <= 1'b0;
    end else if (cmd_fire && (cmd_err == ErrNone)) begin
      // accumulator A: sum x (OP_STATS), sum dy (OP_BWD_SUMS); B: sum dy * x_hat
      // (OP_BWD_SUMS), sum (x - mu)^2 (OP_VAR_SUMS)
      acc_a_on <= (cmd_op_i == OpStats) || (cmd_op_i == OpBwdSums);
      acc_b_on <= (cmd_op_i == OpBwdSums) || (cmd_op_i == OpVarSums);
      chunk_on <= (Variance == 0) &&
                  ((cmd_op_i == OpStats) || (cmd_op_i == OpBwdDx && cfg_grad_mode_i));
      acc_a_x  <= (cmd_op_i == OpStats);
    end
  end
  assign acc_hazard = (v_q[1] && acc_a_on && hazard_a) || (v_q[SAccB] && acc_b_on && hazard_b);
  if (Accumulation == 0) begin : g_acc_a_mux
    assign acc_a_val = !acc_a_on ? '0 : acc_a_x ? x1_q : dy1_q;
  end else begin : g_acc_a_reg
    // the sequential accumulators' adders take accumulator A's operand straight from an S1
    // register of its own (x or dy selected when S1 loads), not through a 512-bit select
    // behind the S1 registers
    logic [Lanes*W-1:0] acc_a1_q;
    always_ff @(posedge clk_i) begin
      if (adv) begin
        acc_a1_q <= !acc_a_on ? '0 : acc_a_x ? x_unp : dy_unp;
      end
    end
    assign acc_a_val = acc_a1_q;
  end

  lightnorm_stats #(
    .Lanes(Lanes), .ExpBits(ExpBits), .ManBits(ManBits), .NumChunks(NumChunks),
    .MaxGroups(MaxGroups), .AccWidth(AccW),
    .RangeStats((Variance != 0) ? 0 : 1), .Accumulation(Accumulation),
    .StatExpBits(StatExpBits), .StatManBits(StatManBits), .AccPipeRegs(AccPipeRegs)
  ) u_stats (
    .clk_i       (clk_i),
    .rnd_i       (rnd_q),
    .busy_o      (acc_busy),
    .hazard_a_o  (hazard_a),
    .hazard_b_o  (hazard_b),
    .adv_i       (adv),
    .a_grp_next_i(acc_a_on ? stage_grp(g_q, 0) : '0),
    .b_grp_next_i(acc_b_on ? stage_grp(g_q, SAccB - 1) : '0),
    .a_we_i      (adv && v_q[1] && (op_q == OpStats || op_q == OpBwdSums)),
    .a_grp_i     (acc_a_on ? g1 : '0),
    .a_init_i    (pinit_q[1]),
    .a_val_i     (acc_a_val),
    .b_we_i      (adv && v_q[SAccB] && acc_b_on),
    .b_grp_i     (acc_b_on ? g4 : '0),
    .b_init_i    (pinit_q[SAccB]),
    .b_val_i     (acc_b_on ? p4 : '0),
    .c_we_i      (adv && v_q[1] && (op_q == OpStats) && (Variance == 0)),
    .m_we_i      (adv && v_q[1] && chunk_on && (op_q == OpBwdDx)),
    .c_grp_i     (chunk_on ? g1 : '0),
    .c_chunk_i   (chunk_on ? chunk1_q : '0),
    .c_init_i    (cinit1_q),
    .c_val_i     (chunk_on ? x1_q : '0),
    .c_is_max_o  (is_max_w),
    .c_is_min_o  (is_min_w),
    .w_we_i      (par_ok && par_ch),
    .w_min_i     (par_sel_i == SelChMin),
    .w_grp_i     (GW'(par_addr_i >> LW)),
    .w_lane_i    (par_addr_i[LW-1:0]),
    .w_chunk_i   (par_chunk_i),
    .w_val_i     (par_wdata_i[W-1:0]),
    .fa_grp_i    (GW'(cu_chan_next >> LW)),
    .fa_lane_i   (cu_chan_next[LW-1:0]),
    .f_grp_i     (cu_grp),
    .f_lane_i    (cu_chan[LW-1:0]),
    .f_chunk_i   (cu_chunk),
    .f_acc_a_o   (f_acc_a),
    .f_flags_a_o (f_flags_a),
    .f_acc_b_o   (f_acc_b),
    .f_flags_b_o (f_flags_b),
    .f_max_o     (f_max),
    .f_min_o     (f_min),
    .s_grp_i     (stat_grp),
    .s_lane_i    (stat_addr_i[LW-1:0]),
    .s_chunk_i   (stat_chunk_i),
    .s_max_o     (s_max),
    .s_min_o     (s_min)
  );

  // ---------------------------------------------------------------------------------------
  // Lane datapath S2..S6
  // ---------------------------------------------------------------------------------------
  logic [Lanes*W-1:0] res6;
  logic [Lanes-1:0]   lane_en6;

  // the lanes work in OP_NORM, OP_BWD_SUMS, OP_VAR_SUMS and OP_BWD_DX (operand isolation
  // otherwise): registered, set with state_q = StStream by such a command, cleared when its
  // stream is done (the same cycles as a decode of state_q and op_q, from a flip-flop)
  logic dp_active;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      dp_active <= 1'b0;
    end else if (cmd_fire && (cmd_err == ErrNone)) begin
      dp_active <= cmd_stream && (cmd_op_i == OpNorm || cmd_op_i == OpBwdSums ||
                                  cmd_op_i == OpBwdDx || cmd_op_i == OpVarSums);
    end else if (state_q == StStream && stream_done) begin
      dp_active <= 1'b0;
    end
  end

  for (genvar l = 0; l < Lanes; l++) begin : g_lane
    logic          is_max, is_min;
    logic [SW-1:0] mean_l, kbeta_l, c3_l, kgamma_l, coeff4_l, beta_l, corr_l, coeff6_l;
    // operands of the stage operators: the channel of the beat in the feeding stage
    assign st_raddr[l*LaneRd*StAW +: LaneRd*StAW] = {
        st_idx(FCoeff, g5, l), st_idx(FCorr, g4, l), st_idx(FBeta, g4, l),
        st_idx(FCoeff, g3, l), st_idx(FKGamma, g3, l),
        st_idx((mode == ModeNorm) ? FCoeff : FScale, g2, l),
        st_idx(FKBeta, g1, l), st_idx(FMean, g1, l)};
    assign {coeff6_l, corr_l, beta_l, coeff4_l, kgamma_l, c3_l, kbeta_l, mean_l} =
        st_rdata[l*LaneRd*SW +: LaneRd*SW];
    assign is_max   = (mode == ModeDxRe) && is_max_w[l];
    assign is_min   = (mode == ModeDxRe) && is_min_w[l];

    lightnorm_datapath #(
      .ExpBits(ExpBits), .ManBits(ManBits), .StatExpBits(StatExpBits),
      .StatManBits(StatManBits), .PipeRegs(DpPipeRegs)
    ) u_dp (
      .clk_i     (clk_i),
      .en_i      (adv),
      .active_i  (dp_active),
      .mode_i    (mode),
      .rnd_i     (rnd_q),
      .sat_i     (sat_q),
      .x_i       (x1_q[l*W +: W]),
      .dy_i      (dy1_q[l*W +: W]),
      .is_max_i  (is_max),
      .is_min_i  (is_min),
      .mean_i    (mean_l),
      .kbeta_i   (kbeta_l),
      .c3_i      (c3_l),
      .kgamma4_i (kgamma_l),
      .coeff4_i  (coeff4_l),
      .beta5_i   (beta_l),
      .corr5_i   (corr_l),
      .coeff6_i  (coeff6_l),
      .p_o       (p4[l*W +: W]),
      .res_o     (res6[l*W +: W])
    );
  end

  // the valid lanes of the beat at the packer, registered: computed from the group of the
  // stage before, which moves there when the pipeline advances
  always_ff @(posedge clk_i) begin
    if (adv) begin
      lane_en6 <= (stage_grp(g_q, op_in(7) - 1) == last_grp_q) ? last_mask_q : {Lanes{1'b1}};
    end
  end

  // Padding lanes (channels >= C of the last group) enter the packer as +0.
  logic [Lanes*W-1:0] pk_val;
  for (genvar l = 0; l < Lanes; l++) begin : g_pad
    assign pk_val[l*W +: W] = lane_en6[l] ? res6[l*W +: W] : '0;
  end

  // ---------------------------------------------------------------------------------------
  // S7: BFP pack into the output register (OP_STATS: the S0 group unchanged)
  // ---------------------------------------------------------------------------------------
  logic [BfpExpBits-1:0]       pk_exp;
  logic [Lanes-1:0]            pk_sign;
  logic [BW-1:0]               out_q;

  logic [Lanes*MagBits-1:0] pk_mag;

  if (Bfp != 0) begin : g_pack
    logic [Lanes*BfpManBits-1:0] pk_mant;
    lightnorm_bfp_pack #(
      .Lanes(Lanes), .BfpManBits(BfpManBits), .BfpExpBits(BfpExpBits),
      .ExpBits(ExpBits), .ManBits(ManBits), .PipeRegs(PackRegs)
    ) u_pack (
      .clk_i    (clk_i),
      .en_i     (adv),
      .val_i    (pk_val),
      .lane_en_i(lane_en6),
      .rnd_i    (rnd_q),
      .exp_o    (pk_exp),
      .sign_o   (pk_sign),
      .mant_o   (pk_mant)
    );
    assign pk_mag = pk_mant;
  end else begin : g_plain_out
    // a plain beat: the element results as they are (padding lanes are +0)
    assign pk_exp  = '0;
    for (genvar l = 0; l < Lanes; l++) begin : g_lane
      assign pk_sign[l]                 = pk_val[l*W + W - 1];
      assign pk_mag[l*MagBits +: MagBits] = pk_val[l*W +: MagBits];
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv) begin
      out_q <= (op_q == OpStats) ? x0_q : {pk_exp, pk_sign, pk_mag};
    end
  end

  assign out_valid_o = out_valid_q;
  assign out_exp_o   = out_q[BW-1 -: BfpExpBits];
  assign out_sign_o  = out_q[Lanes*MagBits +: Lanes];
  assign out_mant_o  = out_q[Lanes*MagBits-1:0];

  // ---------------------------------------------------------------------------------------
  // Per-channel unit (FINALIZE, BWD_FINALIZE, INFER_PREP)
  // ---------------------------------------------------------------------------------------
  logic       cu_start;
  logic [1:0] cu_op;  // 0 FINALIZE, 1 BWD_FINALIZE, 2 INFER_PREP, 3 MEAN (after OP_STATS)
  // (a separate assign: Icarus 11 mis-compiles an enum comparison inside a port expression,
  // driving state_q to z)
  assign cu_op = (state_q == StStream)       ? 2'd3 :
                 (cmd_op_i == OpFinalize)    ? 2'd0 :
                 (cmd_op_i == OpBwdFinal)    ? 2'd1 : 2'd2;
  assign cu_start = (cmd_fire && cmd_chan && (cmd_err == ErrNone)) ||
                    (state_q == StStream && stream_done && mean_epi);

  lightnorm_chan_unit #(
    .ExpBits(ExpBits), .ManBits(ManBits), .StatExpBits(StatExpBits), .StatManBits(StatManBits),
    .RunExpBits(RunExpBits), .RunManBits(RunManBits), .NumChunks(NumChunks),
    .AccWidth(AccW), .ChanWidth(ChanWidth), .Variance(Variance), .PipeRegs(ChanPipeRegs),
    .Accumulation(Accumulation)
  ) u_chan (
    .clk_i                   (clk_i),
    .rst_ni                  (rst_ni),
    .start_i                 (cu_start),
    .op_i                    (cu_op),
    .channels_i              (cmd_fire ? cmd_chan_n : chan_q),
    .busy_o                  (cu_busy),
    .done_o                  (chan_done),
    .inv_count_i             (cfg_inv_count_i),
    .range_const_i           (cfg_range_const_i),
    .range_const_per_chunk_i (cfg_range_const_per_chunk_i),
    .klog_i                  (klog_q),
    .eps_i                   (cfg_eps_i),
    .momentum_i              (cfg_momentum_i),
    .keep_i                  (cfg_keep_i),
    .inv_count_unbiased_i    (cfg_inv_count_unbiased_i),
    .rnd_i                   (rnd_q),
    .sat_i                   (1'b1),  // per-channel results always saturate (spec section 2)
    .chan_o                  (cu_chan),
    .chan_next_o             (cu_chan_next),
    .chunk_o                 (cu_chunk),
    .acc_a_i                 (f_acc_a),
    .flags_a_i               (f_flags_a),
    .acc_b_i                 (f_acc_b),
    .flags_b_i               (f_flags_b),
    .cmax_i                  (f_max),
    .cmin_i                  (f_min),
    .gamma_i                 (st_rdata[StCu*SW +: SW]),
    .mean_i                  (st_rdata[(StCu+1)*SW +: SW]),
    .coeff_i                 (st_rdata[(StCu+2)*SW +: SW]),
    .rmean_i                 (rf_rdata[0 +: RW]),
    .rvar_i                  (rf_rdata[RW +: RW]),
    .st_we_o                 (cu_st_we),
    .st_field_o              (cu_st_field),
    .st_data_o               (cu_st_data),
    .rf_we_o                 (cu_rf_we),
    .rf_field_o              (cu_rf_field),
    .rf_data_o               (cu_rf_data)
  );

  // ---------------------------------------------------------------------------------------
  // Statistics read port
  // ---------------------------------------------------------------------------------------
  // the channel unit's register-file reads: channel cu_chan
  assign st_raddr[StCu*StAW +: 3*StAW] = {StAW'(FCoeff * MaxChP + 32'(cu_chan)),
                                          StAW'(FMean * MaxChP + 32'(cu_chan)),
                                          StAW'(FGamma * MaxChP + 32'(cu_chan))};
  assign rf_raddr[0 +: 2*RfAW]         = {RfAW'(MaxChP + 32'(cu_chan)), RfAW'(cu_chan)};
  // the statistics read port's: field stat_sel_i (FVar for SelVar, and for the selects of
  // the other files, whose read is not used), running field
  assign st_raddr[StStat*StAW +: StAW] =
      StAW'(((stat_sel_i < 5'(NumSt)) ? 32'(stat_sel_i[3:0]) : FVar) * MaxChP +
            32'(stat_addr_i));
  assign rf_raddr[2*RfAW +: RfAW] =
      RfAW'(((stat_sel_i == SelRunVar) ? MaxChP : 0) + 32'(stat_addr_i));

  always_comb begin
    stat_rdata_o = '0;
    if (stat_sel_i < 5'(NumSt)) begin
      stat_rdata_o = DataWidth'(st_rdata[StStat*SW +: SW]);
    end else begin
      unique case (stat_sel_i)
        SelRunMean:  stat_rdata_o = DataWidth'(rf_rdata[2*RW +: RW]);
        SelRunVar:   stat_rdata_o = DataWidth'(rf_rdata[2*RW +: RW]);
        SelVar:      stat_rdata_o = (Variance != 0) ? DataWidth'(st_rdata[StStat*SW +: SW]) : '0;
        SelChMax:    stat_rdata_o = DataWidth'(s_max);
        SelChMin:    stat_rdata_o = DataWidth'(s_min);
        default:     stat_rdata_o = '0;
      endcase
    end
  end

  // ---------------------------------------------------------------------------------------
  // Assertions (simulation only)
  // ---------------------------------------------------------------------------------------
`ifndef SYNTHESIS
  initial begin
    if (Lanes < 2 || (Lanes & (Lanes - 1)) != 0) $fatal(1, "Lanes must be a power of two >= 2");
    if (NumChunks < 1 || NumChunks > 64 || (NumChunks & (NumChunks - 1)) != 0)
      $fatal(1, "NumChunks must be a power of two in [1, 64]");
    if (StatExpBits < ExpBits || StatManBits < ManBits)
      $fatal(1, "the statistics format must hold every element-format value");
    if (RunExpBits < StatExpBits || RunManBits < StatManBits)
      $fatal(1, "the running format must hold every statistics-format value");
    if (CountWidth > 31) $fatal(1, "CountWidth must be <= 31");
    if (Variance != 0 && (RunExpBits != StatExpBits || RunManBits != StatManBits))
      $fatal(1, "Variance = 1 needs the running format equal to the statistics format");
    if (Accumulation != 0 && Variance == 0)
      $fatal(1, "Accumulation = 1 (sequential) is built for Variance = 1 only");
  end

  // Stream handshake rules (AXI-Stream style), every cycle: an output beat, once valid, stays
  // valid and unchanged until out_ready_i takes it; the producer must do the same with an
  // input beat while a streaming command expects it (an assumption on the environment,
  // checked); a streaming command with an
  // output emits exactly as many beats as it accepted (none dropped, none duplicated).
  logic          sva_out_hold_q, sva_in_hold_q;
  logic [BW-1:0] sva_out_q;
  logic [2*BW:0] sva_in_q;
  logic [31:0]   sva_in_cnt_q, sva_out_cnt_q;
  logic [BW-1:0] sva_out_now;
  logic [2*BW:0] sva_in_now;
  assign sva_out_now = {out_exp_o, out_sign_o, out_mant_o};
  assign sva_in_now  = {in_valid_i, in_exp_i, in_sign_i, in_mant_i,
                        in_dy_exp_i, in_dy_sign_i, in_dy_mant_i};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sva_out_hold_q <= 1'b0;
      sva_in_hold_q  <= 1'b0;
      sva_in_cnt_q   <= '0;
      sva_out_cnt_q  <= '0;
    end else begin
      if (sva_out_hold_q && !(out_valid_o && sva_out_now == sva_out_q))
        $error("output beat withdrawn or changed before out_ready_i took it");
      if (sva_in_hold_q && state_q == StStream && sva_in_now != sva_in_q)
        $error("input beat withdrawn or changed before in_ready_o took it (producer)");
      if (done_q && !error_q && (op_q == OpStats || op_q == OpNorm || op_q == OpBwdDx) &&
          sva_in_cnt_q != sva_out_cnt_q)
        $error("%0d input beats accepted, %0d output beats sent", sva_in_cnt_q, sva_out_cnt_q);
      sva_out_hold_q <= out_valid_o && !out_ready_i;
      sva_out_q      <= sva_out_now;
      // (only while the core expects beats: a refused or finished command's pending beat
      // may be withdrawn)
      sva_in_hold_q  <= in_valid_i && !in_ready_o && state_q == StStream && !in_done_q;
      sva_in_q       <= sva_in_now;
      if (cmd_fire) begin
        sva_in_cnt_q  <= '0;
        sva_out_cnt_q <= '0;
      end else begin
        sva_in_cnt_q  <= sva_in_cnt_q + 32'(in_fire);
        sva_out_cnt_q <= sva_out_cnt_q + 32'(out_valid_o && out_ready_i);
      end
    end
  end

  always @(posedge clk_i) begin
    if (in_fire && state_q != StStream) $error("input beat accepted outside a streaming phase");
    if (cu_busy && state_q != StChan) $error("channel unit busy outside a channel phase");
    if (out_valid_q && has_output == 1'b0) $error("output beat in a phase without output");
    if (par_we_i && state_q != StIdle) $error("par_we_i while busy: the write is ignored");
    if (par_we_i && !par_sel_ok) $error("par_we_i with par_sel_i %0d: not a writable field",
                                        par_sel_i);
  end
`endif

  // Bfp = 0: the shared-exponent inputs are not used.
  logic unused_exp;
  assign unused_exp = ^{in_exp_i, in_dy_exp_i};

endmodule
