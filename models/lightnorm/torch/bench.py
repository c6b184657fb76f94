# SPDX-License-Identifier: Apache-2.0
"""Benchmark: LightNorm2d vs nn.BatchNorm2d, forward + backward, in the same run.

    python -m lightnorm.torch.bench [--shape 32 64 32 32] [--repeats 300] [--presets lightnorm ...]

Each timed step is a training forward (running statistics updated), a backward to the input
and the parameters, on a float32 tensor. Steps of nn.BatchNorm2d and of every LightNorm
configuration are interleaved round by round, so a load change on the machine hits them alike;
the reported ratio is median(LightNorm) / median(BatchNorm2d) of that run. The first LightNorm
call (native: the library build or a cache hit; compile: tracing and C++ compilation) is timed
separately and not in the medians. After the timed rounds, ``--breakdown`` rounds (not
interleaved, not in the medians) time each native pass of every LightNorm configuration, the
rest of its step being Python and per-channel work.

Results go to docs/results/bench_torch.json and .md with what explains them: the CPU model, its
vector instruction sets (/proc/cpuinfo flags, torch's CPU capability), the SIMD width and
instruction sets the native library was built for and its path, torch's threads and the
OpenMP settings, the tool versions, and the machine's load average before and after (the
machine may be shared: the load is part of the result).
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


_VECTOR_FLAG_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "asimd", "sve", "neon")
_PASS_NAMES = {0: "store+stats", 1: "variance", 2: "normalize", 3: "backward 1", 4: "backward 2"}
_REST = "rest (Python, per-channel steps)"
_OMP_ENV = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "OMP_DYNAMIC",
    "GOMP_SPINCOUNT",
    "GOMP_CPU_AFFINITY",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "MKL_NUM_THREADS",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, val = line.partition(":")
                out.setdefault(key.strip(), val.strip())
    except OSError:
        pass
    return out


def _cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or "unknown"


def _cpu_id() -> str:
    """Vendor, family / model / stepping (a hypervisor may show only "AMD EPYC" as the model
    name; family 25 model 1 is Zen 3, 25/17 Zen 4) and whether it is a virtual machine."""
    info = _cpuinfo()
    keys = ("vendor_id", "cpu family", "model", "stepping")
    parts = [f"{k} {info[k]}" for k in keys if k in info]
    if "hypervisor" in (info.get("flags") or "").split():
        parts.append("(virtual machine)")
    return ", ".join(parts) or platform.machine() or "unknown"


def _vector_flags() -> str:
    """The CPU's vector instruction-set flags (x86: sse*, avx*, fma, f16c, amx*; arm: asimd...)."""
    info = _cpuinfo()
    flags = (info.get("flags") or info.get("Features") or "").split()
    return " ".join(f for f in flags if f.startswith(_VECTOR_FLAG_PREFIXES)) or "unknown"


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


def _breakdown(module: nn.Module, x: torch.Tensor, dy: torch.Tensor, rounds: int) -> dict[str, Any]:
    """Median ms per native pass of a step (by pass name) and of the whole step, over rounds."""
    per: dict[str, list[float]] = {}
    steps: list[float] = []
    orig = _native.call

    def call(args: Any) -> None:
        t0 = time.perf_counter()
        orig(args)
        key = _PASS_NAMES.get(int(args.pass_), str(args.pass_))
        cur[key] = cur.get(key, 0.0) + time.perf_counter() - t0

    _native.call = call
    try:
        for _ in range(rounds):
            cur: dict[str, float] = {}
            steps.append(_timed(functools.partial(_step, module, x, dy)))
            for key, val in cur.items():
                per.setdefault(key, []).append(val)
    finally:
        _native.call = orig
    out = {k: statistics.median(v) * 1e3 for k, v in per.items()}
    step = statistics.median(steps) * 1e3
    out[_REST] = step - sum(out.values())
    out["step"] = step
    return out


def run(
    shape: tuple[int, ...], repeats: int, presets: list[str], backend: str, breakdown: int = 0
) -> dict[str, Any]:
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
    passes: dict[str, dict[str, float]] = {}
    if breakdown > 0 and _resolve_backend(backend, x.numel()) == "native":
        for key, module in modules.items():
            if key != "nn.BatchNorm2d":
                passes[key] = _breakdown(module, x, dy, breakdown)
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
        "breakdown_rounds": breakdown,
        "breakdown_ms": passes,
    }


def environment() -> dict[str, Any]:
    lib = _native.library_path()  # builds / loads the library first (its path, or None)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "lightnorm": lightnorm.__version__,
        "cxx": _gcc_version(),
        "cpu": _cpu_model(),
        "cpu_id": _cpu_id(),
        "cpu_vector_flags": _vector_flags(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_parallel_backend": _parallel_backend(),
        "omp_env": {k: os.environ.get(k) for k in _OMP_ENV if os.environ.get(k) is not None},
        "platform": platform.platform(),
        "lightnorm_torch_backend_env": os.environ.get("LIGHTNORM_TORCH_BACKEND"),
        "native_library": lib or f"unavailable: {_native.error()}",
        "native_isa": _native.isa() or "unavailable",
        "native_flags": " ".join(_native.FLAGS),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _parallel_backend() -> str:
    for line in torch.__config__.parallel_info().splitlines():
        if line.startswith("ATen parallel backend"):
            return line.split(":", 1)[1].strip()
    return "unknown"


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
    ]
    if res.get("breakdown_ms"):
        seen = {k for row in res["breakdown_ms"].values() for k in row}
        names = [k for k in (*_PASS_NAMES.values(), _REST, "step") if k in seen]
        lines += [
            f"Where a LightNorm step goes: median ms over {res['breakdown_rounds']} further "
            "rounds (not interleaved), per native pass and the rest of the step:",
            "",
            "| module | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for key, row in res["breakdown_ms"].items():
            cells = " | ".join(f"{row[k]:.2f}" if k in row else "" for k in names)
            lines.append(f"| {key} | {cells} |")
        lines.append("")
    lines += ["## Environment", ""]
    for k, v in env.items():
        text = (
            (", ".join(f"{a}={b}" for a, b in v.items()) or "(none set)")
            if isinstance(v, dict)
            else v
        )
        lines.append(f"- {k}: {text}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shape", type=int, nargs=4, default=[32, 64, 32, 32])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--presets", nargs="+", default=["lightnorm"])
    ap.add_argument("--backend", default="auto", choices=["auto", "native", "compile", "eager"])
    ap.add_argument(
        "--breakdown",
        type=int,
        default=50,
        help="rounds timing each native pass after the interleaved rounds (0: none)",
    )
    ap.add_argument("--out-dir", type=Path, default=_ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    env = environment()
    res = run(tuple(args.shape), args.repeats, args.presets, args.backend, args.breakdown)
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
