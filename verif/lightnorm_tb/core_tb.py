# SPDX-License-Identifier: Apache-2.0
"""Harness of lightnorm_core: clock/reset, configuration driver, parameter and statistics
ports, command runner with stream driver + monitor, and the scoreboarded flows (training
step, backward step, inference) used by verif/test_core.py, verif/test_core_corners.py and
verif/sim_main.py.

Port map and encodings: docs/hardware.md (opcodes OPS, the field selects SEL of the statistics
read port and of the parameter / context write port, error codes ERR below mirror the
localparams of hdl/lightnorm_core.sv). A layer's context (CONTEXT_FIELDS, LayerContext) is
saved through the read port after its forward phases and restored through the write port
before its later ones, so one core serves every BN layer of a network and every channel tile
of a wide layer (network_step).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from lightnorm.formats import FloatFormat, Overflow, encode, quantize

from . import coverage
from .layers import CoreParams, Expected, Layer
from .scoreboard import Scoreboard
from .streams import BeatArray, BeatDriver, BeatMonitor, StallGen, sig_int, sig_int_or_x

__all__ = [
    "CONTEXT_CHUNK_FIELDS",
    "CONTEXT_FIELDS",
    "ERR",
    "OPS",
    "SEL",
    "CmdResult",
    "CoreTB",
    "LayerContext",
    "PhaseTiming",
]

OPS = {
    "STATS": 0,
    "FINALIZE": 1,
    "NORM": 2,
    "BWD_SUMS": 3,
    "BWD_FINALIZE": 4,
    "BWD_DX": 5,
    "INFER_PREP": 6,
    "VAR_SUMS": 7,  # Variance = 1 only (bn_fp32_core); a bad opcode of the range core
}
SEL = {
    "sum_x": 0,
    "mean": 1,
    "range_mean": 2,
    "sigma": 3,
    "scale": 4,
    "coeff": 5,
    "gamma": 6,
    "beta": 7,
    "d_gamma": 8,
    "d_beta": 9,
    "k_beta": 10,
    "k_gamma": 11,
    "correction": 12,
    "running_mean": 13,
    "running_var": 14,
    "var": 15,  # Variance = 1 only
    "chunk_max": 16,  # of chunk stat_chunk_i / par_chunk_i
    "chunk_min": 17,
}
#: A layer's context: the per-channel values its phases after OP_FINALIZE (OP_NORM, the
#: backward, inference) read (docs/hardware.md "Per-layer context"). The running statistics
#: are in it because OP_FINALIZE updates them in the core (once per layer and step).
CONTEXT_FIELDS = ("mean", "scale", "coeff", "gamma", "beta", "running_mean", "running_var")
#: range_exact also needs each chunk's max / min: OP_BWD_DX recomputes the arg-max / arg-min
#: from them (the range core stores no chunk arguments).
CONTEXT_CHUNK_FIELDS = ("chunk_max", "chunk_min")
ERR = {
    0: "none",
    1: "no_channels",
    2: "too_many_channels",
    3: "count_small",
    4: "count_large",
    5: "bad_op",
}

PERIOD_NS = 10
SAT = Overflow.SATURATE
STREAM_OPS = ("STATS", "NORM", "BWD_SUMS", "BWD_DX", "VAR_SUMS")


@dataclass
class CmdResult:
    op: str
    error: bool
    code: int
    cycles: int
    beats_in: int
    out: list[Any] = field(default_factory=list)


@dataclass
class PhaseTiming:
    """Cycles of one command against its ideal (beats for streaming phases)."""

    layer: str
    op: str
    cycles: int
    ideal: int
    stall: str
    wall_s: float = 0.0  # simulator wall time of the command

    @property
    def overhead(self) -> int:
        return self.cycles - self.ideal


@dataclass
class LayerContext:
    """A layer's (or channel tile's) saved context: {(field, channel, chunk): bits}."""

    layer: str
    channels: int
    words: dict[tuple[str, int, int], int]


class CoreTB:
    """Drives one lightnorm_core instance."""

    def __init__(self, dut: Any, rng: random.Random | None = None) -> None:
        self.dut = dut
        self.p = CoreParams.from_dut(dut)
        self.rng = rng or random.Random(cocotb.RANDOM_SEED)
        self.log = dut._log
        self.timings: list[PhaseTiming] = []
        # cocotb-bus BusDriver / BusMonitor on the "in" and "out" stream buses
        self.driver = BeatDriver(dut, dut.clk_i)
        self.monitor = BeatMonitor(dut, dut.clk_i)
        self._clock_started = False

    # -- clock, reset ---------------------------------------------------------------------
    async def start(self) -> None:
        d = self.dut
        for name in (
            "cmd_valid_i",
            "cmd_op_i",
            "par_we_i",
            "par_addr_i",
            "par_sel_i",
            "par_chunk_i",
            "par_wdata_i",
            "stat_addr_i",
            "stat_sel_i",
            "stat_chunk_i",
            "in_valid_i",
            "in_exp_i",
            "in_sign_i",
            "in_mant_i",
            "in_dy_exp_i",
            "in_dy_sign_i",
            "in_dy_mant_i",
            "out_ready_i",
            "cfg_channels_i",
            "cfg_count_i",
            "cfg_inv_count_i",
            "cfg_range_const_i",
            "cfg_range_const_per_chunk_i",
            "cfg_eps_i",
            "cfg_inv_count_unbiased_i",
            "cfg_momentum_i",
            "cfg_keep_i",
            "cfg_rnd_i",
            "cfg_sat_i",
            "cfg_grad_mode_i",
        ):
            getattr(d, name).value = 0
        if not self._clock_started:
            Clock(d.clk_i, PERIOD_NS, unit="ns").start()
            self._clock_started = True
        await self.reset()

    async def reset(self, cycles: int = 3) -> None:
        d = self.dut
        d.rst_ni.value = 0
        d.in_valid_i.value = 0
        d.cmd_valid_i.value = 0
        d.out_ready_i.value = 0
        await ClockCycles(d.clk_i, cycles)
        d.rst_ni.value = 1
        await RisingEdge(d.clk_i)

    def cycle(self) -> int:
        return int(get_sim_time(unit="ns")) // PERIOD_NS

    # -- configuration ----------------------------------------------------------------------
    def configure(
        self, layer: Layer, channels: int | None = None, count: int | None = None
    ) -> None:
        """Drive the cfg_* inputs for ``layer`` (optionally overriding C and n)."""
        d, cfg = self.dut, layer.cfg
        st, rf = cfg.stat_format, cfg.running_format
        k = layer_constants_of(layer)
        rnd, ovf = cfg.rounding, cfg.overflow
        d.cfg_channels_i.value = layer.channels if channels is None else channels
        d.cfg_count_i.value = layer.count if count is None else count
        d.cfg_inv_count_i.value = int(encode(k.inv_count, st))
        d.cfg_range_const_i.value = int(encode(k.range_const, st))
        d.cfg_range_const_per_chunk_i.value = int(encode(k.range_const_per_chunk, st))
        d.cfg_eps_i.value = int(encode(k.eps, st))
        d.cfg_inv_count_unbiased_i.value = int(encode(k.inv_count_unbiased, rf))
        # per-channel values and constants always saturate (spec section 2)
        mom = quantize(np.float64(layer.momentum), rf, rnd, SAT)
        keep = quantize(np.float64(1.0 - layer.momentum), rf, rnd, SAT)
        d.cfg_momentum_i.value = int(encode(mom, rf))
        d.cfg_keep_i.value = int(encode(keep, rf))
        d.cfg_rnd_i.value = int(rnd.value == "rtz")
        d.cfg_sat_i.value = int(ovf.value == "saturate")
        d.cfg_grad_mode_i.value = int(cfg.grad_mode.value == "range_exact")

    async def write_par(self, sel: str, channel: int, bits: int, chunk: int = 0) -> None:
        """Write one field of one channel through the parameter / context port (idle only)."""
        d = self.dut
        d.par_we_i.value = 1
        d.par_sel_i.value = SEL[sel]
        d.par_chunk_i.value = chunk
        d.par_addr_i.value = channel
        d.par_wdata_i.value = bits
        await RisingEdge(d.clk_i)
        d.par_we_i.value = 0

    async def write_params(self, layer: Layer, running_mean: Any, running_var: Any) -> None:
        """gamma, beta (stat format), running statistics (running format) of every channel."""
        cfg = layer.cfg
        st, rf, rnd = cfg.stat_format, cfg.running_format, cfg.rounding
        # the host rounds the per-channel parameters like the model (saturating, spec section 2)
        g = encode(quantize(layer.gamma, st, rnd, SAT), st)
        b = encode(quantize(layer.beta, st, rnd, SAT), st)
        rm = encode(quantize(np.asarray(running_mean, dtype=np.float64), rf, rnd, SAT), rf)
        rv = encode(quantize(np.asarray(running_var, dtype=np.float64), rf, rnd, SAT), rf)
        for c in range(layer.channels):
            await self.write_par("gamma", c, int(g[c]))
            await self.write_par("beta", c, int(b[c]))
            await self.write_par("running_mean", c, int(rm[c]))
            await self.write_par("running_var", c, int(rv[c]))

    # -- per-layer context ------------------------------------------------------------------
    def context_fields(self, layer: Layer) -> list[tuple[str, int]]:
        """(field, chunks) of ``layer``'s context: CONTEXT_FIELDS, and the chunk extremes of
        its K_n chunks when its gradient is range_exact (range core)."""
        fields = [(name, 1) for name in CONTEXT_FIELDS]
        if not self.p.variance and layer.cfg.grad_mode.value == "range_exact":
            k = layer.cfg.chunk_count(layer.count)
            fields += [(name, k) for name in CONTEXT_CHUNK_FIELDS]
        return fields

    async def save_context(self, layer: Layer, sb: Scoreboard) -> LayerContext:
        """Read ``layer``'s context out of the core (statistics read port), as a DMA engine
        would after OP_FINALIZE; an X bit is a mismatch."""
        ctx = LayerContext(layer.name, layer.channels, {})
        for name, chunks in self.context_fields(layer):
            for c in range(layer.channels):
                for j in range(chunks):
                    v = await self.read_stat(name, c, j)
                    if v is None:
                        sb.record("F6", f"context {name} (chunk {j})", "a defined value", "X")
                        v = 0
                    ctx.words[name, c, j] = v
        return ctx

    async def load_context(self, ctx: LayerContext, layer: Layer) -> None:
        """Write ``layer``'s saved context back (parameter / context write port)."""
        for (name, c, j), bits in ctx.words.items():
            await self.write_par(name, c, bits, j)
        coverage.sample_context(f"restore_{layer.cfg.grad_mode.value}")
        if "tile" in layer.tags:
            coverage.sample_context("channel_tile")

    async def scribble(self, channels: int) -> None:
        """Random bits into every writable per-channel field of channels 0..channels-1 (all
        chunks), so that a value a phase needs but the context does not restore cannot pass
        by being left over from the layer before."""
        names = [n for n in SEL if SEL[n] <= SEL["running_var"]]
        if self.p.variance:
            names.append("var")
        else:
            names += list(CONTEXT_CHUNK_FIELDS)
        for name in names:
            chunks = self.p.num_chunks if name in CONTEXT_CHUNK_FIELDS else 1
            for c in range(channels):
                for j in range(chunks):
                    await self.write_par(name, c, self.rng.getrandbits(32), j)

    async def read_stat(self, sel: str, channel: int, chunk: int = 0) -> int:
        d = self.dut
        d.stat_sel_i.value = SEL[sel]
        d.stat_addr_i.value = channel
        d.stat_chunk_i.value = chunk
        await ReadOnly()
        v = sig_int_or_x(d.stat_rdata_o)
        await RisingEdge(d.clk_i)
        return v

    # -- commands ---------------------------------------------------------------------------
    async def command(
        self,
        op: str | int,
        x: BeatArray | None = None,
        dy: BeatArray | None = None,
        stall: str = "none",
        timeout: int = 200_000,
        layer_name: str = "",
        ideal: int | None = None,
    ) -> CmdResult:
        """Issue one command, stream its input beats and collect its output beats."""
        d = self.dut
        t0 = time.perf_counter()
        code = OPS[op] if isinstance(op, str) else op
        name = op if isinstance(op, str) else f"op{op}"
        self.monitor.start_ready(StallGen(stall, self.rng))
        drv_task = None
        if x is not None:
            drv_task = cocotb.start_soon(
                self.driver.send_beats(
                    x.beats(), StallGen(stall, self.rng), dy.beats() if dy is not None else None
                )
            )
        # wait until the core takes commands, then hand this one over
        while True:
            await ReadOnly()
            if sig_int(d.cmd_ready_o):
                break
            await RisingEdge(d.clk_i)
        await RisingEdge(d.clk_i)
        d.cmd_valid_i.value = 1
        d.cmd_op_i.value = code
        await RisingEdge(d.clk_i)  # cmd_ready_o is 1 while idle: taken at this edge
        d.cmd_valid_i.value = 0
        start = self.cycle()
        while True:
            await ReadOnly()
            if sig_int(d.done_o):
                break
            if self.cycle() - start > timeout:
                raise TimeoutError(f"{name}: no done_o within {timeout} cycles")
            await RisingEdge(d.clk_i)
        cycles = self.cycle() - start
        error = bool(sig_int(d.error_o))
        err_code = sig_int(d.err_code_o)
        await ClockCycles(d.clk_i, 3)  # an extra output beat after done would be recorded
        self.monitor.stop_ready()
        beats_in = self.driver.sent if drv_task is not None else 0
        if drv_task is not None and not drv_task.done():
            drv_task.cancel()
            self.driver.idle()
        self.log.info(
            "%s %s: %d cycles%s, %d beats in, %d out (%.1f s)",
            layer_name,
            name,
            cycles,
            f" (ideal {ideal})" if ideal is not None else "",
            beats_in,
            len(self.monitor.beats),
            time.perf_counter() - t0,
        )
        if ideal is not None and not error:
            self.timings.append(
                PhaseTiming(layer_name, name, cycles, ideal, stall, time.perf_counter() - t0)
            )
        if not error and name in coverage.OPS:
            coverage.sample_command(name, stall if name in STREAM_OPS else "none")
        return CmdResult(name, error, err_code, cycles, beats_in, list(self.monitor.beats))


