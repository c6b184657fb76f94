# SPDX-License-Identifier: Apache-2.0
"""Accuracy study: which of LightNorm's approximations cost accuracy, on real Fashion-MNIST.

    python -m lightnorm.study            # the default plan, sized for <= 90 min on 2 CPU cores
    python -m lightnorm.study --full     # longer runs (full training set, more epochs, wider)
    python -m lightnorm.study --measure  # time a few steps per variant, project the plan's cost
    python -m lightnorm.study --summarize  # only rebuild the report from finished runs

Every variant (see :data:`VARIANTS`) trains each model family (a CIFAR-style ResNet and a
MobileNetV2) with >= 3 seeds through ``lightnorm.study.train.run``. A run writes
``<runs-dir>/<plan>/<model>/<variant>/seed<k>/result.json`` last (the default runs-dir,
docs/results/study-runs/, is committed, so a new machine resumes instead of starting over),
so the study is resumable
(finished runs are skipped) and parallel-safe: a run is claimed with an exclusive lock file
(holding the owner's pid; a lock of a dead process is taken over), so several
``python -m lightnorm.study`` processes can share one plan. Runs go seed by seed, so a study
stopped early still has every variant at the lower seeds.

The report (``docs/results/accuracy.md`` and ``accuracy.json``) gives mean +- sample std of
the final test accuracy per variant and model, the training time per epoch, the exact
settings, the loss-scale trace, and the target check "LightNorm (numeric contract v2) within
1.0 pp of FP32 BN on both model families"; the single-approximation ablations and the
leave-one-out ablations of each v2 decision say what costs what. Seeds are 0, 1, 2, ... and
never tuned.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PLANS", "VARIANTS", "Plan", "Variant", "main", "summarize"]

TARGET_PP = 1.0  # LightNorm (FULL) within this many percentage points of FP32 BN


@dataclass(frozen=True)
class Variant:
    """One normalization variant: a short label, its --norm spec, what it isolates."""

    label: str
    norm: str
    what: str
    loss_scale: str | None = None  # --loss-scale; None: dynamic for LightNorm, off for bn


VARIANTS: tuple[Variant, ...] = (
    Variant("torch-bn", "bn", "torch nn.BatchNorm2d, not converted (reference of the harness)"),
    Variant("fp32-bn", "fp32-bn", "conventional BN in FP32 through the LightNorm code (baseline)"),
    Variant("range-fp32", "range-fp32", "range BN only (FP32, no BFP), batch-norm-style dx"),
    Variant(
        "range-fp32/dx=range_exact",
        "range-fp32:grad_mode=range_exact",
        "range BN only (FP32, no BFP), exact range-BN dx",
    ),
    Variant("fp10-bn", "fp10-bn", "FP10 E5M4 arithmetic only (variance BN, no BFP)"),
    Variant("bfp-bn", "bfp-bn", "BFP m5 g16 storage only (FP32 variance BN)"),
    Variant(
        "lightnorm-v2",
        "lightnorm-v2",
        "LightNorm, numeric contract v2: FP10 E5M4 elements, E8M7 per-channel scalars, range BN "
        "(K=8, C=lightnorm), exact range-BN dx, BFP m5 g16, dynamic loss scaling",
    ),
    Variant(
        "lightnorm-v1",
        "lightnorm-v1",
        "LightNorm, numeric contract v1 (E5M4 everywhere, batch-norm-style dx, no loss scaling)",
        loss_scale="off",
    ),
    Variant(
        "authors",
        "authors",
        "the authors' code's numerics (RTZ, second-max BFP g32, E6M3 grads, no loss scaling)",
        loss_scale="off",
    ),
    Variant(
        "v2/no-loss-scale",
        "lightnorm-v2",
        "v2 without loss scaling (leave-one-out)",
        loss_scale="off",
    ),
    Variant(
        "v2/dx=bn",
        "lightnorm-v2:grad_mode=bn",
        "v2 with the batch-norm-style dx (leave-one-out)",
    ),
    Variant(
        "v2/stat=e5m4",
        "lightnorm-v2:stat_format=fp10_e5m4",
        "v2 with per-channel scalars in E5M4 (5-bit exponent; leave-one-out)",
    ),
    Variant(
        "v2/overflow=saturate",
        "lightnorm-v2:overflow=saturate",
        "v2 with saturating instead of IEEE overflow of element results",
    ),
)
BASELINE = "fp32-bn"
FULL = "lightnorm-v2"
# single-approximation ablations, each compared with the FP32 BN baseline
ABLATIONS = ("range-fp32", "range-fp32/dx=range_exact", "fp10-bn", "bfp-bn")
# leave-one-out ablations of the v2 decisions, each compared with FULL
LEAVE_ONE_OUT = ("v2/no-loss-scale", "v2/dx=bn", "v2/stat=e5m4", "v2/overflow=saturate")


@dataclass(frozen=True)
class ModelSpec:
    family: str
    name: str
    width: float


@dataclass(frozen=True)
class Plan:
    """Everything a study fixes besides the variant and the seed."""

    name: str
    models: tuple[ModelSpec, ...]
    seeds: tuple[int, ...]
    epochs: int
    limit_train: int | None
    limit_test: int | None
    batch_size: int = 128
    lr: float = 0.1
    dataset: str = "fashion-mnist"
    threads: int = 2
    jobs: int = 1  # study processes sharing the plan (each with `threads` torch threads)
    # LightNorm execution backend of the runs ("auto" | "native" | "eager" | "compile";
    # bit-identical results, only the speed differs): LIGHTNORM_TORCH_BACKEND of the processes
    backend: str = "auto"
    note: str = ""


PLANS: dict[str, Plan] = {
    "default": Plan(
        name="default",
        models=(ModelSpec("ResNet", "resnet8", 8), ModelSpec("MobileNetV2", "mobilenetv2s", 0.25)),
        seeds=(0, 1, 2),
        epochs=6,
        limit_train=8192,
        limit_test=None,
        batch_size=64,
        lr=0.2,
        threads=1,
        jobs=2,
        backend="native",
        note=(
            "sized for <= 90 min wall on this 2-core CPU: two study processes with one torch "
            "thread each, the native LightNorm kernels; six epochs over a fixed 8 192-image "
            "training subset in batches of 64 (768 steps), lr 0.2 with cosine decay, ResNet-8 "
            "(width 8) and a 7-block MobileNetV2 (width 0.25), all 10 000 test images"
        ),
    ),
    "full": Plan(
        name="full",
        models=(ModelSpec("ResNet", "resnet20", 16), ModelSpec("MobileNetV2", "mobilenetv2", 0.5)),
        seeds=(0, 1, 2),
        epochs=15,
        limit_train=None,
        limit_test=None,
        note="all 60 000 training images, 15 epochs, ResNet-20 and the 17-block MobileNetV2",
    ),
}


def _settings(plan: Plan, model: ModelSpec, variant: Variant, seed: int) -> Any:
    from lightnorm.study.train import TrainSettings  # noqa: PLC0415 (keeps --help free of torch)

    return TrainSettings(
        model=model.name,
        norm=variant.norm,
        dataset=plan.dataset,
        epochs=plan.epochs,
        seed=seed,
        width=model.width,
        batch_size=plan.batch_size,
        lr=plan.lr,
        limit_train=plan.limit_train,
        limit_test=plan.limit_test,
        threads=plan.threads,
        loss_scale=variant.loss_scale,
    )


def _slug(label: str) -> str:
    return label.replace("/", "__").replace("=", "-")


def run_dir(runs_root: Path, plan: Plan, model: ModelSpec, variant: Variant, seed: int) -> Path:
    return runs_root / plan.name / model.name / _slug(variant.label) / f"seed{seed}"


# Run order inside a seed: the target comparison first, then the ablations, the slowest last.
RUN_ORDER = (
    "torch-bn",
    "fp32-bn",
    "lightnorm-v2",
    "lightnorm-v1",
    "v2/no-loss-scale",
    "v2/dx=bn",
    "v2/stat=e5m4",
    "v2/overflow=saturate",
    "range-fp32",
    "range-fp32/dx=range_exact",
    "fp10-bn",
    "bfp-bn",
    "authors",
)


def _jobs(plan: Plan, variants: Sequence[Variant]) -> Iterator[tuple[int, ModelSpec, Variant]]:
    ordered = sorted(
        variants, key=lambda v: RUN_ORDER.index(v.label) if v.label in RUN_ORDER else len(RUN_ORDER)
    )
    # seed-major, then variant: a partial study has every variant at seed 0 first, on both
    # model families, in RUN_ORDER (the target comparison first)
    for seed in plan.seeds:
        for variant in ordered:
            for model in plan.models:
                yield seed, model, variant


# ---------------------------------------------------------------------------------------------
# Locks: one O_EXCL file per run, holding "pid host"
# ---------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid_text, _, host = path.read_text().partition(" ")
                stale = host.strip() == socket.gethostname() and not _pid_alive(int(pid_text))
            except (OSError, ValueError):
                stale = False
            if not stale:
                return False
            path.unlink(missing_ok=True)  # the owner died: take the run over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}")
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def _check_same_settings(result_path: Path, expected: dict[str, Any]) -> None:
    stored = json.loads(result_path.read_text())["settings"]
    diff = {k: (stored.get(k), v) for k, v in expected.items() if stored.get(k) != v}
    if diff:
        raise SystemExit(
            f"{result_path} was made with other settings {diff} (stored, planned): delete it or "
            "use another --runs-dir"
        )


def _use_backend(plan: Plan) -> None:
    """The plan's LightNorm backend for this process (the module reads the variable per call)."""
    if plan.backend != "auto":
        os.environ["LIGHTNORM_TORCH_BACKEND"] = plan.backend


