// SPDX-License-Identifier: Apache-2.0
//
// lightnorm_stats: the per-channel streaming statistics of the LightNorm core
// (docs/spec.md sections 4, 6 F2 and 7 B2). It holds, per channel group (one BFP group =
// Lanes channels), two exact fixed-point accumulators per lane (A: sum of x in the
// forward, sum of dy in the backward; B: sum of dy * x_hat) and, per chunk k and group,
// the running chunk maximum / minimum of every lane. Every storage word is one group wide,
// so a beat is one read-modify-write of one word per array and one group per cycle is
// sustained even when consecutive beats hit the same group (the read is combinational, the
// write lands at the clock edge before the next beat reads). The accumulators keep the exact
// sum with LSB 2^(emin - ManBits) (no bit lost, order independent) plus NaN / +Inf / -Inf
// flags, the chunk comparison is IEEE (-0 = +0, the first occurrence wins ties, NaN compares
// above every number for max and below for min, the first NaN wins), so a stored extreme is
// the encoding of its first occurrence.
// Chunk arg-max / arg-min are not stored: the backward pass (OP_BWD_DX, range_exact) streams
// the same x again and recomputes them (m_we_i): the arg-max of a chunk is its first element
// equal to the stored maximum (same order key, -0 = +0; the first NaN when the maximum is
// NaN), which by the tie rule above is the element that set it; one "found" bit per lane and
// channel group marks the chunk in progress (reset by its first position, c_init_i).
// The chunk extremes can be written one lane at a time (w_we_i: the core's context write,
// while idle) so that a saved layer context can be restored before its backward pass.
// Arrays are not reset: the first beat of a pass (init) or of a chunk overwrites the stale
// content. Two read ports serve the per-channel finalize unit and the statistics read port;
// the finalize unit's accumulator read is registered: it is addressed by the channel of the
// next cycle (fa_grp_i / fa_lane_i) and gives that channel's words a cycle later (the
// accumulators do not change while the finalize unit runs, so no bypass is needed).
// RangeStats = 0 (the variance core) leaves out the chunk max / min storage and logic: its
// outputs read as zero.
// Accumulation = 1 (sequential, docs/spec.md section 4; the FP32 baseline bn_fp32_core) keeps
// each accumulator as a floating-point value of the statistics format FP(StatExpBits,
// StatManBits) instead: the first value of a pass is stored as it is (widened exactly), every
// later one is added with one rounding (lightnorm_fp_add, rnd_i, saturating like every
// per-channel result), in stream order; AccWidth is then the statistics word (its value in
// bits [SW-1:0]) and the flags read as zero.