def layer_constants_of(layer: Layer) -> Any:
    from lightnorm.reference import layer_constants

    return layer_constants(max(layer.count, layer.cfg.min_count()), layer.cfg, layer.eps)


# ---------------------------------------------------------------------------------------------
# Scoreboarded flows
# ---------------------------------------------------------------------------------------------
async def check_forward_stats(tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected) -> None:
    """F2, F3 and F6 per channel through the statistics port."""
    cfg, f = layer.cfg, exp.fwd
    assert f is not None
    st, rf = cfg.stat_format, cfg.running_format
    k = f.constants.num_chunks  # K_n: K, fewer for a small layer (n < 2K)
    for c in range(layer.channels):
        sb.stat_bits("F2", "sum_x", c, await tb.read_stat("sum_x", c), f.sum_x[c], st)
        sb.stat_bits("F2", "mean", c, await tb.read_stat("mean", c), f.mean[c], st)
        if tb.p.variance:
            assert f.var is not None
            sb.stat_bits("F2", "var", c, await tb.read_stat("var", c), f.var[c], st)
        else:
            await _check_range_stats(tb, sb, layer, exp, c, k)
        sb.stat_bits("F2", "scale", c, await tb.read_stat("scale", c), f.scale[c], st)
        sb.stat_bits("F3", "gamma", c, await tb.read_stat("gamma", c), f.gamma[c], st)
        sb.stat_bits("F3", "beta", c, await tb.read_stat("beta", c), f.beta[c], st)
        sb.stat_bits("F3", "coeff", c, await tb.read_stat("coeff", c), f.coeff[c], st)
        assert f.running_mean is not None and f.running_var is not None
        sb.stat_bits(
            "F6", "running_mean", c, await tb.read_stat("running_mean", c), f.running_mean[c], rf
        )
        sb.stat_bits(
            "F6", "running_var", c, await tb.read_stat("running_var", c), f.running_var[c], rf
        )


