# SPDX-License-Identifier: Apache-2.0
"""Functional coverage of the LightNorm core testbench (cocotb-coverage 2.0, pure Python).

Named bins: commands, grad modes, rounding, overflow (saturate), shape classes, value
distributions, stall patterns, special values seen by the datapath, saturation / overflow
events in the outputs, illegal-configuration codes, reset in the middle of a layer, and the
cross of the run-time modes. :func:`report` prints every bin with its hit count and returns
the overall coverage in percent; :func:`export` writes the database (YAML) so that runs can
be merged (``cocotb_coverage.coverage.merge_coverage``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from .layers import DISTRIBUTIONS, CoreParams, Expected, Layer, shape_class

__all__ = ["export", "report", "sample_command", "sample_error", "sample_layer", "sample_reset"]

OPS = ("STATS", "FINALIZE", "NORM", "BWD_SUMS", "BWD_FINALIZE", "BWD_DX", "INFER_PREP")
STALLS = ("none", "light", "heavy", "bursty")
SHAPES = ("C<Lanes", "C%Lanes==0", "C%Lanes!=0", "C==MaxChannels", "n==2K", "n%K!=0", "n%K==0")
SPECIALS = ("nan", "inf", "subnormal", "zero", "max_normal")
EVENTS = (
    "y_saturated",
    "y_inf",
    "y_nan",
    "dx_saturated",
    "dx_inf",
    "dx_nan",
    "corr_applied",
    "all_equal_chunk",
    "scale_overflow",
)
ERRORS = ("no_channels", "too_many_channels", "count_small", "count_large", "bad_op")


def _member(val: Any, b: Any) -> bool:
    return b in val


@CoverPoint("core.command.op", xf=lambda op, stall: op, bins=list(OPS))
@CoverPoint("core.command.stall", xf=lambda op, stall: stall, bins=list(STALLS))
def sample_command(op: str, stall: str) -> None:
    """One command run (stall = pattern of its streams, 'none' for the per-channel phases)."""


@CoverPoint("core.mode.grad", xf=lambda d: d["grad"], bins=["bn", "range_exact"])
@CoverPoint("core.mode.rounding", xf=lambda d: d["rounding"], bins=["rne", "rtz"])
@CoverPoint("core.mode.overflow", xf=lambda d: d["overflow"], bins=["inf", "saturate"])
@CoverPoint("core.mode.range_constant", xf=lambda d: d["rc"], bins=["lightnorm", "banner", "gauss"])
@CoverCross("core.mode.cross", items=["core.mode.grad", "core.mode.rounding", "core.mode.overflow"])
@CoverPoint("core.shape", xf=lambda d: d["shape"], bins=list(SHAPES), rel=_member, inj=False)
@CoverPoint("core.dist.x", xf=lambda d: d["dist_x"], bins=list(DISTRIBUTIONS))
@CoverPoint("core.dist.dy", xf=lambda d: d["dist_dy"], bins=list(DISTRIBUTIONS))
@CoverPoint(
    "core.special.x", xf=lambda d: d["special_x"], bins=list(SPECIALS), rel=_member, inj=False
)
@CoverPoint(
    "core.special.dy", xf=lambda d: d["special_dy"], bins=list(SPECIALS), rel=_member, inj=False
)
@CoverPoint("core.events", xf=lambda d: d["events"], bins=list(EVENTS), rel=_member, inj=False)
def _sample(d: dict[str, Any]) -> None:
    pass


@CoverPoint("core.error", xf=lambda name: name, bins=list(ERRORS))
def sample_error(name: str) -> None:
    """An illegal configuration refused with this code."""


@CoverPoint(
    "core.reset", xf=lambda where: where, bins=["mid_stats", "mid_norm", "mid_bwd", "mid_finalize"]
)
def sample_reset(where: str) -> None:
    """A reset in the middle of a layer (followed by a clean layer)."""


def _specials(v: np.ndarray, max_normal: float, min_normal: float) -> list[str]:
    a = np.abs(v[np.isfinite(v)])
    out = []
    if np.any(np.isnan(v)):
        out.append("nan")
    if np.any(np.isinf(v)):
        out.append("inf")
    if np.any((a > 0) & (a < min_normal)):
        out.append("subnormal")
    if np.any(a == 0):
        out.append("zero")
    if np.any(a == max_normal):
        out.append("max_normal")
    return out


def sample_layer(layer: Layer, exp: Expected, p: CoreParams) -> None:
    """Sample the modes, shape, distributions, special values and events of a checked layer."""
    cfg = layer.cfg
    fmt = p.fmt
    sat = cfg.overflow.value == "saturate"
    if exp.fwd is None or exp.bwd is None:
        return
    events = []
    for name, v in (("y", exp.fwd.y), ("dx", exp.bwd.dx)):
        a = np.abs(v)
        if sat and np.any(a == fmt.max_normal):
            events.append(f"{name}_saturated")
        if np.any(np.isinf(v)):
            events.append(f"{name}_inf")
        if np.any(np.isnan(v)):
            events.append(f"{name}_nan")
    if cfg.grad_mode.value == "range_exact" and exp.fwd.chunk_argmax is not None:
        distinct = exp.fwd.chunk_argmax != exp.fwd.chunk_argmin
        if np.any(distinct):
            events.append("corr_applied")
        if np.any(~distinct):
            events.append("all_equal_chunk")
    elif exp.fwd.chunk_argmax is not None and np.any(exp.fwd.chunk_argmax == exp.fwd.chunk_argmin):
        events.append("all_equal_chunk")
    if np.any(~np.isfinite(exp.fwd.scale)) or np.any(np.abs(exp.fwd.scale) == fmt.max_normal):
        events.append("scale_overflow")
    _sample(
        {
            "grad": cfg.grad_mode.value,
            "rounding": cfg.rounding.value,
            "overflow": cfg.overflow.value,
            "rc": cfg.range_constant.value,
            "shape": shape_class(layer.channels, layer.count, p),
            "dist_x": layer.dist_x,
            "dist_dy": layer.dist_dy,
            "special_x": _specials(exp.fwd.x_c.astype(np.float64), fmt.max_normal, fmt.min_normal),
            "special_dy": _specials(
                exp.bwd.dy_c.astype(np.float64), fmt.max_normal, fmt.min_normal
            ),
            "events": events,
        }
    )


def report(log: Any) -> float:
    """Log every cover point with its bins; return the overall coverage in percent."""
    lines: list[str] = []
    coverage_db.report_coverage(lines.append, bins=True)
    for line in lines:
        log.info("%s", line)
    top = coverage_db["core"]
    pct = 100.0 * top.coverage / max(top.size, 1)
    log.info("functional coverage: %d of %d bins hit (%.1f %%)", top.coverage, top.size, pct)
    holes = []
    for name, item in coverage_db.items():
        if hasattr(item, "detailed_coverage") and isinstance(item.detailed_coverage, dict):
            holes += [f"{name}:{b}" for b, hits in item.detailed_coverage.items() if hits == 0]
    if holes:
        log.info("coverage holes: %s", ", ".join(holes))
    return pct


def export(path: str) -> None:
    coverage_db.export_to_yaml(filename=path)
