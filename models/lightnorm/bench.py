# SPDX-License-Identifier: Apache-2.0
"""Throughput benchmark of the reference model: ``python -m lightnorm.bench`` (``make bench``).

Times :func:`lightnorm.reference.forward_train` and :func:`lightnorm.reference.backward` for
every preset on one tensor shape (default (32, 64, 32, 32) float32, the issue's target case):
one warm-up call, then the median of ``--repeat`` timed calls. Writes
``docs/results/bench_model.json`` and ``docs/results/bench_model.md`` (values/s, ms per call,
Python/numpy versions, CPU model, date, command) and prints a summary.

Target (issue): forward_train of the "lightnorm" preset at >= 20 M values/s. Timings belong
here, never in the tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lightnorm.config import PRESETS, LightNormConfig
from lightnorm.reference import backward, forward_train

TARGET_PRESET = "lightnorm"
TARGET_VALUES_PER_S = 20e6
DEFAULT_SHAPE = (32, 64, 32, 32)
_REPO = Path(__file__).resolve().parents[2]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _time(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of ``repeat`` calls after one warm-up call."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def bench_preset(name: str, cfg: LightNormConfig, shape: tuple[int, ...], repeat: int, seed: int) -> dict[str, Any]:
    """Forward and backward timings of one preset on standard-normal float32 data."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(1.5) + np.float32(0.25)
    dy = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01)
    gamma = 1.0 + 0.1 * rng.standard_normal(channels)
    beta = 0.1 * rng.standard_normal(channels)
    rm, rv = np.zeros(channels), np.ones(channels)
    fwd = forward_train(x, gamma, beta, cfg, rm, rv)
    result: dict[str, Any] = {"preset": name}
    for step, fn in (
        ("forward_train", lambda: forward_train(x, gamma, beta, cfg, rm, rv)),
        ("backward", lambda: backward(dy, fwd, cfg)),
    ):
        wall, cpu = _time(fn, repeat)
        med = statistics.median(wall)
        result[step] = {
            "ms_median": med * 1e3,
            "ms_min": min(wall) * 1e3,
            "values_per_s": x.size / med,
            "cpu_ms_median": statistics.median(cpu) * 1e3,
            "runs": len(wall),
        }
    return result


def _verdict(met: bool | None) -> str:
    return "not measured (other shape or preset list)" if met is None else ("met" if met else "NOT met")


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Reference-model throughput (`python -m lightnorm.bench`)",
        "",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}",
        f"- shape: {tuple(report['shape'])} float32 ({report['values']} values), "
        f"median of {report['repeat']} runs after one warm-up",
        f"- CPU: {report['cpu']} ({report['cpu_count']} logical CPUs); load average "
        f"{report['load_before']} before, {report['load_after']} after (ms are wall-clock; "
        "on a shared machine compare the process CPU ms too)",
        f"- Python {report['python']}, numpy {report['numpy']}",
        f"- target: forward_train of `{TARGET_PRESET}` >= {TARGET_VALUES_PER_S / 1e6:.0f} M values/s "
        f"on {DEFAULT_SHAPE}: **{_verdict(report['target_met'])}**",
        "",
        "| preset | forward ms | forward M values/s | forward CPU ms "
        "| backward ms | backward M values/s | backward CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        f, b = r["forward_train"], r["backward"]
        lines.append(
            f"| {r['preset']} | {f['ms_median']:.1f} | {f['values_per_s'] / 1e6:.1f} "
            f"| {f['cpu_ms_median']:.1f} | {b['ms_median']:.1f} | {b['values_per_s'] / 1e6:.1f} "
            f"| {b['cpu_ms_median']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightnorm.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default=",".join(map(str, DEFAULT_SHAPE)), help="N,C,H,W (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per step (default %(default)s)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=_REPO / "docs" / "results", help="output folder")
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    if len(shape) < 2 or min(shape) < 1:
        parser.error(f"--shape must be N,C[,...] positive integers, got {args.shape!r}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    names = [p for p in args.presets.split(",") if p]
    for p in names:
        if p not in PRESETS:
            parser.error(f"unknown preset {p!r}; choose from {sorted(PRESETS)}")

    load_before = _loadavg()
    results = []
    for name in names:
        r = bench_preset(name, LightNormConfig.from_preset(name), shape, args.repeat, args.seed)
        results.append(r)
        f, b = r["forward_train"], r["backward"]
        print(
            f"{name:>11}: forward {f['ms_median']:7.1f} ms {f['values_per_s'] / 1e6:6.1f} M values/s"
            f" (CPU {f['cpu_ms_median']:6.1f} ms) | backward {b['ms_median']:7.1f} ms"
            f" {b['values_per_s'] / 1e6:6.1f} M values/s (CPU {b['cpu_ms_median']:6.1f} ms)",
            flush=True,
        )
    # The target is defined on the default shape only.
    target = next((r for r in results if r["preset"] == TARGET_PRESET), None) if shape == DEFAULT_SHAPE else None
    target_met = None if target is None else bool(target["forward_train"]["values_per_s"] >= TARGET_VALUES_PER_S)
    report = {
        "command": "python -m lightnorm.bench" + (" " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "shape": list(shape),
        "values": int(np.prod(shape)),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": _loadavg(),
        "target": {"preset": TARGET_PRESET, "values_per_s": TARGET_VALUES_PER_S},
        "target_met": target_met,
        "results": results,
    }
    if target is not None:
        print(
            f"target: {TARGET_PRESET} forward_train >= {TARGET_VALUES_PER_S / 1e6:.0f} M values/s: "
            f"{'met' if target_met else 'NOT met'} "
            f"({target['forward_train']['values_per_s'] / 1e6:.1f} M values/s)"
        )
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_model.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "bench_model.md").write_text(_markdown(report))
        print(f"wrote {args.out / 'bench_model.json'} and {args.out / 'bench_model.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