async def _check_range_stats(
    tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected, c: int, k: int
) -> None:
    """F2 of range statistics for channel c: chunk extremes (element values, read in the
    compute format), r, sigma (statistics format). (The core stores no chunk arg-max /
    arg-min: OP_BWD_DX recomputes them, which the dx check of range_exact covers.)

    The select is the outer loop and the chunk the inner one: under Icarus every change of
    stat_sel_i / stat_addr_i costs milliseconds of simulation, a change of stat_chunk_i
    almost nothing (same values read, in a different order).
    """
    f = exp.fwd
    assert f is not None
    st, cf = layer.cfg.stat_format, layer.cfg.compute_format
    assert f.chunk_max is not None and f.chunk_min is not None
    for sel, model in (("chunk_max", f.chunk_max), ("chunk_min", f.chunk_min)):
        for j in range(k):
            got = await tb.read_stat(sel, c, j)
            sb.stat_value("F2", sel, c, got, model[c, j], cf, f"chunk {j}")
    assert f.range_mean is not None and f.sigma is not None
    sb.stat_bits("F2", "range_mean", c, await tb.read_stat("range_mean", c), f.range_mean[c], st)
    sb.stat_bits("F2", "sigma", c, await tb.read_stat("sigma", c), f.sigma[c], st)


