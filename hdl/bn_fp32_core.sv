// SPDX-License-Identifier: Apache-2.0
//
// bn_fp32_core: the conventional FP32 batch-normalization baseline (issue 4), the design the
// LightNorm core is measured against. It is lightnorm_core with the parameters of
// conventional batch norm, so both designs share every block, interface and the streaming
// throughput (Lanes values per beat, one beat per cycle):
//   - IEEE FP32 (E8M23) compute = grad = statistics = running format, RNE (cfg_rnd_i = 0;
//     the other run-time modes stay available),
//   - two-pass mean / variance statistics (Variance = 1: OP_STATS gathers sum x, then S and
//     mu; OP_VAR_SUMS (opcode 7) gathers sum (x - mu)^2; OP_FINALIZE computes
//     var = round(sum * inv_count), s = rsqrt(var + eps), a = gamma * s and the running
//     statistics with the unbiased variance), bit-exact to lightnorm.reference with the
//     "fp32-bn-seq" preset ("fp32-bn" with Accumulation = 0),
//   - plain FP32 words on the streams (Bfp = 0: a beat is Lanes words of 32 bits:
//     in_sign_i[l], in_mant_i[l*31 +: 31] = {exponent field, fraction}; in_exp_i unused),
//   - rsqrt by the sequential unit lightnorm_rsqrt_seq (29 cycles per channel: 27 and its
//     rounder's two register stages; no divider or square-root array),
//   - FP32 accumulators (Accumulation = 1, the default: what a conventional design builds):
//     per channel one FP32 sum, each value added with one rounding in stream order
//     (docs/spec.md section 4, accumulation "sequential"); 32 bits per accumulator; the
//     adders pipelined (AccPipeRegs), an update of a group still in flight held (layers of
//     fewer than AccPipeRegs + 1 channel groups run their accumulating commands slower),
//     Accumulation = 0 builds the exact fixed-point accumulators of the LightNorm core
//     instead (2^8 - 2 + 23 + CountWidth + 1 = 302 bits for FP32 elements): the price of
//     exact FP32 sums, reported apart, not the baseline.
// Interface and opcodes: docs/hardware.md (section "The FP32 baseline core").

