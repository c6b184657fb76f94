# SPDX-License-Identifier: Apache-2.0
"""Stimulus and expectations of the LightNorm core testbench.

:class:`CoreParams` are the core's parameters (read from the DUT); :func:`core_config` is the
``LightNormConfig`` the core implements with them (compute = grad format FP(ExpBits, ManBits),
statistics format FP(StatExpBits, StatManBits), BFP rule max, group = Lanes; with ``Variance``
= 1 and ``Bfp`` = 0, e.g. bn_fp32_core, the "fp32-bn-seq" preset: mean / variance statistics, plain
element words on the streams). :func:`random_layer` draws a constrained-random layer (shape,
value distributions, modes); :func:`expected` runs the reference model
(``lightnorm.reference``, the oracle) on it and packs every stream the core reads or writes into
beats (BFP groups or plain words) in the core's stream order (positions (n, h, w) outer,
channel groups inner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from lightnorm.bfp import BFPFormat, bfp_pack
from lightnorm.config import LightNormConfig
from lightnorm.formats import FloatFormat, encode, quantize
from lightnorm.reference import (
    BackwardResult,
    ForwardResult,
    InferenceResult,
    backward,
    forward_infer,
    forward_train,
)

from .streams import BeatArray
from .vectors import dut_param

__all__ = [
    "BASELINE_PARAMS",
    "DESIGNS",
    "DISTRIBUTIONS",
    "CoreParams",
    "Expected",
    "Layer",
    "V2_PARAMS",
    "channel_tiles",
    "core_config",
    "expected",
    "pack_stream",
    "random_layer",
    "shape_class",
]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoreParams:
    """The lightnorm_core parameters the testbench depends on."""

    lanes: int = 16
    exp_bits: int = 5
    man_bits: int = 4
    bfp_man_bits: int = 5
    bfp_exp_bits: int = 8
    num_chunks: int = 8
    max_channels: int = 64
    count_width: int = 24
    run_exp_bits: int = 8
    run_man_bits: int = 23
    variance: int = 0  # 0 range statistics, 1 two-pass mean / variance (OP_VAR_SUMS)
    bfp_beats: int = 1  # 1 BFP groups on the streams, 0 plain element words
    accumulation: int = 0  # 0 exact per-channel sums, 1 sequential (Variance = 1 only)
    # statistics format (per-channel scalars); None: the element format (the HDL default)
    stat_exp_bits: int | None = None
    stat_man_bits: int | None = None
    #: register stages of the per-channel unit's operators (1 + this many cycles per step)
    chan_pipe_regs: int = 3
    #: register stages inside every lane operator (each lane stage 1 + this many cycles)
    dp_pipe_regs: int = 1
    #: register stages of the sequential accumulators' adders (Accumulation = 1)
    acc_pipe_regs: int = 0
    #: register stages of the BFP pack (Bfp = 1): one more cycle to the output
    pack_pipe_regs: int = 1

    #: field -> HDL parameter name
    HDL_NAMES: ClassVar[dict[str, str]] = {
        "lanes": "Lanes",
        "exp_bits": "ExpBits",
        "man_bits": "ManBits",
        "bfp_man_bits": "BfpManBits",
        "bfp_exp_bits": "BfpExpBits",
        "num_chunks": "NumChunks",
        "max_channels": "MaxChannels",
        "count_width": "CountWidth",
        "run_exp_bits": "RunExpBits",
        "run_man_bits": "RunManBits",
        "variance": "Variance",
        "bfp_beats": "Bfp",
        "accumulation": "Accumulation",
        "stat_exp_bits": "StatExpBits",
        "stat_man_bits": "StatManBits",
        "chan_pipe_regs": "ChanPipeRegs",
        "dp_pipe_regs": "DpPipeRegs",
        "acc_pipe_regs": "AccPipeRegs",
        "pack_pipe_regs": "PackPipeRegs",
    }

    def __post_init__(self) -> None:
        if self.stat_exp_bits is None:
            object.__setattr__(self, "stat_exp_bits", self.exp_bits)
        if self.stat_man_bits is None:
            object.__setattr__(self, "stat_man_bits", self.man_bits)

    @classmethod
    def from_dut(cls, dut: Any) -> CoreParams:
        defaults = cls()
        vals = {
            k: dut_param(dut, v, getattr(defaults, k))
            for k, v in cls.HDL_NAMES.items()
            if not k.startswith("stat_")
        }
        # the statistics format defaults to the element format, as in the HDL
        vals["stat_exp_bits"] = dut_param(dut, "StatExpBits", vals["exp_bits"])
        vals["stat_man_bits"] = dut_param(dut, "StatManBits", vals["man_bits"])
        return cls(**vals)

    @classmethod
    def from_hdl(cls, parameters: dict[str, Any]) -> CoreParams:
        """The parameters of a build ({HDL name: value}, e.g. test_core.PARAM_SETS); the
        others keep their defaults."""
        return cls(**{k: int(parameters[v]) for k, v in cls.HDL_NAMES.items() if v in parameters})

    @property
    def fmt(self) -> FloatFormat:
        """The element format (compute = grad): x, dy, y, dx and every lane result."""
        return FloatFormat(self.exp_bits, self.man_bits)

    @property
    def stat_fmt(self) -> FloatFormat:
        """The statistics format: every per-channel scalar and layer constant."""
        return FloatFormat(self.stat_exp_bits or self.exp_bits, self.stat_man_bits or self.man_bits)

    @property
    def run_fmt(self) -> FloatFormat:
        return FloatFormat(self.run_exp_bits, self.run_man_bits)

    @property
    def bfp(self) -> BFPFormat | None:
        """The BFP storage format of the streams, None for plain element words (Bfp = 0)."""
        if not self.bfp_beats:
            return None
        return BFPFormat(self.bfp_man_bits, self.lanes, self.bfp_exp_bits)

    @property
    def seq_extra_cycles(self) -> int:
        """Cycles a sequential reciprocal / rsqrt unit adds per channel to OP_FINALIZE and
        OP_INFER_PREP: its latency M + 4 + min(ChanPipeRegs, 2) (its rounder's register
        stages) plus its start cycle (0 for the tables, M <= 10), M the statistics format's
        fraction width (the channel unit's format)."""
        m = self.stat_fmt.man_bits
        return m + 5 + min(self.chan_pipe_regs, 2) if m > 10 else 0

    @property
    def min_count(self) -> int:
        """Smallest n of a training pass: 2 (range statistics of a small layer, n < 2K, use
        K_n < K chunks: LightNormConfig.chunk_count, docs/spec.md section 4)."""
        return 2

    def pipe_fill(self, op: str) -> int:
        """Cycles after a streaming command's last accepted beat until its work is done: S0,
        S1 and the output register (OP_STATS), plus the five lane stages of 1 + DpPipeRegs
        cycles and the pack's PackPipeRegs (OP_NORM, OP_BWD_DX) or the first three (up to
        accumulator B: OP_BWD_SUMS, OP_VAR_SUMS); the commands that update the exact
        accumulators end when the last update has landed: 2 cycles later for the exact ones'
        two read-modify-write halves, AccPipeRegs for the sequential ones' adders."""
        stage = 1 + self.dp_pipe_regs
        rmw = 2 if self.accumulation == 0 else self.acc_pipe_regs
        out = 3 + 5 * stage + (self.pack_pipe_regs if self.bfp_beats else 0)
        fill = {"STATS": 2 + rmw, "NORM": out, "BWD_DX": out}
        return fill.get(op, 2 + 3 * stage + rmw)

    def stream_cycles(self, op: str, n: int, channels: int) -> int:
        """Ideal cycles of a streaming command over n positions of `channels` channels: one
        beat per cycle, plus the pipeline fill; with sequential accumulators whose adders have
        AccPipeRegs stages, a command that updates them takes max(G, AccPipeRegs + 1) cycles
        per position (an update waits for the previous one of its group to be written)."""
        g = self.groups(channels)
        per = g
        if self.accumulation == 1 and op in ("STATS", "VAR_SUMS", "BWD_SUMS"):
            per = max(g, self.acc_pipe_regs + 1)
        return (n - 1) * per + g + self.pipe_fill(op)

    def chan_steps_cycles(self, steps: int, seq_step: bool = False) -> int:
        """Cycles of `steps` per-channel unit steps of one channel: 1 + ChanPipeRegs each (the
        operands held while the pipelined operators finish); a step on a sequential
        reciprocal / rsqrt unit lasts 1 + its latency instead (longer than ChanPipeRegs)."""
        per = 1 + self.chan_pipe_regs
        extra = (
            self.seq_extra_cycles - self.chan_pipe_regs if seq_step and self.seq_extra_cycles else 0
        )
        return steps * per + extra

    def finalize_cycles(self, channels: int) -> int:
        """Ideal cycles of OP_FINALIZE (docs/hardware.md section 5): the range statistics'
        K accumulation steps take one cycle each."""
        racc = 0 if self.variance else self.num_chunks
        steps = 5 if self.variance else 7
        return channels * (racc + self.chan_steps_cycles(steps, seq_step=True))

    def infer_prep_cycles(self, channels: int) -> int:
        """Ideal cycles of OP_INFER_PREP."""
        return channels * self.chan_steps_cycles(5, seq_step=True)

    def bwd_finalize_cycles(self, channels: int) -> int:
        """Ideal cycles of OP_BWD_FINALIZE."""
        return channels * self.chan_steps_cycles(5)

    def mean_cycles(self, channels: int) -> int:
        """Cycles of the per-channel S, mu epilogue of OP_STATS (variance statistics)."""
        return channels * self.chan_steps_cycles(2) if self.variance else 0

    def groups(self, channels: int) -> int:
        return -(-channels // self.lanes)


def core_config(
    p: CoreParams,
    rounding: str = "rne",
    overflow: str = "inf",
    grad_mode: str = "bn",
    range_constant: str = "lightnorm",
) -> LightNormConfig:
    """The configuration the core computes with parameters ``p`` and these run-time modes.

    Variance = 1: the "fp32-bn" preset with the core's formats (grad_mode bn; the range
    constant is unused), "fp32-bn-seq" with Accumulation = 1 (sequential sums).
    """
    if p.variance:
        return LightNormConfig.from_preset(
            "fp32-bn-seq" if p.accumulation else "fp32-bn",
            compute_format=p.fmt,
            grad_format=p.fmt,
            stat_format=p.stat_fmt,
            running_format=p.run_fmt,
            rounding=rounding,
            overflow=overflow,
            bfp=p.bfp,
        )
    return LightNormConfig.from_preset(
        "lightnorm",
        compute_format=p.fmt,
        grad_format=p.fmt,
        stat_format=p.stat_fmt,
        running_format=p.run_fmt,
        rounding=rounding,
        overflow=overflow,
        num_chunks=p.num_chunks,
        range_constant=range_constant,
        grad_mode=grad_mode,
        bfp=p.bfp,
    )


#: The fixed parameters of bn_fp32_core, the conventional FP32 baseline (localparams of the
#: wrapper; the testbench also gets them as LN_PARAM_* for simulators that hide parameters).
BASELINE_PARAMS: dict[str, int] = {
    "ExpBits": 8,
    "ManBits": 23,
    "RunExpBits": 8,
    "RunManBits": 23,
    "Variance": 1,
    "Bfp": 0,
    "Accumulation": 1,
    # its defaults (overridable): register stages of the accumulator adders, of the channel
    # unit's and of the lanes' operators
    "AccPipeRegs": 2,
    "ChanPipeRegs": 3,
    "DpPipeRegs": 3,
}

#: lightnorm_core parameters of numeric contract v2 (docs/spec.md section 12, preset
#: "lightnorm-v2"): per-channel scalars in fp16_e8m7 over the default fp10_e5m4 elements (dx =
#: range_exact is the run-time cfg_grad_mode_i). The core's defaults are contract v1
#: ("lightnorm-v1": one format).
V2_PARAMS: dict[str, int] = {"StatExpBits": 8, "StatManBits": 7}

#: Designs the core testbench drives: name -> (toplevel, its fixed parameters).
DESIGNS: dict[str, tuple[str, dict[str, int]]] = {
    "lightnorm": ("lightnorm_core", {}),
    "baseline": ("bn_fp32_core", BASELINE_PARAMS),
}


#: Value distributions of the random layers (names are coverage bins).
DISTRIBUTIONS = (
    "normal",
    "normal_offset",
    "uniform",
    "heavy_tail",
    "all_equal_channel",
    "zeros",
    "at_max",
    "subnormal",
    "nan_inf",
)


def _values(rng: np.random.Generator, dist: str, shape: tuple[int, ...], fmt: FloatFormat) -> F64:
    """Random values of ``shape`` (N, C, H, W) drawn from the named distribution."""
    n, c = shape[0], shape[1]
    scale = float(2.0 ** rng.uniform(-3, 3))
    if dist == "normal":
        v = rng.normal(0.0, scale, shape)
    elif dist == "normal_offset":  # |mu| >> sigma, per-channel offsets
        off = rng.choice([-1.0, 1.0], c) * 2.0 ** rng.uniform(2, 8, c)
        v = rng.normal(0.0, scale, shape) + off[None, :, None, None]
    elif dist == "uniform":
        v = rng.uniform(-scale, scale, shape) + rng.uniform(-2, 2)
    elif dist == "heavy_tail":
        v = scale * rng.standard_t(1.5, shape)
    elif dist == "all_equal_channel":
        v = rng.normal(0.0, scale, shape)
        for ch in rng.choice(c, size=max(1, c // 4), replace=False):
            v[:, ch] = rng.normal(0.0, scale)
    elif dist == "zeros":
        v = rng.normal(0.0, scale, shape)
        v[:, rng.choice(c, size=max(1, c // 3), replace=False)] = 0.0
        v[rng.random(shape) < 0.2] = -0.0
    elif dist == "at_max":
        v = rng.normal(0.0, fmt.max_normal / 4, shape)
        mask = rng.random(shape) < 0.05
        v[mask] = rng.choice([1.0, -1.0, 1.5, -2.0], int(mask.sum())) * fmt.max_normal
    elif dist == "subnormal":
        v = rng.normal(0.0, fmt.min_normal * 2, shape)
    elif dist == "nan_inf":
        v = rng.normal(0.0, scale, shape)
        flat = v.reshape(-1)
        k = max(1, flat.size // 500)
        idx = rng.choice(flat.size, size=3 * k, replace=False)
        flat[idx[:k]] = np.nan
        flat[idx[k : 2 * k]] = np.inf
        flat[idx[2 * k :]] = -np.inf
        # keep most channels finite so that the statistics are exercised too
        finite_ch = rng.choice(c, size=max(1, c // 2), replace=False)
        v[:, finite_ch] = rng.normal(0.0, scale, (n, len(finite_ch), *shape[2:]))
    else:
        raise ValueError(f"unknown distribution {dist!r}")
    return v


@dataclass
class Layer:
    """One random layer: shape, modes, inputs and the stall pattern of its streams."""

    name: str
    shape: tuple[int, int, int, int]  # (N, C, H, W)
    cfg: LightNormConfig
    x: F64
    dy: F64
    gamma: F64
    beta: F64
    running_mean: F64
    running_var: F64
    infer_mean: F64  # running statistics used by the inference check
    infer_var: F64
    eps: float = 1e-5
    momentum: float = 0.1
    dist_x: str = "normal"
    dist_dy: str = "normal"
    stall: str = "light"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.shape[1]

    @property
    def count(self) -> int:
        return self.shape[0] * self.shape[2] * self.shape[3]

    def describe(self) -> str:
        c = self.cfg
        return (
            f"{self.name}: shape={self.shape} n={self.count} x~{self.dist_x} dy~{self.dist_dy} "
            f"rounding={c.rounding.value} overflow={c.overflow.value} grad={c.grad_mode.value} "
            f"C(m)={c.range_constant.value} stall={self.stall}"
        )


def shape_class(channels: int, count: int, p: CoreParams) -> list[str]:
    """Coverage bins of a layer shape."""
    out = []
    if channels < p.lanes:
        out.append("C<Lanes")
    elif channels % p.lanes == 0:
        out.append("C%Lanes==0")
    else:
        out.append("C%Lanes!=0")
    if channels == 1:
        out.append("C==1")
    if channels in (p.lanes, p.lanes + 1):
        out.append("C==Lanes" if channels == p.lanes else "C==Lanes+1")
    if channels == p.max_channels:
        out.append("C==MaxChannels")
    if count == 2 * p.num_chunks:
        out.append("n==2K")
    if count < 2 * p.num_chunks:
        out.append("n<2K")  # a small layer: K_n < K chunks (range statistics)
    if count % p.num_chunks:
        out.append("n%K!=0")
    else:
        out.append("n%K==0")
    return out


def _factor_count(rng: np.random.Generator, count: int) -> tuple[int, int, int]:
    """Split count = N * H * W with small random factors."""
    divs = [d for d in range(1, count + 1) if count % d == 0]
    n = int(rng.choice([d for d in divs if d <= 16]))
    rest = count // n
    divs2 = [d for d in range(1, rest + 1) if rest % d == 0]
    h = int(rng.choice(divs2))
    return n, h, rest // h


def random_layer(
    rng: np.random.Generator,
    p: CoreParams,
    name: str,
    channels: int | None = None,
    count: int | None = None,
    shape: tuple[int, int, int, int] | None = None,
    dist_x: str | None = None,
    dist_dy: str | None = None,
    rounding: str | None = None,
    overflow: str | None = None,
    grad_mode: str | None = None,
    range_constant: str | None = None,
    stall: str | None = None,
    max_count: int = 96,
) -> Layer:
    """A constrained-random layer; every argument left None is drawn at random.

    With variance statistics the counts are drawn as for K = 1 (minimal n = 2) and the
    gradient is the batch-norm one. Drawn counts are >= 2K (K chunks); small layers (n < 2K,
    K_n < K chunks) are given as ``count`` / ``shape`` (test_core.core_small).
    """
    k = 1 if p.variance else p.num_chunks
    if p.variance:
        grad_mode = "bn"
    if shape is None:
        if channels is None:
            pick = rng.integers(0, 4)
            if pick == 0:
                channels = int(rng.integers(1, p.lanes))  # C < Lanes
            elif pick == 1:
                channels = p.lanes * int(rng.integers(1, p.max_channels // p.lanes + 1))
            elif pick == 2:
                channels = p.max_channels
            else:
                channels = int(rng.integers(1, p.max_channels + 1))
        if count is None:
            pick = rng.integers(0, 3)
            if pick == 0:
                count = 2 * k
            elif pick == 1:  # n not a multiple of K
                count = int(rng.integers(2 * k, max_count + 1))
                if count % k == 0:
                    count += 1
            else:
                count = k * int(rng.integers(2, max(3, max_count // k + 1)))
        n, h, w = _factor_count(rng, count)
        shape = (n, channels, h, w)
    c = shape[1]
    dist_x = dist_x or str(rng.choice(DISTRIBUTIONS))
    dist_dy = dist_dy or str(rng.choice(DISTRIBUTIONS))
    cfg = core_config(
        p,
        rounding=rounding or str(rng.choice(["rne", "rtz"])),
        overflow=overflow or str(rng.choice(["inf", "saturate"])),
        grad_mode=grad_mode or str(rng.choice(["bn", "range_exact"])),
        range_constant=range_constant or str(rng.choice(["lightnorm", "banner", "gauss"])),
    )
    fmt = p.fmt
    x = _values(rng, dist_x, shape, fmt)
    dy = _values(rng, dist_dy, shape, fmt)
    gamma = rng.normal(1.0, 0.5, c) * (2.0 ** rng.integers(-2, 3, c))
    if rng.random() < 0.3:  # a few huge gains: a = gamma * s and y overflow / saturate
        gamma[rng.random(c) < 0.25] *= 2.0 ** (fmt.emax - 2)
    beta = rng.normal(0.0, 0.5, c)
    running_mean = rng.normal(0.0, 1.0, c)
    running_var = np.abs(rng.normal(1.0, 0.5, c))
    infer_mean = rng.normal(0.0, 2.0, c)
    infer_var = np.abs(rng.normal(1.0, 1.0, c)) * 2.0 ** rng.uniform(-4, 4, c)
    infer_var[rng.random(c) < 0.1] = 0.0
    # eps = 0 with a constant channel (sigma = 0) or a zero inference variance reaches
    # recip(0) / rsqrt(0) of the saturating per-channel unit (+-max_normal, spec section 3)
    eps = float(rng.choice([1e-5, 1e-3, 0.0]))
    return Layer(
        name=name,
        shape=shape,
        cfg=cfg,
        x=x,
        dy=dy,
        gamma=gamma,
        beta=beta,
        running_mean=running_mean,
        running_var=running_var,
        infer_mean=infer_mean,
        infer_var=infer_var,
        eps=eps,
        momentum=float(rng.choice([0.1, 0.01, 0.3])),
        dist_x=dist_x,
        dist_dy=dist_dy,
        stall=stall or str(rng.choice(["none", "light", "heavy", "bursty"])),
    )


def channel_tiles(layer: Layer, tile: int) -> list[Layer]:
    """``layer`` cut into channel tiles of ``tile`` channels (the last one may be narrower),
    each a layer of its own: channels [t * tile, (t + 1) * tile), in the producer's
    channel-tile-outer order (docs/hardware.md "Channel tiles"). BN is per channel and, with
    ``tile`` a multiple of the BFP group size, no BFP group spans two tiles, so the tiles'
    results are the layer's (test_core_context checks that on the model first)."""
    if tile <= 0:
        raise ValueError(f"channel_tiles: tile must be positive, got {tile}")
    if layer.cfg.bfp is not None and tile % layer.cfg.bfp.group_size:
        raise ValueError(
            f"channel_tiles: tile = {tile} is not a multiple of the BFP group size "
            f"{layer.cfg.bfp.group_size}"
        )
    out = []
    for t, lo in enumerate(range(0, layer.channels, tile)):
        hi = min(lo + tile, layer.channels)
        n, _, h, w = layer.shape
        out.append(
            replace(
                layer,
                name=f"{layer.name}.t{t}",
                shape=(n, hi - lo, h, w),
                x=layer.x[:, lo:hi],
                dy=layer.dy[:, lo:hi],
                gamma=layer.gamma[lo:hi],
                beta=layer.beta[lo:hi],
                running_mean=layer.running_mean[lo:hi],
                running_var=layer.running_var[lo:hi],
                infer_mean=layer.infer_mean[lo:hi],
                infer_var=layer.infer_var[lo:hi],
                tags={**layer.tags, "tile": f"{t}"},
            )
        )
    return out


def pack_stream(
    values: Any, fmt: FloatFormat, cfg: LightNormConfig, lanes: int | None = None
) -> BeatArray:
    """Beats of a tensor (N, C, H, W) of ``fmt`` values, in the core's stream order.

    The producer rounds to the element format and packs (docs/spec.md section 5). Without BFP
    (``cfg.bfp`` None, the core's Bfp = 0) a beat is ``lanes`` plain words: exp 0, lane sign,
    lane magnitude {exponent field, fraction} (man_bits = E + M); padding lanes are +0.
    """
    q = quantize(np.asarray(values, dtype=np.float64), fmt, cfg.rounding, cfg.overflow)
    if cfg.bfp is None:
        if lanes is None:
            raise ValueError("pack_stream: plain beats need the number of lanes")
        c = q.shape[1]
        groups = -(-c // lanes)
        pos = np.moveaxis(q, 1, -1).reshape(-1, c)  # (positions, C), positions row-major
        padded = np.zeros((pos.shape[0], groups * lanes), dtype=np.float64)
        padded[:, :c] = pos
        bits = encode(padded.reshape(-1, lanes), fmt).astype(np.int64)
        mag_bits = fmt.exp_bits + fmt.man_bits
        sign = (bits >> mag_bits) & 1
        mant = bits & ((1 << mag_bits) - 1)
        exp = np.zeros(bits.shape[0], dtype=np.int64)
        return BeatArray(exp, sign, mant, mag_bits)
    t = bfp_pack(q, cfg.bfp, axis=1, rounding=cfg.rounding)
    g = cfg.bfp.group_size
    exp = t.exp_field.reshape(-1).astype(np.int64)
    sign = t.sign.reshape(-1, g).astype(np.int64)
    mant = t.mant.reshape(-1, g).astype(np.int64)
    return BeatArray(exp, sign, mant, cfg.bfp.man_bits)


@dataclass
class Expected:
    """The reference model's results for a layer and the beats of every stream.

    ``fwd`` / ``bwd`` and their beats are None for an inference-only layer (n = 1).
    """

    fwd: ForwardResult | None
    bwd: BackwardResult | None
    inf: InferenceResult
    x_beats: BeatArray
    dy_beats: BeatArray
    y_beats: BeatArray | None
    dx_beats: BeatArray | None
    yi_beats: BeatArray


def expected(layer: Layer, lanes: int | None = None) -> Expected:
    """Run the oracle (lightnorm.reference) on ``layer`` (``lanes``: for plain beats)."""
    cfg = layer.cfg
    cf, gf = cfg.compute_format, cfg.grad_format
    fwd = bwd = None
    with np.errstate(all="ignore"):
        if layer.count >= cfg.min_count():
            fwd = forward_train(
                layer.x,
                layer.gamma,
                layer.beta,
                cfg,
                running_mean=layer.running_mean,
                running_var=layer.running_var,
                eps=layer.eps,
                momentum=layer.momentum,
            )
            bwd = backward(layer.dy, fwd, cfg)
        inf = forward_infer(
            layer.x, layer.gamma, layer.beta, layer.infer_mean, layer.infer_var, cfg, eps=layer.eps
        )
    return Expected(
        fwd=fwd,
        bwd=bwd,
        inf=inf,
        x_beats=pack_stream(layer.x, cf, cfg, lanes),
        dy_beats=pack_stream(layer.dy, gf, cfg, lanes),
        y_beats=pack_stream(fwd.y_c, cf, cfg, lanes) if fwd is not None else None,
        dx_beats=pack_stream(bwd.dx_c, gf, cfg, lanes) if bwd is not None else None,
        yi_beats=pack_stream(inf.y_c, cf, cfg, lanes),
    )


def finite_or(v: float, default: float) -> float:
    return v if math.isfinite(v) else default