async def check_backward_stats(tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected) -> None:
    """B2 and B3 per channel."""
    st = layer.cfg.stat_format
    b = exp.bwd
    assert b is not None
    for c in range(layer.channels):
        sb.stat_bits("B2", "d_beta", c, await tb.read_stat("d_beta", c), b.d_beta[c], st)
        sb.stat_bits("B2", "d_gamma", c, await tb.read_stat("d_gamma", c), b.d_gamma[c], st)
        sb.stat_bits("B3", "k_beta", c, await tb.read_stat("k_beta", c), b.k_beta[c], st)
        sb.stat_bits("B3", "k_gamma", c, await tb.read_stat("k_gamma", c), b.k_gamma[c], st)
        if b.correction is not None:
            sb.stat_bits(
                "B3", "correction", c, await tb.read_stat("correction", c), b.correction[c], st
            )


def _value_fmt(p: CoreParams) -> FloatFormat | None:
    """Element format of plain beats (Bfp = 0), None for BFP beats (scoreboard decoding)."""
    return None if p.bfp_beats else p.fmt


def _expect_ok(sb: Scoreboard, r: CmdResult, step: str, n_in: int) -> None:
    """The command was accepted and consumed exactly its n_in input beats."""
    if r.error:
        sb.record(step, f"{r.op} refused", "accepted", f"error code {r.code}")
    if r.beats_in != n_in:
        sb.record(step, f"{r.op} input beats consumed", str(n_in), str(r.beats_in))


