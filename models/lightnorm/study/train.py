# SPDX-License-Identifier: Apache-2.0
"""Train a network with LightNorm (or plain BatchNorm) on Fashion-MNIST / CIFAR, on the CPU.

    python -m lightnorm.study.train --model resnet20 --norm lightnorm --dataset fashion-mnist \
        --epochs 5 --seed 0 [--width 16] [--batch-size 128] [--limit-train N] [--out DIR]

``--norm``: ``bn`` keeps torch's nn.BatchNorm2d; any preset name of ``lightnorm.config.PRESETS``
converts every BatchNorm layer with ``lightnorm.torch.convert_batchnorm``; a preset may carry
``key=value`` overrides of LightNormConfig fields after a colon, comma-separated:
``lightnorm:grad_mode=range_exact``, ``lightnorm:range_constant=banner,num_chunks=16``,
``fp32-bn:bfp=bfp_m4_g32``, ``lightnorm:bfp=none``.

Loss scaling (``--loss-scale``, docs/spec.md section 7): ``dynamic`` (the default for every
LightNorm preset) is ``torch.amp.GradScaler`` semantics: the loss is multiplied by a power of two
S before the backward, so every gradient, dy at each BN layer included, arrives scaled by S, and
d_gamma / d_beta leave the BN layer scaled; before the optimizer step the gradients are divided
by S (exact: a power of two) and, when any of them is Inf or NaN, the step is skipped and S is
halved; after ``LOSS_SCALE_GROWTH_INTERVAL`` clean steps in a row S doubles. A number (a power of
two) is a fixed scale with the same skip rule; ``off`` (the default for ``--norm bn``) is the
plain loop. Each epoch logs the scale at its end and the steps it skipped.

Recipe (fixed unless given): SGD, momentum 0.9, Nesterov, lr 0.1, weight decay 5e-4 (not on
norm parameters or biases), cosine decay of the lr per step to 0, cross-entropy, batch 128 with
the last incomplete training batch dropped (BN needs full batches), inputs scaled by the
training split's per-channel mean/std; CIFAR adds random crop (pad 4) + horizontal flip.
Seeds: ``--seed`` sets the weight initialization, the batch order and the augmentation; the
``--limit-train``/``--limit-test`` subset is fixed (seed 0) so every seed sees the same images.

Writes to ``--out`` (default ``runs/<model>_<norm>_<dataset>_seed<seed>``): ``metrics.csv``
(one row per epoch), ``result.json`` (settings, the exact LightNorm configuration, per-epoch
log, final test accuracy, timings, environment) and ``curves.png`` (loss and accuracy).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import enum
import hashlib
import importlib
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.config import PRESETS, LightNormConfig
from lightnorm.study.data import DATASETS, Dataset, batches, load_dataset
from lightnorm.study.nets import MODELS, build_model, default_width

__all__ = [
    "LossScaler",
    "TrainSettings",
    "convert_model",
    "evaluate",
    "main",
    "parse_norm",
    "run",
    "write_outputs",
]

_BFP_NAME_RE = re.compile(r"^bfp_m(\d+)_g(\d+)(?:_e(\d+))?(?:_(max|second_max))?$")
_INT_FIELDS = {"num_chunks"}


def _parse_bfp(text: str) -> BFPFormat | None:
    if text.lower() == "none":
        return None
    match = _BFP_NAME_RE.match(text)
    if match is None:
        raise ValueError(
            "--norm: bfp must be 'none' or a name like 'bfp_m5_g16[_e8][_second_max]', "
            f"got {text!r}"
        )
    man, group, exp, rule = match.groups()
    return BFPFormat(
        man_bits=int(man),
        group_size=int(group),
        exp_bits=int(exp or 8),
        rule=SharedExpRule(rule or "max"),
    )


def parse_norm(spec: str) -> LightNormConfig | None:
    """``bn`` -> None (plain nn.BatchNorm2d); ``preset[:key=value[,key=value...]]`` -> config.

    Values are handed to ``LightNormConfig.from_preset(preset, **overrides)``, which validates
    them; ``num_chunks`` is parsed as an int and ``bfp`` as ``none`` or a BFP format name.
    Raises ValueError naming the bad preset, key or value.
    """
    spec = spec.strip()
    if spec == "bn":
        return None
    name, _, tail = spec.partition(":")
    if name not in PRESETS:
        raise ValueError(
            f"--norm: unknown preset {name!r}; choose 'bn' or one of {sorted(PRESETS)}"
        )
    fields = {f.name for f in dataclasses.fields(LightNormConfig)}
    overrides: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in tail.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"--norm: override {item!r} is not key=value")
        if key not in fields:
            raise ValueError(
                f"--norm: unknown LightNormConfig field {key!r}; fields: {sorted(fields)}"
            )
        if key in overrides:
            raise ValueError(f"--norm: field {key!r} given twice")
        if key in _INT_FIELDS:
            try:
                overrides[key] = int(value)
            except ValueError:
                raise ValueError(f"--norm: {key} must be an integer, got {value!r}") from None
        elif key == "bfp":
            overrides[key] = _parse_bfp(value)
        else:
            overrides[key] = value
    return LightNormConfig.from_preset(name, **overrides)


def config_to_dict(config: LightNormConfig | None) -> dict[str, Any] | None:
    """A JSON-ready view of a configuration (formats and enums by their canonical names)."""
    if config is None:
        return None
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, enum.Enum):
            out[f.name] = value.value
        elif value is None or isinstance(value, (int, float, str)):
            out[f.name] = value
        else:
            out[f.name] = getattr(value, "name", str(value))
    return out


LOSS_SCALE_INIT = 2.0**16  # dynamic: the first scale (GradScaler's default)
LOSS_SCALE_GROWTH_INTERVAL = 200  # dynamic: clean steps in a row before the scale doubles


def parse_loss_scale(text: str) -> float | None:
    """``off`` -> None; ``dynamic`` -> 0.0 (marker); a power of two -> that fixed scale.

    Raises ValueError naming ``--loss-scale`` for anything else (a scale that is not a power of
    two would round every scaled gradient and break the exact unscaling).
    """
    text = str(text).strip().lower()
    if text == "off":
        return None
    if text == "dynamic":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"--loss-scale must be 'dynamic', 'off' or a power of two, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0 and math.frexp(value)[0] == 0.5):
        raise ValueError(f"--loss-scale must be a positive power of two, got {text!r}")
    return value


class LossScaler:
    """Loss scaling around ``torch.amp.GradScaler`` (CPU): scale, unscale + skip on Inf/NaN,
    update. ``fixed`` keeps the scale constant (steps with Inf/NaN gradients are still
    skipped); otherwise the scale is dynamic (halve on Inf/NaN, double after
    ``growth_interval`` clean steps)."""

    def __init__(
        self,
        init_scale: float,
        fixed: bool = False,
        growth_interval: int = LOSS_SCALE_GROWTH_INTERVAL,
    ) -> None:
        self.fixed = fixed
        self.init_scale = init_scale
        self.scaler = torch.amp.GradScaler(
            "cpu", init_scale=init_scale, growth_interval=growth_interval
        )
        self.skipped = 0

    @property
    def scale(self) -> float:
        return float(self.scaler.get_scale())

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> bool:
        """Backward of the scaled loss, then the optimizer step unless a gradient is Inf/NaN.
        Returns True when the step was taken."""
        self.scaler.scale(loss).backward()
        before = self.scale
        self.scaler.step(optimizer)  # unscales; skips the step when a gradient is Inf/NaN
        self.scaler.update()  # halves the scale exactly when the step was skipped
        taken = self.scale >= before
        if self.fixed:
            self.scaler.update(self.init_scale)
        self.skipped += not taken
        return taken


def make_loss_scaler(setting: str) -> LossScaler | None:
    """The scaler of a ``--loss-scale`` setting (None for ``off``)."""
    value = parse_loss_scale(setting)
    if value is None:
        return None
    if value == 0.0:
        return LossScaler(LOSS_SCALE_INIT)
    return LossScaler(value, fixed=True)


def _torch_module_digest() -> str:
    """sha256 (first 16 hex digits) over the sources of the lightnorm.torch package (its .py and
    .cpp files, in path order, each preceded by its relative path)."""
    pkg = Path(__file__).resolve().parents[1] / "torch"
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*")):
        if f.suffix in (".py", ".cpp"):
            h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def convert_model(model: nn.Module, config: LightNormConfig | None) -> int:
    """Swap the model's BatchNorm layers for LightNorm ones (in place); returns how many."""
    n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    if config is None:
        return 0
    if not _MODULE_DIGEST:
        _MODULE_DIGEST.append(_torch_module_digest())
    from lightnorm.torch import convert_batchnorm  # noqa: PLC0415 (torch module is optional)

    convert_batchnorm(model, config)
    left = sum(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in model.modules())
    if left:
        raise RuntimeError(f"convert_batchnorm left {left} BatchNorm layers unconverted")
    return n_bn