def run_study(
    plan: Plan, variants: Sequence[Variant], runs_root: Path, progress: bool = False
) -> tuple[int, int]:
    """Run every missing run of ``plan``; returns (runs done here, runs skipped)."""
    from lightnorm.study.data import load_dataset  # noqa: PLC0415
    from lightnorm.study.train import run, write_outputs  # noqa: PLC0415

    _use_backend(plan)
    data = load_dataset(plan.dataset)
    jobs = list(_jobs(plan, variants))
    done = skipped = 0
    t_start = time.perf_counter()
    for i, (seed, model, variant) in enumerate(jobs, 1):
        out = run_dir(runs_root, plan, model, variant, seed)
        settings = _settings(plan, model, variant, seed)
        expected = {
            **dataclasses.asdict(settings),
            "width": float(model.width),
            "loss_scale": settings.resolved_loss_scale,
        }
        expected.pop("augment")
        if (out / "result.json").exists():
            _check_same_settings(out / "result.json", expected)
            skipped += 1
            continue
        lock = out / ".lock"
        if not _try_lock(lock):
            print(f"[{i}/{len(jobs)}] {model.name} {variant.label} seed {seed}: running elsewhere")
            skipped += 1
            continue
        try:
            if (out / "result.json").exists():  # finished by another process meanwhile
                skipped += 1
                continue
            t0 = time.perf_counter()
            result = run(settings, data=data, progress=progress, log=None)
            write_outputs(result, out, plot=False)  # the per-run records are committed: no PNG
            done += 1
            elapsed = time.perf_counter() - t_start
            print(
                f"[{i}/{len(jobs)}] {model.name} {variant.label} seed {seed}: "
                f"test acc {result['final_test_acc']:.2f}%  "
                f"{result['train_time_per_epoch_s']:.1f} s/epoch  "
                f"run {time.perf_counter() - t0:.0f} s  (study {elapsed / 60:.1f} min)",
                flush=True,
            )
        finally:
            lock.unlink(missing_ok=True)
    return done, skipped