async def forward_stats(
    tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected, check_stats: bool = True
) -> None:
    """Configure, write gamma, beta and the running statistics, then STATS (VAR_SUMS) and
    FINALIZE of one layer, scoreboarded (the x pass-through; every statistic if
    ``check_stats``)."""
    p = tb.p
    assert exp.fwd is not None
    sb.layer = layer.name
    shape = layer.shape
    beats = layer.count * p.groups(layer.channels)
    tb.configure(layer)
    await tb.write_params(layer, layer.running_mean, layer.running_var)
    st, ln = layer.stall, layer.name
    fin_ideal = p.finalize_cycles(layer.channels)
    # variance: OP_STATS ends with S and mu per channel (2 cycles each)
    stats_ideal = p.stream_cycles("STATS", layer.count, layer.channels) + p.mean_cycles(
        layer.channels
    )
    vals = _value_fmt(p)

    r = await tb.command("STATS", exp.x_beats, stall=st, layer_name=ln, ideal=stats_ideal)
    _expect_ok(sb, r, "F1", beats)
    sb.beats(
        "F1", "x pass-through", r.out, exp.x_beats, layer.channels, shape, p.bfp_exp_bits, vals
    )
    if p.variance:
        r = await tb.command(
            "VAR_SUMS",
            exp.x_beats,
            stall=st,
            layer_name=ln,
            ideal=p.stream_cycles("VAR_SUMS", layer.count, layer.channels),
        )
        _expect_ok(sb, r, "F2", beats)
        if r.out:
            sb.record("F2", "VAR_SUMS output beats", "0", str(len(r.out)))
    r = await tb.command("FINALIZE", layer_name=ln, ideal=fin_ideal)
    _expect_ok(sb, r, "F2", 0)
    if check_stats:
        await check_forward_stats(tb, sb, layer, exp)


async def normalize(tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected) -> None:
    """OP_NORM of one layer (its cfg_* driven, its statistics in the core), y scoreboarded."""
    p = tb.p
    assert exp.y_beats is not None
    sb.layer = layer.name
    beats = layer.count * p.groups(layer.channels)
    r = await tb.command(
        "NORM",
        exp.x_beats,
        stall=layer.stall,
        layer_name=layer.name,
        ideal=p.stream_cycles("NORM", layer.count, layer.channels),
    )
    _expect_ok(sb, r, "F4", beats)
    sb.beats(
        "F5",
        "y (F4 normalize, F5 BFP store)",
        r.out,
        exp.y_beats,
        layer.channels,
        layer.shape,
        p.bfp_exp_bits,
        _value_fmt(p),
    )