@dataclass(frozen=True)
class TrainSettings:
    """One training run; every field is recorded in result.json."""

    model: str = "resnet20"
    norm: str = "lightnorm"
    dataset: str = "fashion-mnist"
    epochs: int = 5
    seed: int = 0
    width: float | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    limit_train: int | None = None
    limit_test: int | None = None
    augment: bool | None = None
    data_dir: str | None = None
    threads: int = 2
    max_steps: int | None = None
    loss_scale: str | None = None  # "dynamic" | "off" | a power of two; None: by --norm

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {sorted(MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {list(DATASETS)}")
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        parse_norm(self.norm)
        parse_loss_scale(self.resolved_loss_scale)

    @property
    def resolved_loss_scale(self) -> str:
        """The loss-scale setting in force: dynamic for LightNorm presets, off for ``bn``."""
        if self.loss_scale is not None:
            return self.loss_scale
        return "off" if parse_norm(self.norm) is None else "dynamic"

    @property
    def resolved_width(self) -> float:
        return default_width(self.model) if self.width is None else self.width

    @property
    def resolved_augment(self) -> bool:
        return self.dataset != "fashion-mnist" if self.augment is None else self.augment

    def default_out(self) -> Path:
        norm = re.sub(r"[^A-Za-z0-9.=-]+", "_", self.norm)
        return Path("runs") / f"{self.model}_{norm}_{self.dataset}_seed{self.seed}"


class _Inputs:
    """uint8 images -> normalized float32 batches (optionally augmented), on demand."""

    def __init__(self, data: Dataset) -> None:
        mean, std = data.channel_stats()  # of x / 255
        self.mean = torch.tensor(255.0 * mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.scale = torch.tensor(1.0 / (255.0 * std), dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(
        self, x: np.ndarray[Any, Any], rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        t = (torch.from_numpy(np.ascontiguousarray(x)).float() - self.mean) * self.scale
        if rng is None:
            return t
        n, _, h, w = t.shape
        padded = F.pad(t, (4, 4, 4, 4))
        dy, dx = rng.integers(0, 9, size=n), rng.integers(0, 9, size=n)
        flip = rng.random(n) < 0.5
        out = torch.empty_like(t)
        for i in range(n):
            crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
            out[i] = crop.flip(-1) if flip[i] else crop
        return out


def evaluate(
    model: nn.Module,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    inputs: Callable[[np.ndarray[Any, Any]], torch.Tensor],
    batch_size: int = 500,
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in %) of ``model`` in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for idx in batches(len(y), batch_size):
            logits = model(inputs(x[idx]))
            target = torch.from_numpy(y[idx])
            loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    return loss_sum / len(y), 100.0 * correct / len(y)


def _finite_state(model: nn.Module) -> bool:
    """True when every parameter and floating buffer (running statistics) is finite."""
    tensors = [*model.parameters(), *model.buffers()]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


_MODULE_DIGEST: list[str] = []  # set once, when lightnorm.torch is first imported here


def _module_digest() -> str | None:
    """The digest of the lightnorm.torch sources as they were when this process imported
    it: which LightNorm module trained (None if no run of this process converted a model)."""
    return _MODULE_DIGEST[0] if _MODULE_DIGEST else None


def _environment(threads: int) -> dict[str, Any]:
    return {
        "lightnorm_torch_sha256": _module_digest(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def run(
    settings: TrainSettings,
    data: Dataset | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train per ``settings`` and return the result record (what result.json holds).

    ``data`` skips loading the dataset (tests, studies). ``progress`` shows a tqdm bar per epoch.
    A non-finite training loss stops the run: the record says ``diverged`` and keeps the
    accuracy of the model as it is then.
    """
    settings.validate()
    config = parse_norm(settings.norm)
    torch.set_num_threads(settings.threads)
    if data is None:
        data = load_dataset(settings.dataset, settings.data_dir)
    data = data.subset(settings.limit_train, settings.limit_test)
    inputs = _Inputs(data)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = build_model(settings.model, data.in_channels, data.num_classes, settings.resolved_width)
    n_params = sum(p.numel() for p in model.parameters())
    n_norm = convert_model(model, config)
    optimizer = torch.optim.SGD(
        _param_groups(model, settings.weight_decay),
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.momentum > 0,
    )
    steps_per_epoch = len(data.y_train) // settings.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(data.y_train)} training examples give no full batch of {settings.batch_size}"
        )
    if settings.max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, settings.max_steps)
    total_steps = steps_per_epoch * settings.epochs
    augment = settings.resolved_augment

    def lr_at(step: int) -> float:
        return 0.5 * settings.lr * (1.0 + math.cos(math.pi * step / total_steps))

    scaler = make_loss_scaler(settings.resolved_loss_scale)
    history: list[dict[str, Any]] = []
    step_losses: list[float] = []
    diverged = False
    t_run = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        it = batches(len(data.y_train), settings.batch_size, rng, drop_last=True)
        bar = None
        if progress:
            tqdm = importlib.import_module("tqdm").tqdm  # optional dependency, untyped

            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{settings.epochs}", leave=False)
        for i, idx in enumerate(it):
            if i >= steps_per_epoch:
                break
            step = (epoch - 1) * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            x = inputs(data.x_train[idx], rng if augment else None)
            target = torch.from_numpy(data.y_train[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, target)
            if not torch.isfinite(loss):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.backward_step(loss, optimizer)
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                diverged = True  # a finite loss with non-finite gradients: NaN/Inf weights
                break
            step_losses.append(loss.item())
            loss_sum += step_losses[-1] * len(idx)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
        if bar is not None:
            bar.close()
        train_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        if _finite_state(model):
            test_loss, test_acc = evaluate(model, data.x_test, data.y_test, inputs)
        else:  # e.g. running statistics overflowed: no defined eval output (LightNorm refuses)
            diverged = True
            test_loss, test_acc = float("nan"), 100.0 / data.num_classes  # chance level
        eval_time = time.perf_counter() - t1
        row = {
            "epoch": epoch,
            "lr_end": lr_at(epoch * steps_per_epoch),
            "train_loss": loss_sum / seen if seen else float("nan"),
            "train_acc": 100.0 * correct / seen if seen else float("nan"),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "train_time_s": train_time,
            "eval_time_s": eval_time,
            "steps": seen // settings.batch_size,
            "loss_scale": scaler.scale if scaler is not None else None,
            "skipped_steps": scaler.skipped if scaler is not None else 0,
        }
        history.append(row)
        if log is not None:
            log(
                f"[{settings.model} {settings.norm} seed {settings.seed}] epoch {epoch}: "
                f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}% | "
                f"test loss {test_loss:.4f} acc {test_acc:.2f}% | {train_time:.1f}s train, "
                f"{eval_time:.1f}s eval"
                + (
                    f" | loss scale {scaler.scale:g}, {scaler.skipped} steps skipped"
                    if scaler is not None
                    else ""
                )
            )
        if diverged:
            if log is not None:
                log(
                    f"non-finite training loss or model state in epoch {epoch}: run stopped "
                    "(diverged; test accuracy recorded at chance level if the state is not finite)"
                )
            break
    wall = time.perf_counter() - t_run
    epoch_times = [r["train_time_s"] for r in history]
    return {
        "settings": {
            **dataclasses.asdict(settings),
            "width": settings.resolved_width,
            "augment": augment,
            "loss_scale": settings.resolved_loss_scale,
        },
        "norm_config": config_to_dict(config),
        "model_info": {"parameters": n_params, "norm_layers_converted": n_norm},
        "data": {
            "dataset": data.name,
            "n_train": int(len(data.y_train)),
            "n_test": int(len(data.y_test)),
            "steps_per_epoch": steps_per_epoch,
        },
        "history": history,
        "step_losses": step_losses,
        "final_test_acc": history[-1]["test_acc"],
        "final_test_loss": history[-1]["test_loss"],
        "diverged": diverged,
        "epochs_completed": len(history),
        "train_time_per_epoch_s": float(np.mean(epoch_times)),
        "wall_time_s": wall,
        "environment": _environment(settings.threads),
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Loss and accuracy per epoch (train and test) as a PNG."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, style in (("train", "o-"), ("test", "s--")):
        ax_loss.plot(epochs, [r[f"{key}_loss"] for r in history], style, label=key)
        ax_acc.plot(epochs, [r[f"{key}_acc"] for r in history], style, label=key)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(result: dict[str, Any], out_dir: Path, plot: bool = True) -> None:
    """metrics.csv, curves.png, then result.json last (its presence marks a finished run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    history = result["history"]
    with open(out_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    if plot:
        s = result["settings"]
        title = (
            f"{s['model']} (width {s['width']}), norm {s['norm']}, {s['dataset']}, seed {s['seed']}"
        )
        plot_curves(history, out_dir / "curves.png", title)
    _atomic_write(out_dir / "result.json", json.dumps(result, indent=1) + "\n")


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "all", "0") else int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lightnorm.study.train",
        description="Train a CNN with LightNorm or BatchNorm on the CPU (no downloads).",
    )
    p.add_argument("--model", default="resnet20", choices=sorted(MODELS))
    p.add_argument(
        "--norm",
        default="lightnorm",
        help="'bn' or a preset (%(choices)s) with optional ':key=value,...' overrides".replace(
            "%(choices)s", ", ".join(sorted(PRESETS))
        ),
    )
    p.add_argument("--dataset", default="fashion-mnist", choices=list(DATASETS))
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--width",
        type=float,
        default=None,
        help="ResNet: first-stage channels (default 16); MobileNetV2: multiplier (1.0)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--limit-train",
        type=_optional_int,
        default=None,
        help="train on a fixed subset of N examples",
    )
    p.add_argument(
        "--limit-test",
        type=_optional_int,
        default=None,
        help="test on a fixed subset of N examples",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crop + flip (default: on for CIFAR, off for Fashion-MNIST)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per epoch")
    p.add_argument(
        "--loss-scale",
        default=None,
        help="'dynamic' (default for LightNorm presets), 'off' (default for bn) or a fixed "
        "power of two",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--no-plot", action="store_true", help="skip curves.png")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = TrainSettings(
        model=args.model,
        norm=args.norm,
        dataset=args.dataset,
        epochs=args.epochs,
        seed=args.seed,
        width=args.width,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        augment=args.augment,
        data_dir=args.data_dir,
        threads=args.threads,
        max_steps=args.max_steps,
        loss_scale=args.loss_scale,
    )
    try:
        settings.validate()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else settings.default_out()
    result = run(settings, progress=not args.no_progress)
    write_outputs(result, out, plot=not args.no_plot)
    print(
        f"final test accuracy {result['final_test_acc']:.2f}% "
        f"({result['train_time_per_epoch_s']:.1f} s/epoch train) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
