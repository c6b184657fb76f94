# SPDX-License-Identifier: Apache-2.0
"""Throughput benchmark of the reference model: ``python -m lightnorm.bench`` (``make bench``).

Times :func:`lightnorm.reference.forward_train` and :func:`lightnorm.reference.backward` for
every preset on one tensor shape (default (32, 64, 32, 32) float32, the issue's target case):
one warm-up call, then the median of ``--repeat`` timed calls. Writes
``docs/results/bench_model.json`` and ``docs/results/bench_model.md`` (values/s, ms per call,
process CPU ms, Python/numpy versions, CPU model, load average, date, command) and prints a
summary.

Target (issue): forward_train of the "lightnorm" preset at >= 20 M values/s. Timings belong
here, never in the tests. The wall-clock figures depend on what else runs on the machine
(the load average is recorded); the process CPU time is the steadier measure of the model.
The element loops use $LIGHTNORM_THREADS threads (default min(4, CPUs)).
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

from lightnorm.arith import _threads
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


def bench_preset(
    name: str, cfg: LightNormConfig, shape: tuple[int, ...], repeat: int, seed: int
) -> dict[str, Any]:
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
    steps: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("forward_train", lambda: forward_train(x, gamma, beta, cfg, rm, rv)),
        ("backward", lambda: backward(dy, fwd, cfg)),
    )
    for step, fn in steps:
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
    if met is None:
        return "not measured (other shape, or preset not run)"
    return "met" if met else "NOT met"


def _markdown(report: dict[str, Any]) -> str:
    target = report["target"]
    lines = [
        "# Reference-model throughput (`python -m lightnorm.bench`)",
        "",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}",
        f"- shape: {tuple(report['shape'])} float32 ({report['values']} values), "
        f"median of {report['repeat']} runs after one warm-up",
        f"- CPU: {report['cpu']} ({report['cpu_count']} logical CPUs), "
        f"{report['threads']} thread(s) for the element loops",
        f"- load average: {report['load_before']} before, {report['load_after']} after "
        "(ms are wall-clock; on a shared machine compare the process CPU ms too)",
        f"- Python {report['python']}, numpy {report['numpy']}",
        f"- target: forward_train of `{target['preset']}` >= "
        f"{target['values_per_s'] / 1e6:.0f} M values/s on {tuple(target['shape'])}: "
        f"**{_verdict(report['target_met'])}**",
        "",
        "| preset | forward ms | forward M values/s | forward CPU ms "
        "| backward ms | backward M values/s | backward CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        f, b = r["forward_train"], r["backward"]
        lines.append(
            f"| {r['preset']} | {f['ms_median']:.1f} | {f['values_per_s'] / 1e6:.1f} "
            f"| {f['cpu_ms_median']:.1f} | {b['ms_median']:.1f} "
            f"| {b['values_per_s'] / 1e6:.1f} | {b['cpu_ms_median']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lightnorm.bench", description=(__doc__ or "").splitlines()[0]
    )
    default_shape = ",".join(map(str, DEFAULT_SHAPE))
    parser.add_argument("--shape", default=default_shape, help="N,C[,...] (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs (default %(default)s)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=_REPO / "docs" / "results", help="folder")
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    try:
        args.shape = tuple(int(s) for s in args.shape.split(","))
    except ValueError:
        parser.error(f"--shape must be integers N,C[,...], got {args.shape!r}")
    if len(args.shape) < 2 or min(args.shape) < 1:
        parser.error(f"--shape must be N,C[,...] positive integers, got {args.shape!r}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    args.presets = [p for p in args.presets.split(",") if p]
    for p in args.presets:
        if p not in PRESETS:
            parser.error(f"unknown preset {p!r}; choose from {sorted(PRESETS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    shape: tuple[int, ...] = args.shape
    load_before = _loadavg()
    results = []
    for name in args.presets:
        r = bench_preset(name, LightNormConfig.from_preset(name), shape, args.repeat, args.seed)
        results.append(r)
        f, b = r["forward_train"], r["backward"]
        print(
            f"{name:>11}: forward {f['ms_median']:7.1f} ms {f['values_per_s'] / 1e6:6.1f} M/s"
            f" (CPU {f['cpu_ms_median']:6.1f} ms) | backward {b['ms_median']:7.1f} ms"
            f" {b['values_per_s'] / 1e6:6.1f} M/s (CPU {b['cpu_ms_median']:6.1f} ms)",
            flush=True,
        )
    # The target is defined on the default shape only.
    target = next((r for r in results if r["preset"] == TARGET_PRESET), None)
    target_met = None
    if target is not None and shape == DEFAULT_SHAPE:
        target_met = bool(target["forward_train"]["values_per_s"] >= TARGET_VALUES_PER_S)
    args_text = " ".join(sys.argv[1:]) if argv is None else " ".join(argv)
    report = {
        "command": "python -m lightnorm.bench" + (" " + args_text if args_text else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "shape": list(shape),
        "values": int(np.prod(shape)),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": _threads(),
        "load_before": load_before,
        "load_after": _loadavg(),
        "target": {
            "preset": TARGET_PRESET,
            "values_per_s": TARGET_VALUES_PER_S,
            "shape": list(DEFAULT_SHAPE),
        },
        "target_met": target_met,
        "results": results,
    }
    if target_met is not None:
        assert target is not None
        print(
            f"target: {TARGET_PRESET} forward_train >= {TARGET_VALUES_PER_S / 1e6:.0f} M values/s: "
            f"{_verdict(target_met)} ({target['forward_train']['values_per_s'] / 1e6:.1f} M/s)"
        )
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_model.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "bench_model.md").write_text(_markdown(report))
        print(f"wrote {args.out / 'bench_model.json'} and {args.out / 'bench_model.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