async def training_step(
    tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected, check_stats: bool = True
) -> None:
    """STATS, FINALIZE, NORM, BWD_SUMS, BWD_FINALIZE, BWD_DX of one layer, all scoreboarded."""
    assert exp.fwd is not None and exp.y_beats is not None and exp.dx_beats is not None
    await forward_stats(tb, sb, layer, exp, check_stats)
    await normalize(tb, sb, layer, exp)
    await backward_step(tb, sb, layer, exp, check_stats, configure=False)


async def network_step(
    tb: CoreTB,
    sb: Scoreboard,
    layers: list[Layer],
    exps: list[Expected],
    check_stats: bool = True,
    scribble: bool = True,
) -> list[LayerContext]:
    """A training step of a network's BN layers (or of a wide layer's channel tiles) on one
    core, with per-layer contexts (docs/hardware.md "Per-layer context"):

    forward, layer 1..L: STATS, FINALIZE, save the context (the next layer's phases then
    overwrite the core's per-channel state); OP_NORM of layer 1..L, each after restoring its
    context; backward, layer L..1: restore the context, BWD_SUMS, BWD_FINALIZE, BWD_DX. Every
    output bit is scoreboarded, and after each backward the core's running statistics are
    still the ones OP_FINALIZE wrote (F6): one update per layer and step. ``scribble``: fill
    every writable per-channel field with random bits before each restore. Returns the saved
    contexts.
    """
    ctxs = []
    for layer, exp in zip(layers, exps, strict=True):
        await forward_stats(tb, sb, layer, exp, check_stats)
        ctxs.append(await tb.save_context(layer, sb))
    widest = max(layer.channels for layer in layers)
    for layer, exp, ctx in zip(layers, exps, ctxs, strict=True):
        if scribble:
            await tb.scribble(widest)
        await tb.load_context(ctx, layer)
        tb.configure(layer)
        await normalize(tb, sb, layer, exp)
    for layer, exp, ctx in reversed(list(zip(layers, exps, ctxs, strict=True))):
        if scribble:
            await tb.scribble(widest)
        await tb.load_context(ctx, layer)
        await backward_step(tb, sb, layer, exp, check_stats)
        f = exp.fwd
        assert f is not None and f.running_mean is not None and f.running_var is not None
        rf = layer.cfg.running_format
        for c in range(layer.channels):
            rm, rv = await tb.read_stat("running_mean", c), await tb.read_stat("running_var", c)
            sb.stat_bits("F6", "running_mean after the backward", c, rm, f.running_mean[c], rf)
            sb.stat_bits("F6", "running_var after the backward", c, rv, f.running_var[c], rf)
    return ctxs


async def backward_step(
    tb: CoreTB,
    sb: Scoreboard,
    layer: Layer,
    exp: Expected,
    check_stats: bool = True,
    configure: bool = True,
) -> None:
    """BWD_SUMS, BWD_FINALIZE, BWD_DX of one layer, all scoreboarded.

    After a :func:`training_step` of the same x, gamma and beta this runs the backward pass
    again, e.g. in the other gradient mode (``layer`` with another ``cfg.grad_mode``; the
    forward state of the core does not depend on it). ``configure``: drive the layer's cfg_*
    inputs first (the grad mode is latched when a command is accepted).
    """
    p = tb.p
    assert exp.dx_beats is not None
    sb.layer = layer.name
    if configure:
        tb.configure(layer)
    beats = layer.count * p.groups(layer.channels)
    st, ln = layer.stall, layer.name
    r = await tb.command(
        "BWD_SUMS",
        exp.x_beats,
        exp.dy_beats,
        stall=st,
        layer_name=ln,
        ideal=p.stream_cycles("BWD_SUMS", layer.count, layer.channels),
    )
    _expect_ok(sb, r, "B2", beats)
    r = await tb.command("BWD_FINALIZE", layer_name=ln, ideal=p.bwd_finalize_cycles(layer.channels))
    _expect_ok(sb, r, "B3", 0)
    if check_stats:
        await check_backward_stats(tb, sb, layer, exp)
    r = await tb.command(
        "BWD_DX",
        exp.x_beats,
        exp.dy_beats,
        stall=st,
        layer_name=ln,
        ideal=p.stream_cycles("BWD_DX", layer.count, layer.channels),
    )
    _expect_ok(sb, r, "B4", beats)
    sb.beats(
        "B5",
        "dx (B4, B5 BFP store)",
        r.out,
        exp.dx_beats,
        layer.channels,
        layer.shape,
        p.bfp_exp_bits,
        _value_fmt(p),
    )


