# SPDX-License-Identifier: Apache-2.0
"""Benchmark: LightNorm2d vs nn.BatchNorm2d, forward + backward, in the same run.

    python -m lightnorm.torch.bench [--shape 32 64 32 32] [--repeats 300] [--presets lightnorm ...]

Each timed step is a training forward (running statistics updated), a backward to the input
and the parameters, on a float32 tensor. Steps of nn.BatchNorm2d and of every LightNorm
configuration are interleaved round by round, so a load change on the machine hits them alike;
the reported ratio is median(LightNorm) / median(BatchNorm2d) of that run. The first LightNorm
call (native: the library build or a cache hit; compile: tracing and C++ compilation) is timed
separately and not in the medians. Results go to docs/results/bench_torch.json and .md with the
tool versions, the machine and its load average (the machine may be shared: the load is part of
the result).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import lightnorm
from lightnorm.torch import LightNorm2d, _native
from lightnorm.torch.backends import _resolve_backend

_ROOT = Path(__file__).resolve().parents[3]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gcc_version() -> str:
    try:
        out = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0] if out.stdout else "unavailable"
    except OSError:
        return "unavailable"


def _step(module: nn.Module, x: torch.Tensor, dy: torch.Tensor) -> None:
    x.grad = None
    for p in module.parameters():
        p.grad = None
    module(x).backward(dy)


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(shape: tuple[int, ...], repeats: int, presets: list[str], backend: str) -> dict[str, Any]:
    torch.manual_seed(0)
    channels = shape[1]
    x = torch.randn(shape, dtype=torch.float32).requires_grad_()
    dy = torch.randn(shape, dtype=torch.float32)
    modules: dict[str, nn.Module] = {"nn.BatchNorm2d": nn.BatchNorm2d(channels)}
    first_call: dict[str, float] = {}
    for name in presets:
        light = LightNorm2d(channels, config=name, backend=backend)
        # native: library build or cache hit; compile: tracing + compilation or cache hit
        first_call[name] = _timed(functools.partial(_step, light, x, dy))
        modules[f"LightNorm2d[{name}]"] = light
    for module in modules.values():  # warm-up
        for _ in range(3):
            _step(module, x, dy)
    times: dict[str, list[float]] = {k: [] for k in modules}
    load_start = os.getloadavg()
    for _ in range(repeats):
        for key, module in modules.items():
            times[key].append(_timed(functools.partial(_step, module, x, dy)))
    load_end = os.getloadavg()
    base = statistics.median(times["nn.BatchNorm2d"])
    rows = {}
    for key, ts in times.items():
        med = statistics.median(ts)
        rows[key] = {
            "median_ms": med * 1e3,
            "min_ms": min(ts) * 1e3,
            "max_ms": max(ts) * 1e3,
            "ratio_vs_batchnorm2d": med / base,
            "ratio_of_minima": min(ts) / min(times["nn.BatchNorm2d"]),
        }
    return {
        "what": "training forward + backward (input, weight, bias), float32, "
        "median of interleaved rounds",
        "shape": list(shape),
        "repeats": repeats,
        "backend": backend,
        "backend_resolved": _resolve_backend(backend, x.numel()),
        "first_call_s": first_call,
        "results": rows,
        "load_average_start": list(load_start),
        "load_average_end": list(load_end),
    }


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "lightnorm": lightnorm.__version__,
        "cxx": _gcc_version(),
        "torch_num_threads": torch.get_num_threads(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "lightnorm_torch_backend_env": os.environ.get("LIGHTNORM_TORCH_BACKEND"),
        "native_library": _native.library_path() or f"unavailable: {_native.error()}",
        "native_flags": " ".join(_native.FLAGS),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def to_markdown(env: dict[str, Any], res: dict[str, Any]) -> str:
    lines = [
        "# LightNorm2d vs nn.BatchNorm2d (CPU)",
        "",
        "Generated by `python -m lightnorm.torch.bench`; do not edit by hand.",
        "",
        f"Step: {res['what']}; shape {tuple(res['shape'])}; {res['repeats']} interleaved rounds; "
        f"LightNorm backend `{res['backend']}` (runs as `{res['backend_resolved']}`).",
        "",
        "| module | median ms | min ms | max ms | median / BatchNorm2d | min / min |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in res["results"].items():
        lines.append(
            f"| {key} | {row['median_ms']:.2f} | {row['min_ms']:.2f} | {row['max_ms']:.2f} | "
            f"{row['ratio_vs_batchnorm2d']:.2f} | {row['ratio_of_minima']:.2f} |"
        )
    lines += [
        "",
        "First LightNorm call (native: library build or cache hit; compile: compilation or "
        "cache hit), seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in res["first_call_s"].items()),
        "",
        "Load average (1/5/15 min) at start "
        f"{tuple(round(v, 2) for v in res['load_average_start'])}, "
        f"at end {tuple(round(v, 2) for v in res['load_average_end'])} "
        f"on {env['cpu_count']} CPUs (a shared machine: both modules ran under the same load).",
        "",
        "## Environment",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shape", type=int, nargs=4, default=[32, 64, 32, 32])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--presets", nargs="+", default=["lightnorm"])
    ap.add_argument("--backend", default="auto", choices=["auto", "native", "compile", "eager"])
    ap.add_argument("--out-dir", type=Path, default=_ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    env = environment()
    res = run(tuple(args.shape), args.repeats, args.presets, args.backend)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench_torch.json").write_text(
        json.dumps({"environment": env, "benchmark": res}, indent=2) + "\n", encoding="utf-8"
    )
    md = to_markdown(env, res)
    (args.out_dir / "bench_torch.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