def measure(plan: Plan, variants: Sequence[Variant], steps: int = 4) -> dict[str, Any]:
    """Time ``steps`` training steps (after one warm-up) and one evaluation batch per variant
    and model, and project the plan's total time."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    from lightnorm.study.data import load_dataset  # noqa: PLC0415
    from lightnorm.study.nets import build_model  # noqa: PLC0415
    from lightnorm.study.train import convert_model, parse_norm  # noqa: PLC0415

    torch.set_num_threads(plan.threads)
    _use_backend(plan)
    data = load_dataset(plan.dataset)
    n_train = plan.limit_train or len(data.y_train)
    n_test = plan.limit_test or len(data.y_test)
    steps_per_epoch = n_train // plan.batch_size
    x = torch.randn(plan.batch_size, data.in_channels, data.image_size, data.image_size)
    y = torch.randint(0, data.num_classes, (plan.batch_size,))
    xe = torch.randn(500, data.in_channels, data.image_size, data.image_size)
    table: dict[str, Any] = {}
    total = 0.0
    for model_spec in plan.models:
        for variant in variants:
            torch.manual_seed(0)
            model = build_model(
                model_spec.name, data.in_channels, data.num_classes, model_spec.width
            )
            convert_model(model, parse_norm(variant.norm))
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            model.train()
            times = []
            for _ in range(steps + 1):  # the first step includes torch.compile
                t0 = time.perf_counter()
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
                times.append(time.perf_counter() - t0)
            step_s = float(np.median(times[1:]))
            model.eval()
            with torch.no_grad():
                model(xe[:50])  # compiles the inference passes
                t0 = time.perf_counter()
                model(xe)
                eval_s = (time.perf_counter() - t0) * n_test / 500
            epoch_s = step_s * steps_per_epoch + eval_s
            run_s = epoch_s * plan.epochs
            total += run_s * len(plan.seeds)
            table[f"{model_spec.name}/{variant.label}"] = {
                "first_step_s": times[0],
                "step_s": step_s,
                "eval_s": eval_s,
                "epoch_s": epoch_s,
                "run_s": run_s,
            }
            print(
                f"{model_spec.name:14s} {variant.label:26s} first {times[0]:6.1f} s  "
                f"step {step_s * 1000:7.1f} ms  "
                f"epoch {epoch_s:6.1f} s  run {run_s:6.1f} s",
                flush=True,
            )
    print(f"projected study time ({len(plan.seeds)} seeds): {total / 60:.1f} min")
    return {"variants": table, "projected_total_s": total}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")
    return float(arr.mean()), std


def collect(plan: Plan, variants: Sequence[Variant], runs_root: Path) -> dict[str, Any]:
    """Aggregate finished runs: per model family and variant, the accuracies and timings."""
    out: dict[str, Any] = {}
    for model in plan.models:
        per_variant: dict[str, Any] = {}
        for variant in variants:
            accs, seeds, epoch_times, curves, diverged, wall = [], [], [], [], [], []
            scales: list[list[float | None]] = []
            skipped: list[int] = []
            digests: set[str] = set()
            last_epoch_times: list[float] = []
            epochs = None
            for seed in plan.seeds:
                path = run_dir(runs_root, plan, model, variant, seed) / "result.json"
                if not path.exists():
                    continue
                r = json.loads(path.read_text())
                seeds.append(seed)
                accs.append(r["final_test_acc"])
                epoch_times.append(r["train_time_per_epoch_s"])
                last_epoch_times.append(r["history"][-1]["train_time_s"])
                curves.append([h["test_acc"] for h in r["history"]])
                scales.append([h.get("loss_scale") for h in r["history"]])
                skipped.append(sum(h.get("skipped_steps", 0) for h in r["history"]))
                diverged.append(bool(r["diverged"]))
                wall.append(r["wall_time_s"])
                digest = r.get("environment", {}).get("lightnorm_torch_sha256")
                if digest:  # None for torch-bn: no LightNorm module involved
                    digests.add(digest)
                epochs = r["settings"]["epochs"]
            if not seeds:
                continue
            mean, std = _stats(accs)
            per_variant[variant.label] = {
                "norm": variant.norm,
                "what": variant.what,
                "mean_acc": mean,
                "std_acc": std,
                "seeds": seeds,
                "accs": accs,
                "epochs": epochs,
                "train_time_per_epoch_s": float(np.mean(epoch_times)),
                "train_time_last_epoch_s": float(np.mean(last_epoch_times)),
                "wall_time_per_run_s": float(np.mean(wall)),
                "lightnorm_torch_sha256": sorted(digests),
                "diverged_seeds": [s for s, d in zip(seeds, diverged, strict=True) if d],
                "loss_scale": r["settings"].get("loss_scale", "off"),
                # the loss scale at the end of each epoch, per seed (None: no loss scaling)
                "loss_scale_per_epoch": dict(zip(map(str, seeds), scales, strict=True)),
                "skipped_steps": dict(zip(map(str, seeds), skipped, strict=True)),
                "test_acc_per_epoch_mean": np.mean(np.asarray(curves), axis=0).tolist()
                if len({len(c) for c in curves}) == 1
                else None,
            }
        out[model.name] = {"family": model.family, "width": model.width, "variants": per_variant}
    return out


def _target(results: dict[str, Any], plan: Plan) -> dict[str, Any]:
    per_model: dict[str, Any] = {}
    reached: bool | None = True
    missing = False
    for model in plan.models:
        v = results.get(model.name, {}).get("variants", {})
        if BASELINE not in v or FULL not in v:
            per_model[model.name] = {"status": "missing runs"}
            missing = True
            continue
        gap = v[BASELINE]["mean_acc"] - v[FULL]["mean_acc"]
        ok = gap <= TARGET_PP
        reached &= ok
        costs = {a: v[BASELINE]["mean_acc"] - v[a]["mean_acc"] for a in ABLATIONS if a in v}
        loo = {a: v[FULL]["mean_acc"] - v[a]["mean_acc"] for a in LEAVE_ONE_OUT if a in v}
        per_model[model.name] = {
            "leave_one_out_gain_pp": loo,
            "fp32_bn_mean": v[BASELINE]["mean_acc"],
            "lightnorm_mean": v[FULL]["mean_acc"],
            "gap_pp": gap,
            "within_target": ok,
            "ablation_cost_pp": costs,
            "costliest_ablation": max(costs, key=lambda k: costs[k]) if costs else None,
        }
    if missing:
        reached = None  # undecided until both families have the two variants
    return {"target_pp": TARGET_PP, "reached": reached, "per_model": per_model}


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}"


def _markdown(report: dict[str, Any], plan: Plan, variants: Sequence[Variant]) -> str:
    res, target, s = report["results"], report["target"], report["settings"]
    models = [m for m in plan.models if m.name in res]
    lines = [
        "# LightNorm accuracy study (Fashion-MNIST)",
        "",
        f"Generated by `python -m lightnorm.study{' --full' if plan.name == 'full' else ''}` on "
        f"{report['generated']} (plan `{plan.name}`). Every number below was measured here, "
        "on this machine's CPU; none is taken from the paper. Raw per-run records: "
        f"`{report['runs_dir']}/<model>/<variant>/seed<k>/result.json`.",
        "",
        *(
            [
                f"**Incomplete: {report['runs_finished']} of {report['runs_planned']} runs "
                "finished.** Cells with n < 3 seeds are marked; a missing cell is a run not yet "
                "done. Rerun the same command to continue (finished runs are skipped).",
                "",
            ]
            if report["runs_finished"] < report["runs_planned"]
            else []
        ),
        "## Settings",
        "",
        "- Data: real Fashion-MNIST (Debian `dataset-fashion-mnist`), training on "
        + (
            f"a fixed subset of {s['limit_train']} of the 60 000 images (the same for every run)"
            if s["limit_train"]
            else "all 60 000 images"
        )
        + f", test on {'all 10 000' if not s['limit_test'] else s['limit_test']} test images; "
        "inputs normalized by the training mean/std, no augmentation.",
        "- Models: "
        + "; ".join(f"{m.family} = `{m.name}` width {m.width:g}" for m in plan.models)
        + " (`lightnorm.study.nets`; every BatchNorm2d converted with `convert_batchnorm` except "
        "`torch-bn`).",
        f"- Training: {s['epochs']} epochs, batch {s['batch_size']} (last partial batch "
        f"dropped), SGD momentum 0.9 Nesterov, lr {s['lr']} with per-step cosine decay to 0, "
        "weight decay 5e-4 (not on norm parameters and biases), cross-entropy; "
        f"torch {s['environment']['torch']} on CPU with {s['threads']} threads.",
        f"- Seeds: {', '.join(map(str, plan.seeds))} (weight init, batch order; not tuned). "
        "± is the sample standard deviation over seeds.",
        f"- Budget: {plan.note}.",
        "- LightNorm module: `models/lightnorm/torch/` sha256 prefix "
        + ", ".join(f"`{d}`" for d in report["lightnorm_torch_sha256"])
        + " (recorded by every run).",
        f"- Run time (sum of the runs' wall times, training + evaluation, over all study "
        "processes; with --jobs N the study's own wall time is about 1/N of it): "
        f"{report['total_run_time_s'] / 60:.1f} min for {report['runs_finished']} of "
        f"{report['runs_planned']} runs.",
        "",
        "## Final test accuracy (%)",
        "",
        "| variant | `--norm` | "
        + " | ".join(f"{m.family} `{m.name}`" for m in models)
        + " | train s/epoch, last epoch: "
        + " / ".join(m.family for m in models)
        + " |",
        "|---|---|" + "---:|" * len(models) + "---:|",
    ]
    for variant in variants:
        cells, times = [], []
        for m in models:
            r = res[m.name]["variants"].get(variant.label)
            if r is None:
                cells.append("—")
                times.append("—")
                continue
            note = "" if len(r["seeds"]) >= 3 else f" (n={len(r['seeds'])})"
            if r["diverged_seeds"]:
                note += f" (diverged: seeds {r['diverged_seeds']})"
            cells.append(_fmt(r["mean_acc"], r["std_acc"]) + note)
            times.append(f"{r['train_time_last_epoch_s']:.1f}")
        lines.append(
            f"| {variant.label} | `{variant.norm}` | "
            + " | ".join(cells)
            + " | "
            + " / ".join(times)
            + " |"
        )
    lines += ["", "Variants:", ""]
    lines += [f"- `{v.label}`: {v.what}." for v in variants]
    lines += [
        "",
        f"## Target: `{FULL}` within {TARGET_PP:.1f} pp of FP32 BN on both model families",
        "",
    ]
    for m in models:
        t = target["per_model"].get(m.name, {})
        if "gap_pp" not in t:
            lines.append(f"- {m.family} `{m.name}`: missing runs.")
            continue
        verdict = "within target" if t["within_target"] else "NOT within target"
        lines.append(
            f"- {m.family} `{m.name}`: FP32 BN {t['fp32_bn_mean']:.2f} %, LightNorm "
            f"{t['lightnorm_mean']:.2f} % → gap {t['gap_pp']:+.2f} pp: **{verdict}**."
        )
    overall = {True: "reached", False: "not reached", None: "undecided (runs missing)"}
    lines += ["", f"**Target {overall[target['reached']]}.**", ""]
    if target["reached"] is False:
        lines.append(
            "Cost of each approximation alone (FP32 BN mean − ablation mean, pp; positive = "
            "accuracy lost):"
        )
        lines.append("")
        for m in models:
            t = target["per_model"].get(m.name, {})
            if not t.get("ablation_cost_pp"):
                continue
            costs = ", ".join(f"`{a}` {c:+.2f}" for a, c in t["ablation_cost_pp"].items())
            lines.append(
                f"- {m.family} `{m.name}`: {costs}; costliest: `{t['costliest_ablation']}`."
            )
        lines.append("")
        lines.append(
            "A gap within about two standard deviations of the seeds is not resolved by "
            f"{len(plan.seeds)} seeds; the `--full` plan trains longer on all data."
        )
        lines.append("")
    loo_lines = []
    for m in models:
        t = target["per_model"].get(m.name, {})
        if t.get("leave_one_out_gain_pp"):
            gains = ", ".join(f"`{a}` {c:+.2f}" for a, c in t["leave_one_out_gain_pp"].items())
            loo_lines.append(f"- {m.family} `{m.name}`: {gains}.")
    if loo_lines:
        lines += [
            f"What each v2 decision is worth (`{FULL}` mean − leave-one-out mean, pp; positive = "
            "the decision gains accuracy):",
            "",
            *loo_lines,
            "",
        ]
    trace = []
    for m in models:
        for variant in variants:
            r = res[m.name]["variants"].get(variant.label)
            if r is None or r.get("loss_scale", "off") == "off":
                continue
            per_seed = "; ".join(
                f"seed {s}: "
                + ", ".join(f"{x:g}" for x in sc if x is not None)
                + f" ({r['skipped_steps'][s]} skipped)"
                for s, sc in r["loss_scale_per_epoch"].items()
            )
            trace.append(f"| {m.family} | {variant.label} | {r['loss_scale']} | {per_seed} |")
    if trace:
        lines += [
            "## Loss-scale trace",
            "",
            "Loss scale at the end of each epoch and the steps skipped for an Inf/NaN gradient, "
            "per seed.",
            "",
            "| model | variant | `--loss-scale` | scale per epoch (skipped steps) |",
            "|---|---|---|---|",
            *trace,
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"python -m lightnorm.study{' --full' if plan.name == 'full' else ''}   # resumable; "
        "finished runs are skipped",
        "```",
        "",
        f"One run of the table, e.g. `{FULL}` on the ResNet, seed 0:",
        "",
        "```",
        (f"LIGHTNORM_TORCH_BACKEND={plan.backend} " if plan.backend != "auto" else "")
        + f"python -m lightnorm.study.train --model {plan.models[0].name} "
        f"--width {plan.models[0].width:g} --norm {FULL} --dataset fashion-mnist "
        f"--epochs {plan.epochs} --seed 0 --batch-size {plan.batch_size} --lr {plan.lr:g} "
        f"--threads {plan.threads}"
        + (f" --limit-train {plan.limit_train}" if plan.limit_train else "")
        + (f" --limit-test {plan.limit_test}" if plan.limit_test else ""),
        "```",
        "",
    ]
    return "\n".join(lines)


def summarize(
    plan: Plan, variants: Sequence[Variant], runs_root: Path, out_dir: Path
) -> dict[str, Any]:
    """Write accuracy.json and accuracy.md from the finished runs; returns the report."""
    import torch  # noqa: PLC0415

    results = collect(plan, variants, runs_root)
    finished = sum(len(v["seeds"]) for m in results.values() for v in m["variants"].values())
    total_time = sum(
        v["wall_time_per_run_s"] * len(v["seeds"])
        for m in results.values()
        for v in m["variants"].values()
    )
    report = {
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "plan": plan.name,
        "runs_dir": str(runs_root / plan.name),
        "settings": {
            **{k: v for k, v in dataclasses.asdict(plan).items() if k != "models"},
            "models": [dataclasses.asdict(m) for m in plan.models],
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "schedule": "cosine per step to 0",
            "environment": {"torch": torch.__version__, "cpu_count": os.cpu_count()},
        },
        "runs_planned": len(plan.seeds) * len(plan.models) * len(variants),
        "runs_finished": finished,
        "lightnorm_torch_sha256": sorted(
            {
                d
                for m in results.values()
                for v in m["variants"].values()
                for d in v["lightnorm_torch_sha256"]
            }
        ),
        "total_run_time_s": total_time,
        "results": results,
        "target": _target(results, plan),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "accuracy" if plan.name == "default" else f"accuracy_{plan.name}"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / f"{stem}.md").write_text(_markdown(report, plan, variants))
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lightnorm.study", description=__doc__.split("\n")[0]
    )
    p.add_argument("--full", action="store_true", help="the long plan (hours on a CPU)")
    p.add_argument("--measure", action="store_true", help="time each variant, project the cost")
    p.add_argument("--summarize", action="store_true", help="only write the report")
    p.add_argument("--variants", default=None, help="comma-separated variant labels (default all)")
    p.add_argument("--runs-dir", type=Path, default=Path("docs/results/study-runs"))
    p.add_argument("--out-dir", type=Path, default=Path("docs/results"))
    p.add_argument("--progress", action="store_true", help="tqdm bar per epoch")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="study processes sharing the plan (default: the plan's)",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # spawned by --jobs
    g = p.add_argument_group("plan overrides (the plan is then named 'custom')")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--limit-train", type=int, default=None)
    g.add_argument("--limit-test", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--seeds", default=None, help="comma-separated, e.g. 0,1,2")
    g.add_argument("--resnet", default=None, help="model:width, e.g. resnet8:8")
    g.add_argument("--mobilenet", default=None, help="model:width, e.g. mobilenetv2s:0.25")
    return p


def _plan_from_args(args: argparse.Namespace) -> Plan:
    plan = PLANS["full" if args.full else "default"]
    changes: dict[str, Any] = {}
    for key in ("epochs", "limit_train", "limit_test", "batch_size"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.seeds is not None:
        changes["seeds"] = tuple(int(v) for v in args.seeds.split(","))
    models = list(plan.models)
    for i, text in ((0, args.resnet), (1, args.mobilenet)):
        if text is not None:
            name, _, width = text.partition(":")
            models[i] = ModelSpec(models[i].family, name, float(width or 1.0))
    if tuple(models) != plan.models:
        changes["models"] = tuple(models)
    if not changes:
        return plan
    described = ", ".join(f"{k}={v}" for k, v in changes.items())
    return dataclasses.replace(
        plan, name="custom", note=f"plan {plan.name} with {described}", **changes
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = _plan_from_args(args)
    variants = list(VARIANTS)
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",")]
        known = {v.label: v for v in VARIANTS}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            print(f"error: unknown variants {unknown}; known: {list(known)}", file=sys.stderr)
            return 2
        variants = [known[w] for w in wanted]
    if args.measure:
        measure(plan, variants)
        return 0
    if not args.summarize:
        if not args.worker:
            print(f"plan {plan.name}: {plan.note}", flush=True)
        jobs = plan.jobs if args.jobs is None else args.jobs
        workers = []
        if not args.worker and jobs > 1:  # the other processes run the same plan (run locks)
            own = list(sys.argv[1:] if argv is None else argv)
            cmd = [sys.executable, "-m", "lightnorm.study", *own, "--worker"]
            workers = [subprocess.Popen(cmd) for _ in range(jobs - 1)]
        done, skipped = run_study(plan, variants, args.runs_dir, progress=args.progress)
        failed = [w.args for w in workers if w.wait() != 0]
        print(f"{done} runs done here, {skipped} skipped (finished or run by another process)")
        if failed:
            print(f"error: study worker failed: {failed}", file=sys.stderr)
            return 1
        if args.worker:
            return 0
    # the report always covers every variant; missing ones show as "—"
    report = summarize(plan, list(VARIANTS), args.runs_dir, args.out_dir)
    verdict = {True: "reached", False: "not reached", None: "undecided"}[
        report["target"]["reached"]
    ]
    stem = "accuracy" if plan.name == "default" else f"accuracy_{plan.name}"
    print(
        f"report: {args.out_dir}/{stem}.md ({report['runs_finished']}/{report['runs_planned']} "
        f"runs; target {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