async def inference(tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected) -> None:
    """INFER_PREP + NORM with the layer's inference running statistics."""
    p = tb.p
    sb.layer = layer.name
    st = layer.cfg.stat_format
    beats = layer.count * p.groups(layer.channels)
    tb.configure(layer)
    await tb.write_params(layer, layer.infer_mean, layer.infer_var)
    r = await tb.command(
        "INFER_PREP", layer_name=layer.name, ideal=p.infer_prep_cycles(layer.channels)
    )
    _expect_ok(sb, r, "I1", 0)
    for c in range(layer.channels):
        sb.stat_bits("I1", "mean", c, await tb.read_stat("mean", c), exp.inf.mean[c], st)
        sb.stat_bits("I2", "scale", c, await tb.read_stat("scale", c), exp.inf.scale[c], st)
        sb.stat_bits("I2", "coeff", c, await tb.read_stat("coeff", c), exp.inf.coeff[c], st)
    r = await tb.command(
        "NORM",
        exp.x_beats,
        stall=layer.stall,
        layer_name=layer.name,
        ideal=p.stream_cycles("NORM", layer.count, layer.channels),
    )
    _expect_ok(sb, r, "I3", beats)
    sb.beats(
        "I3",
        "inference y",
        r.out,
        exp.yi_beats,
        layer.channels,
        layer.shape,
        p.bfp_exp_bits,
        _value_fmt(p),
    )


# ---------------------------------------------------------------------------------------------
# Shared pieces of the core tests (test_core.py, test_baseline_core.py)
# ---------------------------------------------------------------------------------------------
def case_rng(tag: str) -> np.random.Generator:
    """The numpy generator of one test case: cocotb's RANDOM_SEED (SEED=) and the case tag."""
    return np.random.default_rng([int(cocotb.RANDOM_SEED), *tag.encode()])


def finish(tb: CoreTB, sb: Scoreboard) -> None:
    """Log the scoreboard summary, the per-command timings and the replay seed; fail on any
    mismatch."""
    tb.log.info("%s", sb.summary())
    for t in tb.timings:
        tb.log.info(
            "timing %-10s %-13s stall=%-6s cycles=%6d ideal=%6d overhead=%4d wall=%.2fs",
            t.layer,
            t.op,
            t.stall,
            t.cycles,
            t.ideal,
            t.overhead,
            t.wall_s,
        )
    tb.log.info("replay with SEED=%d", cocotb.RANDOM_SEED)
    assert not sb.mismatches, sb.summary()


#: An illegal-configuration case: (command, C, n, expected err_code_o, coverage bin).
ErrorCase = tuple[str | int, int, int, int, str]


async def check_errors(
    tb: CoreTB, sb: Scoreboard, layer: Layer, exp: Expected, cases: list[ErrorCase]
) -> None:
    """Each case's command is refused (error_o, err_code_o) without consuming a beat or
    producing one; then a legal training step of ``layer`` runs clean and clears error_o."""
    for op, channels, count, code, name in cases:
        tb.configure(layer, channels=channels, count=count)
        r = await tb.command(op, exp.x_beats, exp.dy_beats, stall="none", layer_name="err")
        sb.checked += 1
        ok = r.error and r.code == code and r.beats_in == 0 and not r.out
        tb.log.info(
            "%s C=%d n=%d -> error=%d code=%d (%s) beats_in=%d",
            op,
            channels,
            count,
            r.error,
            r.code,
            ERR.get(r.code, "?"),
            r.beats_in,
        )
        if not ok:
            sb.record(
                "F1",
                f"illegal config {name}",
                f"refused with code {code}",
                f"error={r.error} code={r.code} beats_in={r.beats_in} out={len(r.out)}",
            )
        else:
            coverage.sample_error(name)
    await training_step(tb, sb, layer, exp)
    await ReadOnly()
    if sig_int(tb.dut.error_o):
        sb.record("F1", "error_o after a legal command", "0", "1")
    await RisingEdge(tb.dut.clk_i)