module lightnorm_stats #(
  parameter int Lanes      = 16,  // channels per beat (BFP group size)
  parameter int ExpBits    = 5,   // element format exponent bits
  parameter int ManBits    = 4,   // element format fraction bits
  parameter int NumChunks  = 8,   // K, chunks per channel (power of two)
  parameter int MaxGroups  = 4,   // channel groups held (ceil(MaxChannels / Lanes))
  parameter int AccWidth   = 59,  // accumulator width (signed, LSB 2^(emin - ManBits))
  parameter int RangeStats = 1,   // 1: chunk max / min (arg recomputed); 0: none
  parameter int Accumulation = 0, // 0 exact fixed point, 1 sequential in the statistics format
  parameter int StatExpBits = ExpBits,  // statistics format (Accumulation = 1)
  parameter int StatManBits = ManBits,
  // Accumulation = 1: register stages of the accumulator adders (0..3): an update reads its
  // word when given and writes the sum AccPipeRegs cycles later; hazard_a_o / hazard_b_o
  // hold back an update of a group still in flight (below)
  parameter int AccPipeRegs = 0,
  // derived, do not override
  parameter int W          = 1 + ExpBits + ManBits,
  parameter int GW         = (MaxGroups > 1) ? $clog2(MaxGroups) : 1,
  parameter int KW         = (NumChunks > 1) ? $clog2(NumChunks) : 1,
  parameter int LW         = (Lanes > 1) ? $clog2(Lanes) : 1
) (
  input  logic                     clk_i,
  input  logic                     rnd_i,        // rounding of a sequential accumulation
  output logic                     busy_o,       // an accumulator update still in progress
  // Accumulation = 1, AccPipeRegs > 0: an update of a_grp_i / b_grp_i given now would read
  // its word before an earlier update of that group has written it (the core holds the beat)
  output logic                     hazard_a_o,
  output logic                     hazard_b_o,
  // Accumulation = 1: the pipeline advance and the groups of the next cycle's updates (the
  // beats one stage ahead of accumulator A's and B's), for the prefetch of their words
  input  logic                     adv_i,
  input  logic [GW-1:0]            a_grp_next_i,
  input  logic [GW-1:0]            b_grp_next_i,
  // accumulator A update (x in OP_STATS, dy in OP_BWD_SUMS)
  input  logic                     a_we_i,
  input  logic [GW-1:0]            a_grp_i,
  input  logic                     a_init_i,     // first position of the pass: overwrite
  input  logic [Lanes*W-1:0]       a_val_i,
  // accumulator B update (dy * x_hat in OP_BWD_SUMS)
  input  logic                     b_we_i,
  input  logic [GW-1:0]            b_grp_i,
  input  logic                     b_init_i,
  input  logic [Lanes*W-1:0]       b_val_i,
  // chunk max / min update (c_we_i: x in OP_STATS) and arg-max / arg-min recomputation
  // (m_we_i: x in OP_BWD_DX, range_exact) of the beat's (chunk, group) word
  input  logic                     c_we_i,
  input  logic                     m_we_i,
  input  logic [GW-1:0]            c_grp_i,
  input  logic [KW-1:0]            c_chunk_i,
  input  logic                     c_init_i,     // first position of the chunk: overwrite
  input  logic [Lanes*W-1:0]       c_val_i,
  output logic [Lanes-1:0]         c_is_max_o,   // lane's element is its chunk's arg-max
  output logic [Lanes-1:0]         c_is_min_o,   // lane's element is its chunk's arg-min
  // context write of one chunk extreme (one lane of one (chunk, group) word)
  input  logic                     w_we_i,
  input  logic                     w_min_i,      // 0 the maximum, 1 the minimum
  input  logic [GW-1:0]            w_grp_i,
  input  logic [LW-1:0]            w_lane_i,
  input  logic [KW-1:0]            w_chunk_i,
  input  logic [W-1:0]             w_val_i,
  // single-channel read for the finalize unit: accumulators and flags registered, addressed
  // by the next cycle's channel (fa_*); chunk extremes combinational, this cycle's (f_*)
  input  logic [GW-1:0]            fa_grp_i,
  input  logic [LW-1:0]            fa_lane_i,
  input  logic [GW-1:0]            f_grp_i,
  input  logic [LW-1:0]            f_lane_i,
  input  logic [KW-1:0]            f_chunk_i,
  output logic [AccWidth-1:0]      f_acc_a_o,
  output logic [2:0]               f_flags_a_o,  // {nan, +inf, -inf} seen
  output logic [AccWidth-1:0]      f_acc_b_o,
  output logic [2:0]               f_flags_b_o,
  output logic [W-1:0]             f_max_o,
  output logic [W-1:0]             f_min_o,
  // single-channel read for the statistics port
  input  logic [GW-1:0]            s_grp_i,
  input  logic [LW-1:0]            s_lane_i,
  input  logic [KW-1:0]            s_chunk_i,
  output logic [W-1:0]             s_max_o,
  output logic [W-1:0]             s_min_o
);

  localparam int ChunkWords = NumChunks * MaxGroups;
  localparam int CAW = (ChunkWords > 1) ? $clog2(ChunkWords) : 1;

  localparam int SW = 1 + StatExpBits + StatManBits;

  // ---------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------
  function automatic logic is_nan(input logic [W-2:0] mag);  // magnitude bits {exp, frac}
    is_nan = (&mag[W-2:ManBits]) && (|mag[ManBits-1:0]);
  endfunction

  // Ordering key of a non-NaN encoding: signed magnitude with -0 = +0.
  function automatic logic signed [W-1:0] order_key(input logic [W-1:0] v);
    logic signed [W-1:0] mag;
    mag = {1'b0, v[W-2:0]};
    order_key = v[W-1] ? -mag : mag;
  endfunction

  function automatic logic [CAW-1:0] chunk_addr(input logic [KW-1:0] k, input logic [GW-1:0] g);
    chunk_addr = CAW'(k) * CAW'(MaxGroups) + CAW'(g);
  endfunction

  // ---------------------------------------------------------------------------------------
  // Accumulators: read-modify-write of one group word per beat (one word = one channel group)
  // ---------------------------------------------------------------------------------------
  // (Per-lane values stay in per-lane nets; only the RAM words are group wide.)
  logic [Lanes*AccWidth-1:0] acc_a_q [MaxGroups];
  logic [Lanes*AccWidth-1:0] acc_b_q [MaxGroups];
  logic [Lanes*AccWidth-1:0] acc_a_d, acc_b_d, acc_a_rd, acc_b_rd;
  logic [Lanes*3-1:0]        f_fl_a_w, f_fl_b_w;
  // the update that writes this cycle (exact: the beat of the previous cycle, see g_exact)
  logic                      a_we, b_we;
  logic [GW-1:0]             a_grp, b_grp;

  assign acc_a_rd = acc_a_q[a_grp];
  assign acc_b_rd = acc_b_q[b_grp];

  if (Accumulation == 0) begin : g_exact
    // element -> exact fixed point, plus NaN / +Inf / -Inf flags, registered (R0: one cycle
    // after the update is given); then the read-modify-write of the word in two halves of
    // one cycle each, with the carry between them registered: R1 adds the low LoW bits of
    // every lane (and ORs the flags), R2 the high HiW bits plus R1's carry, each half a
    // one-cycle loop of its own group read and a LoW / HiW-bit addition. Back-to-back
    // updates of one group still see each other (each half writes before the next update's
    // same half reads it); busy_o is high while an update is in R1 or R2, and a finalize
    // read starts after it has fallen.
    localparam int LoW = AccWidth / 2;
    localparam int HiW = AccWidth - LoW;
    logic [Lanes*3-1:0] flags_a_q [MaxGroups];
    logic [Lanes*3-1:0] flags_b_q [MaxGroups];
    logic [Lanes*3-1:0] flags_a_d, flags_b_d, flags_a_rd, flags_b_rd;
    logic               a_we_q, b_we_q, a_init_q, b_init_q;
    logic [GW-1:0]      a_grp_q, b_grp_q;
    logic [Lanes*AccWidth-1:0] fx_a_q, fx_b_q;
    logic [Lanes*3-1:0]        fl_a_q, fl_b_q;
    logic [Lanes*AccWidth-1:0] fx_a_w, fx_b_w;
    logic [Lanes*3-1:0]        fl_a_w, fl_b_w;

    // R2: the high halves' update (group, init, high addend bits, carry of R1 per lane)
    logic               a_we_h, b_we_h, a_init_h, b_init_h;
    logic [GW-1:0]      a_grp_h, b_grp_h;
    logic [Lanes*HiW-1:0] fx_a_h, fx_b_h;
    logic [Lanes-1:0]   c_a_h, c_b_h, c_a_w, c_b_w;
    logic [Lanes*AccWidth-1:0] acc_a_hrd, acc_b_hrd;  // the words the high halves read

    assign acc_a_hrd = acc_a_q[a_grp_h];
    assign acc_b_hrd = acc_b_q[b_grp_h];
    // (R1 reads only the low halves of acc_x_rd, R2 only the high halves of acc_x_hrd)
    logic unused_halves;
    assign unused_halves = ^{acc_a_rd, acc_b_rd, acc_a_hrd, acc_b_hrd};

    always_ff @(posedge clk_i) begin
      a_we_q <= a_we_i;
      b_we_q <= b_we_i;
      a_we_h <= a_we_q;
      b_we_h <= b_we_q;
      if (a_we_q) begin
        a_grp_h  <= a_grp_q;
        a_init_h <= a_init_q;
        c_a_h    <= c_a_w;
      end
      if (b_we_q) begin
        b_grp_h  <= b_grp_q;
        b_init_h <= b_init_q;
        c_b_h    <= c_b_w;
      end
      for (int l = 0; l < Lanes; l++) begin
        if (a_we_q) fx_a_h[l*HiW +: HiW] <= fx_a_q[l*AccWidth+LoW +: HiW];
        if (b_we_q) fx_b_h[l*HiW +: HiW] <= fx_b_q[l*AccWidth+LoW +: HiW];
      end
      // R1 writes the low halves, R2 the high halves
      for (int l = 0; l < Lanes; l++) begin
        if (a_we) acc_a_q[a_grp][l*AccWidth +: LoW] <= acc_a_d[l*AccWidth +: LoW];
        if (b_we) acc_b_q[b_grp][l*AccWidth +: LoW] <= acc_b_d[l*AccWidth +: LoW];
        if (a_we_h) acc_a_q[a_grp_h][l*AccWidth+LoW +: HiW] <= acc_a_d[l*AccWidth+LoW +: HiW];
        if (b_we_h) acc_b_q[b_grp_h][l*AccWidth+LoW +: HiW] <= acc_b_d[l*AccWidth+LoW +: HiW];
      end
    end
    assign busy_o = a_we_q || b_we_q || a_we_h || b_we_h;
    assign hazard_a_o = 1'b0;  // (each half is a one-cycle loop)
    assign hazard_b_o = 1'b0;

    always_ff @(posedge clk_i) begin
      if (a_we_i) begin
        a_grp_q  <= a_grp_i;
        a_init_q <= a_init_i;
        fx_a_q   <= fx_a_w;
        fl_a_q   <= fl_a_w;
      end
      if (b_we_i) begin
        b_grp_q  <= b_grp_i;
        b_init_q <= b_init_i;
        fx_b_q   <= fx_b_w;
        fl_b_q   <= fl_b_w;
      end
    end
    assign a_we  = a_we_q;
    assign b_we  = b_we_q;
    assign a_grp = a_grp_q;
    assign b_grp = b_grp_q;

    assign flags_a_rd = flags_a_q[a_grp];
    assign flags_b_rd = flags_b_q[b_grp];

    for (genvar l = 0; l < Lanes; l++) begin : g_lane_acc
      logic [AccWidth-1:0] fx_a, fx_b;
      logic                nan_a, nan_b;
      logic [1:0]          inf_a, inf_b;  // {-Inf, +Inf}
      logic [2:0]          fl_a, fl_b;    // {nan, +inf, -inf}
      lightnorm_fp_to_fixed #(
        .ExpBits (ExpBits),
        .ManBits (ManBits),
        .AccWidth(AccWidth)
      ) u_fx_a (
        .a_i    (a_val_i[l*W +: W]),
        .fixed_o(fx_a),
        .nan_o  (nan_a),
        .inf_o  (inf_a)
      );
      lightnorm_fp_to_fixed #(
        .ExpBits (ExpBits),
        .ManBits (ManBits),
        .AccWidth(AccWidth)
      ) u_fx_b (
        .a_i    (b_val_i[l*W +: W]),
        .fixed_o(fx_b),
        .nan_o  (nan_b),
        .inf_o  (inf_b)
      );
      assign fl_a = {nan_a, inf_a[0], inf_a[1]};
      assign fl_b = {nan_b, inf_b[0], inf_b[1]};
      assign fx_a_w[l*AccWidth +: AccWidth] = fx_a;
      assign fx_b_w[l*AccWidth +: AccWidth] = fx_b;
      assign fl_a_w[l*3 +: 3] = fl_a;
      assign fl_b_w[l*3 +: 3] = fl_b;

      // R1: low half and its carry; R2: high half plus the carry
      assign {c_a_w[l], acc_a_d[l*AccWidth +: LoW]} =
          (a_init_q ? (LoW + 1)'(0) : (LoW + 1)'(acc_a_rd[l*AccWidth +: LoW])) +
          (LoW + 1)'(fx_a_q[l*AccWidth +: LoW]);
      assign acc_a_d[l*AccWidth+LoW +: HiW] =
          (a_init_h ? HiW'(0) : acc_a_hrd[l*AccWidth+LoW +: HiW]) + fx_a_h[l*HiW +: HiW] +
          HiW'(c_a_h[l]);
      assign flags_a_d[l*3 +: 3] = a_init_q ? fl_a_q[l*3 +: 3]
                                            : (flags_a_rd[l*3 +: 3] | fl_a_q[l*3 +: 3]);
      assign {c_b_w[l], acc_b_d[l*AccWidth +: LoW]} =
          (b_init_q ? (LoW + 1)'(0) : (LoW + 1)'(acc_b_rd[l*AccWidth +: LoW])) +
          (LoW + 1)'(fx_b_q[l*AccWidth +: LoW]);
      assign acc_b_d[l*AccWidth+LoW +: HiW] =
          (b_init_h ? HiW'(0) : acc_b_hrd[l*AccWidth+LoW +: HiW]) + fx_b_h[l*HiW +: HiW] +
          HiW'(c_b_h[l]);
      assign flags_b_d[l*3 +: 3] = b_init_q ? fl_b_q[l*3 +: 3]
                                            : (flags_b_rd[l*3 +: 3] | fl_b_q[l*3 +: 3]);
    end

    always_ff @(posedge clk_i) begin
      if (a_we) flags_a_q[a_grp] <= flags_a_d;
      if (b_we) flags_b_q[b_grp] <= flags_b_d;
    end

    assign f_fl_a_w = flags_a_q[fa_grp_i];
    assign f_fl_b_w = flags_b_q[fa_grp_i];
    logic unused_rnd;
    assign unused_rnd = ^{rnd_i, adv_i, a_grp_next_i, b_grp_next_i};
  end else begin : g_sequential
    // one rounded addition per value in the statistics format (saturating): the update
    // given in cycle t adds to its group word as it stood at the end of cycle t - 1 (the
    // prefetch below), the adders' AccPipeRegs register stages follow, and the sum (or, for
    // the first value of the pass, the value itself, widened exactly) is written at the end
    // of cycle t + AccPipeRegs. An update of a group whose earlier update is still in flight
    // (given in the last AccPipeRegs cycles) would read a stale word: hazard_x_o tells the
    // core to hold it (docs/hardware.md section 9); with the groups of a tile in turn it
    // never comes while G >= AccPipeRegs + 1.
    localparam int R = AccPipeRegs;
    logic [Lanes*SW-1:0] wide_a, wide_b, sum_a, sum_b;
    // the update written this cycle (given R cycles ago)
    logic                a_we_w, b_we_w, a_init_w, b_init_w;
    logic [GW-1:0]       a_grp_w, b_grp_w;
    logic [Lanes*SW-1:0] wide_a_w, wide_b_w;

    assign a_we  = a_we_i;  // (a_we / a_grp: the read side, the word of the given update)
    assign b_we  = b_we_i;
    assign a_grp = a_grp_i;
    assign b_grp = b_grp_i;
    assign acc_a_d = '0;    // (the exact accumulators' next words: unused here)
    assign acc_b_d = '0;
    logic unused_exact;
    assign unused_exact = ^{acc_a_d, acc_b_d, a_we, b_we, acc_a_rd, acc_b_rd};

    if (R > 0) begin : g_acc_pipe
      // stage k = 1 .. R of the shift registers: bit / slice k - 1
      logic [R-1:0]          a_we_s, b_we_s, a_init_s, b_init_s;
      logic [R*GW-1:0]       a_grp_s, b_grp_s;
      logic [R*Lanes*SW-1:0] wide_a_s, wide_b_s;
      always_ff @(posedge clk_i) begin
        a_we_s <= R'({a_we_s, a_we_i});
        b_we_s <= R'({b_we_s, b_we_i});
        a_init_s <= R'({a_init_s, a_init_i});
        b_init_s <= R'({b_init_s, b_init_i});
        a_grp_s <= (R*GW)'({a_grp_s, a_grp_i});
        b_grp_s <= (R*GW)'({b_grp_s, b_grp_i});
        wide_a_s <= (R*Lanes*SW)'({wide_a_s, wide_a});
        wide_b_s <= (R*Lanes*SW)'({wide_b_s, wide_b});
      end
      assign {a_we_w, b_we_w, a_init_w, b_init_w} =
          {a_we_s[R-1], b_we_s[R-1], a_init_s[R-1], b_init_s[R-1]};
      assign a_grp_w  = a_grp_s[(R-1)*GW +: GW];
      assign b_grp_w  = b_grp_s[(R-1)*GW +: GW];
      assign wide_a_w = wide_a_s[(R-1)*Lanes*SW +: Lanes*SW];
      assign wide_b_w = wide_b_s[(R-1)*Lanes*SW +: Lanes*SW];
      // in flight: given 1 .. R cycles ago (stage R writes at the end of this cycle)
      always_comb begin
        hazard_a_o = 1'b0;
        hazard_b_o = 1'b0;
        for (int k = 0; k < R; k++) begin
          hazard_a_o = hazard_a_o || (a_we_s[k] && (a_grp_s[k*GW +: GW] == a_grp_i));
          hazard_b_o = hazard_b_o || (b_we_s[k] && (b_grp_s[k*GW +: GW] == b_grp_i));
        end
      end
      assign busy_o = (|a_we_s) || (|b_we_s);
    end else begin : g_acc_comb
      assign {a_we_w, b_we_w, a_init_w, b_init_w} = {a_we_i, b_we_i, a_init_i, b_init_i};
      assign {a_grp_w, b_grp_w, wide_a_w, wide_b_w} = {a_grp_i, b_grp_i, wide_a, wide_b};
      assign hazard_a_o = 1'b0;
      assign hazard_b_o = 1'b0;
      assign busy_o     = 1'b0;
    end

    // the words written this cycle
    logic [Lanes*AccWidth-1:0] wr_a, wr_b;
    always_comb begin
      for (int l = 0; l < Lanes; l++) begin
        wr_a[l*AccWidth +: AccWidth] =
            AccWidth'(a_init_w ? wide_a_w[l*SW +: SW] : sum_a[l*SW +: SW]);
        wr_b[l*AccWidth +: AccWidth] =
            AccWidth'(b_init_w ? wide_b_w[l*SW +: SW] : sum_b[l*SW +: SW]);
      end
    end

    always_ff @(posedge clk_i) begin
      if (a_we_w) acc_a_q[a_grp_w] <= wr_a;
      if (b_we_w) acc_b_q[b_grp_w] <= wr_b;
    end

    // Prefetch: the group word an update adds to is read a cycle ahead, so the wide read
    // multiplexer has a cycle of its own and the adders start at a register. pf_x_q loads
    // the word of the beat that reaches the update's stage next cycle (x_grp_next_i) when the
    // pipeline advances, and keeps the held beat's word otherwise; a word written in the
    // same cycle to that group is forwarded into it (same-group bypass), so pf_x_q is always
    // the word as it stands after this cycle's write.
    logic [Lanes*AccWidth-1:0] pf_a_q, pf_b_q;
    always_ff @(posedge clk_i) begin
      if (adv_i) begin
        pf_a_q <= (a_we_w && (a_grp_w == a_grp_next_i)) ? wr_a : acc_a_q[a_grp_next_i];
        pf_b_q <= (b_we_w && (b_grp_w == b_grp_next_i)) ? wr_b : acc_b_q[b_grp_next_i];
      end else begin
        if (a_we_w && (a_grp_w == a_grp_i)) pf_a_q <= wr_a;
        if (b_we_w && (b_grp_w == b_grp_i)) pf_b_q <= wr_b;
      end
    end

    for (genvar l = 0; l < Lanes; l++) begin : g_lane_acc
      lightnorm_fp_widen #(
        .InExpBits(ExpBits), .InManBits(ManBits), .OutExpBits(StatExpBits),
        .OutManBits(StatManBits)
      ) u_widen_a (.a_i(a_val_i[l*W +: W]), .res_o(wide_a[l*SW +: SW]));
      lightnorm_fp_widen #(
        .InExpBits(ExpBits), .InManBits(ManBits), .OutExpBits(StatExpBits),
        .OutManBits(StatManBits)
      ) u_widen_b (.a_i(b_val_i[l*W +: W]), .res_o(wide_b[l*SW +: SW]));
      lightnorm_fp_add #(
        .ExpBits(StatExpBits), .ManBits(StatManBits), .AExpBits(StatExpBits),
        .AManBits(StatManBits), .BExpBits(ExpBits), .BManBits(ManBits), .PipeRegs(R)
      ) u_add_a (
        .clk_i(clk_i),
        .en_i (1'b1),
        .a_i  (pf_a_q[l*AccWidth +: SW]),
        .b_i  (a_val_i[l*W +: W]),
        .sub_i(1'b0),
        .rnd_i(rnd_i),
        .sat_i(1'b1),
        .res_o(sum_a[l*SW +: SW])
      );
      lightnorm_fp_add #(
        .ExpBits(StatExpBits), .ManBits(StatManBits), .AExpBits(StatExpBits),
        .AManBits(StatManBits), .BExpBits(ExpBits), .BManBits(ManBits), .PipeRegs(R)
      ) u_add_b (
        .clk_i(clk_i),
        .en_i (1'b1),
        .a_i  (pf_b_q[l*AccWidth +: SW]),
        .b_i  (b_val_i[l*W +: W]),
        .sub_i(1'b0),
        .rnd_i(rnd_i),
        .sat_i(1'b1),
        .res_o(sum_b[l*SW +: SW])
      );
    end
    assign f_fl_a_w = '0;
    assign f_fl_b_w = '0;
  end

  // ---------------------------------------------------------------------------------------
  // Chunk max / min (read-modify-write of one (chunk, group) word) and the arg recomputation
  // ---------------------------------------------------------------------------------------
  if (RangeStats != 0) begin : g_chunks
    logic [Lanes*W-1:0]  cmax_q [ChunkWords];
    logic [Lanes*W-1:0]  cmin_q [ChunkWords];
    logic [Lanes-1:0]    fmax_q [MaxGroups];  // arg-max of the chunk in progress seen
    logic [Lanes-1:0]    fmin_q [MaxGroups];
    logic [CAW-1:0]      c_addr, w_addr;
    logic [Lanes*W-1:0]  cmax_rd, cmin_rd;
    logic [Lanes-1:0]    take_max, take_min;
    logic [Lanes-1:0]    fmax_rd, fmin_rd, fmax_d, fmin_d;

    assign c_addr  = chunk_addr(c_chunk_i, c_grp_i);
    assign w_addr  = chunk_addr(w_chunk_i, w_grp_i);
    assign cmax_rd = cmax_q[c_addr];
    assign cmin_rd = cmin_q[c_addr];
    assign fmax_rd = fmax_q[c_grp_i];
    assign fmin_rd = fmin_q[c_grp_i];

    for (genvar l = 0; l < Lanes; l++) begin : g_lane_cmp
      logic [W-1:0] v, cur_max, cur_min;
      assign v       = c_val_i[l*W +: W];
      assign cur_max = cmax_rd[l*W +: W];
      assign cur_min = cmin_rd[l*W +: W];
      logic v_nan, max_nan, min_nan, v_gt, v_lt, eq_max, eq_min;
      assign v_nan   = is_nan(v[W-2:0]);
      assign max_nan = is_nan(cur_max[W-2:0]);
      assign min_nan = is_nan(cur_min[W-2:0]);
      assign v_gt    = order_key(v) > order_key(cur_max);
      assign v_lt    = order_key(v) < order_key(cur_min);
      // a NaN already in the chunk stays (the first NaN wins); a new NaN replaces a number
      assign take_max[l] = c_init_i || (!max_nan && (v_nan || v_gt));
      assign take_min[l] = c_init_i || (!min_nan && (v_nan || v_lt));
      // the element equals the stored extreme: the same order key, or both NaN
      assign eq_max = max_nan ? v_nan : (!v_nan && order_key(v) == order_key(cur_max));
      assign eq_min = min_nan ? v_nan : (!v_nan && order_key(v) == order_key(cur_min));
      // the first equal element of the chunk is its arg (c_init_i: a new chunk starts)
      assign c_is_max_o[l] = eq_max && (c_init_i || !fmax_rd[l]);
      assign c_is_min_o[l] = eq_min && (c_init_i || !fmin_rd[l]);
      assign fmax_d[l]     = eq_max || (!c_init_i && fmax_rd[l]);
      assign fmin_d[l]     = eq_min || (!c_init_i && fmin_rd[l]);
    end

    // A lane's extreme is written only when it changes (take_max / take_min): with the clock
    // gated per enable, a chunk's extremes are clocked a few times per chunk, not every beat
    // (the same values either way).
    always_ff @(posedge clk_i) begin
      if (c_we_i) begin
        for (int l = 0; l < Lanes; l++) begin
          if (take_max[l]) cmax_q[c_addr][l*W +: W] <= c_val_i[l*W +: W];
          if (take_min[l]) cmin_q[c_addr][l*W +: W] <= c_val_i[l*W +: W];
        end
      end else if (w_we_i && !w_min_i) begin
        cmax_q[w_addr][w_lane_i*W +: W] <= w_val_i;
      end else if (w_we_i && w_min_i) begin
        cmin_q[w_addr][w_lane_i*W +: W] <= w_val_i;
      end
      if (m_we_i) begin
        fmax_q[c_grp_i] <= fmax_d;
        fmin_q[c_grp_i] <= fmin_d;
      end
    end

    // read ports of the chunk words
    logic [CAW-1:0]      f_addr, s_addr;
    logic [Lanes*W-1:0]  f_max_w, f_min_w, s_max_w, s_min_w;

    assign f_addr   = chunk_addr(f_chunk_i, f_grp_i);
    assign s_addr   = chunk_addr(s_chunk_i, s_grp_i);
    assign f_max_w  = cmax_q[f_addr];
    assign f_min_w  = cmin_q[f_addr];
    assign s_max_w  = cmax_q[s_addr];
    assign s_min_w  = cmin_q[s_addr];

    assign f_max_o  = f_max_w[f_lane_i*W +: W];
    assign f_min_o  = f_min_w[f_lane_i*W +: W];
    assign s_max_o  = s_max_w[s_lane_i*W +: W];
    assign s_min_o  = s_min_w[s_lane_i*W +: W];
  end else begin : g_no_chunks
    logic unused_chunk_in;
    assign unused_chunk_in = ^{c_we_i, m_we_i, c_grp_i, c_chunk_i, c_init_i, c_val_i,
                               w_we_i, w_min_i, w_grp_i, w_lane_i, w_chunk_i, w_val_i,
                               f_grp_i, f_lane_i, f_chunk_i, s_grp_i, s_lane_i,
                               s_chunk_i};
    assign c_is_max_o = '0;
    assign c_is_min_o = '0;
    assign f_max_o    = '0;
    assign f_min_o    = '0;
    assign s_max_o    = '0;
    assign s_min_o    = '0;
  end

  // ---------------------------------------------------------------------------------------
  // Read ports
  // ---------------------------------------------------------------------------------------
  // the finalize unit's accumulator read: registered (the read mux of MaxGroups x Lanes words
  // and the unit's first operation would not fit one cycle together), addressed a cycle ahead
  logic [Lanes*AccWidth-1:0] f_acc_a_w, f_acc_b_w;

  assign f_acc_a_w = acc_a_q[fa_grp_i];
  assign f_acc_b_w = acc_b_q[fa_grp_i];

  always_ff @(posedge clk_i) begin
    f_acc_a_o   <= f_acc_a_w[fa_lane_i*AccWidth +: AccWidth];
    f_acc_b_o   <= f_acc_b_w[fa_lane_i*AccWidth +: AccWidth];
    f_flags_a_o <= f_fl_a_w[fa_lane_i*3 +: 3];
    f_flags_b_o <= f_fl_b_w[fa_lane_i*3 +: 3];
  end

endmodule