module bn_fp32_core #(
  parameter int Lanes       = 16,  // values per beat (power of two >= 2)
  parameter int NumChunks   = 8,   // unused by the variance statistics (kept for the port widths)
  parameter int MaxChannels = 64,  // largest C supported
  parameter int CountWidth  = 24,  // n = N*H*W must be < 2^CountWidth
  parameter int Accumulation = 1,  // 1 sequential FP32 sums (the baseline), 0 exact ones
  // register stages of the FP32 accumulator adders (an update of a group still in flight
  // holds the pipeline: never while G >= AccPipeRegs + 1), of the per-channel unit's and of
  // the lanes' operators (docs/hardware.md section 9)
  parameter int AccPipeRegs = 2,
  parameter int ChanPipeRegs = 3,
  parameter int DpPipeRegs  = 3,
  // storage of the per-channel register files: 0 flip-flops, 1 latches (lightnorm_core)
  parameter int RegFile     = 0,
  // fixed by the baseline (do not override)
  parameter int ExpBits     = 8,
  parameter int ManBits     = 23,
  parameter int RunExpBits  = 8,
  parameter int RunManBits  = 23,
  parameter int BfpManBits  = 5,   // unused (Bfp = 0)
  parameter int BfpExpBits  = 8,   // width of the unused shared-exponent ports
  parameter int Variance    = 1,
  parameter int Bfp         = 0,
  // derived, do not override
  parameter int DataWidth   = ((1 + RunExpBits + RunManBits) > CountWidth) ?
                              (1 + RunExpBits + RunManBits) : CountWidth,
  parameter int ChanWidth   = $clog2(((MaxChannels + Lanes - 1) / Lanes) * Lanes),
  parameter int KW          = (NumChunks > 1) ? $clog2(NumChunks) : 1,
  parameter int MagBits     = ExpBits + ManBits
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  input  logic                        cmd_valid_i,
  output logic                        cmd_ready_o,
  input  logic [2:0]                  cmd_op_i,
  output logic                        busy_o,
  output logic                        done_o,
  output logic                        error_o,
  output logic [2:0]                  err_code_o,
  input  logic [15:0]                 cfg_channels_i,
  input  logic [31:0]                 cfg_count_i,
  input  logic [ExpBits+ManBits:0]    cfg_inv_count_i,
  input  logic [ExpBits+ManBits:0]    cfg_range_const_i,
  input  logic [ExpBits+ManBits:0]    cfg_range_const_per_chunk_i,
  input  logic [ExpBits+ManBits:0]    cfg_eps_i,
  input  logic [RunExpBits+RunManBits:0] cfg_inv_count_unbiased_i,
  input  logic [RunExpBits+RunManBits:0] cfg_momentum_i,
  input  logic [RunExpBits+RunManBits:0] cfg_keep_i,
  input  logic                        cfg_rnd_i,
  input  logic                        cfg_sat_i,
  input  logic                        cfg_grad_mode_i,
  input  logic                        par_we_i,
  input  logic [ChanWidth-1:0]        par_addr_i,
  input  logic [4:0]                  par_sel_i,
  input  logic [KW-1:0]               par_chunk_i,
  input  logic [DataWidth-1:0]        par_wdata_i,
  input  logic [ChanWidth-1:0]        stat_addr_i,
  input  logic [4:0]                  stat_sel_i,
  input  logic [KW-1:0]               stat_chunk_i,
  output logic [DataWidth-1:0]        stat_rdata_o,
  input  logic                        in_valid_i,
  output logic                        in_ready_o,
  input  logic [BfpExpBits-1:0]       in_exp_i,
  input  logic [Lanes-1:0]            in_sign_i,
  input  logic [Lanes*MagBits-1:0]    in_mant_i,
  input  logic [BfpExpBits-1:0]       in_dy_exp_i,
  input  logic [Lanes-1:0]            in_dy_sign_i,
  input  logic [Lanes*MagBits-1:0]    in_dy_mant_i,
  output logic                        out_valid_o,
  input  logic                        out_ready_i,
  output logic [BfpExpBits-1:0]       out_exp_o,
  output logic [Lanes-1:0]            out_sign_o,
  output logic [Lanes*MagBits-1:0]    out_mant_o
);

  lightnorm_core #(
    .Lanes      (Lanes),
    .ExpBits    (ExpBits),
    .ManBits    (ManBits),
    .BfpManBits (BfpManBits),
    .BfpExpBits (BfpExpBits),
    .NumChunks  (NumChunks),
    .MaxChannels(MaxChannels),
    .CountWidth (CountWidth),
    .RunExpBits (RunExpBits),
    .RunManBits (RunManBits),
    .Variance   (Variance),
    .Bfp        (Bfp),
    .AccPipeRegs(AccPipeRegs),
    .Accumulation(Accumulation),
    .ChanPipeRegs(ChanPipeRegs),
    .DpPipeRegs (DpPipeRegs),
    .RegFile    (RegFile)
  ) u_core (
    .clk_i                      (clk_i),
    .rst_ni                     (rst_ni),
    .cmd_valid_i                (cmd_valid_i),
    .cmd_ready_o                (cmd_ready_o),
    .cmd_op_i                   (cmd_op_i),
    .busy_o                     (busy_o),
    .done_o                     (done_o),
    .error_o                    (error_o),
    .err_code_o                 (err_code_o),
    .cfg_channels_i             (cfg_channels_i),
    .cfg_count_i                (cfg_count_i),
    .cfg_inv_count_i            (cfg_inv_count_i),
    .cfg_range_const_i          (cfg_range_const_i),
    .cfg_range_const_per_chunk_i(cfg_range_const_per_chunk_i),
    .cfg_eps_i                  (cfg_eps_i),
    .cfg_inv_count_unbiased_i   (cfg_inv_count_unbiased_i),
    .cfg_momentum_i             (cfg_momentum_i),
    .cfg_keep_i                 (cfg_keep_i),
    .cfg_rnd_i                  (cfg_rnd_i),
    .cfg_sat_i                  (cfg_sat_i),
    .cfg_grad_mode_i            (cfg_grad_mode_i),
    .par_we_i                   (par_we_i),
    .par_addr_i                 (par_addr_i),
    .par_sel_i                  (par_sel_i),
    .par_chunk_i                (par_chunk_i),
    .par_wdata_i                (par_wdata_i),
    .stat_addr_i                (stat_addr_i),
    .stat_sel_i                 (stat_sel_i),
    .stat_chunk_i               (stat_chunk_i),
    .stat_rdata_o               (stat_rdata_o),
    .in_valid_i                 (in_valid_i),
    .in_ready_o                 (in_ready_o),
    .in_exp_i                   (in_exp_i),
    .in_sign_i                  (in_sign_i),
    .in_mant_i                  (in_mant_i),
    .in_dy_exp_i                (in_dy_exp_i),
    .in_dy_sign_i               (in_dy_sign_i),
    .in_dy_mant_i               (in_dy_mant_i),
    .out_valid_o                (out_valid_o),
    .out_ready_i                (out_ready_i),
    .out_exp_o                  (out_exp_o),
    .out_sign_o                 (out_sign_o),
    .out_mant_o                 (out_mant_o)
  );

endmodule
