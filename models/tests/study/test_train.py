"""lightnorm.study.train and lightnorm.study: the --norm parser, a LightNorm training smoke test on
real Fashion-MNIST (the loss must decrease), the CLI outputs, and the study's resumable,
parallel-safe bookkeeping and report."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.config import GradMode, LightNormConfig, RangeConstant
from lightnorm.study import plan as S
from lightnorm.study.data import FASHION_MNIST_DEFAULT_DIR, load_fashion_mnist, write_idx
from lightnorm.study.train import (
    LossScaler,
    TrainSettings,
    main,
    make_loss_scaler,
    parse_loss_scale,
    parse_norm,
    run,
)

SEED = 20251125
print(f"[test_train] SEED={SEED}")

HAVE_FASHION = (FASHION_MNIST_DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION,
    reason="Debian package dataset-fashion-mnist not installed (make tools installs it)",
)


# ---------------------------------------------------------------------------------------------
# --norm parser
# ---------------------------------------------------------------------------------------------


def test_parse_norm_presets_and_overrides():
    assert parse_norm("bn") is None
    assert parse_norm("lightnorm") == LightNormConfig.from_preset("lightnorm")
    assert parse_norm("authors") == LightNormConfig.from_preset("authors")
    cfg = parse_norm("lightnorm:grad_mode=range_exact")
    assert cfg == LightNormConfig.from_preset("lightnorm", grad_mode="range_exact")
    assert cfg.grad_mode is GradMode.RANGE_EXACT
    cfg = parse_norm("lightnorm:range_constant=banner, num_chunks=16")
    assert cfg.range_constant is RangeConstant.BANNER and cfg.num_chunks == 16
    assert parse_norm("lightnorm:bfp=none").bfp is None
    assert parse_norm("fp32-bn:bfp=bfp_m4_g32").bfp == BFPFormat(man_bits=4, group_size=32)
    assert parse_norm("lightnorm:bfp=bfp_m6_g8_e6_second_max").bfp == BFPFormat(
        6, 8, 6, SharedExpRule.SECOND_MAX
    )
    assert parse_norm("lightnorm:compute_format=fp12_e5m6").compute_format.man_bits == 6


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("batchnorm", "unknown preset 'batchnorm'"),
        ("lightnorm:foo=1", "unknown LightNormConfig field 'foo'"),
        ("lightnorm:grad_mode", "not key=value"),
        ("lightnorm:grad_mode=", "not key=value"),
        ("lightnorm:grad_mode=sideways", "grad_mode"),
        ("lightnorm:num_chunks=eight", "num_chunks must be an integer"),
        ("lightnorm:num_chunks=6", "num_chunks"),
        ("lightnorm:bfp=bfp16", "bfp must be 'none'"),
        ("lightnorm:grad_mode=bn,grad_mode=range_exact", "given twice"),
        ("fp32-bn:grad_mode=range_exact", "range_exact"),
    ],
)
def test_parse_norm_errors_name_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_norm(spec)


def test_cli_rejects_bad_norm(capsys):
    assert main(["--norm", "lightnorm:nope=1", "--epochs", "1"]) == 2
    assert "nope" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# loss scaling
# ---------------------------------------------------------------------------------------------


def test_parse_loss_scale():
    assert parse_loss_scale("off") is None
    assert parse_loss_scale("dynamic") == 0.0
    assert parse_loss_scale("4096") == 4096.0
    assert parse_loss_scale("0.25") == 0.25
    for bad in ("3000", "-4", "0", "inf", "nan", "sometimes"):
        with pytest.raises(ValueError, match="--loss-scale"):
            parse_loss_scale(bad)
    assert TrainSettings(norm="bn").resolved_loss_scale == "off"
    assert TrainSettings(norm="lightnorm").resolved_loss_scale == "dynamic"
    assert TrainSettings(norm="lightnorm", loss_scale="off").resolved_loss_scale == "off"
    with pytest.raises(ValueError, match="--loss-scale"):
        TrainSettings(norm="lightnorm", loss_scale="3").validate()
    assert make_loss_scaler("off") is None
    assert make_loss_scaler("1024").fixed


def _linear_problem():
    import torch  # noqa: PLC0415

    torch.manual_seed(SEED % 1000)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    target = torch.randint(0, 3, (8,))
    return torch, model, opt, x, target


def test_loss_scaler_skips_a_step_with_an_inf_gradient_and_halves_the_scale():
    torch, model, opt, x, target = _linear_problem()
    scaler = LossScaler(2.0**12)
    before = [p.detach().clone() for p in model.parameters()]
    hook = model.weight.register_hook(lambda g: g * float("inf"))
    opt.zero_grad()
    assert not scaler.backward_step(torch.nn.functional.cross_entropy(model(x), target), opt)
    assert scaler.scale == 2.0**11 and scaler.skipped == 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    hook.remove()
    opt.zero_grad()
    assert scaler.backward_step(torch.nn.functional.cross_entropy(model(x), target), opt)
    assert scaler.scale == 2.0**11 and scaler.skipped == 1
    assert not torch.equal(before[0], model.weight)


def test_fixed_loss_scale_skips_but_keeps_the_scale():
    torch, model, opt, x, target = _linear_problem()
    scaler = LossScaler(2.0**10, fixed=True)
    hook = model.bias.register_hook(lambda g: g * float("nan"))
    opt.zero_grad()
    assert not scaler.backward_step(torch.nn.functional.cross_entropy(model(x), target), opt)
    assert scaler.scale == 2.0**10 and scaler.skipped == 1
    hook.remove()


def test_dynamic_loss_scale_grows_after_a_run_of_clean_steps():
    torch, model, opt, x, target = _linear_problem()
    scaler = LossScaler(2.0**8, growth_interval=3)
    scales = []
    for _ in range(7):
        opt.zero_grad()
        assert scaler.backward_step(torch.nn.functional.cross_entropy(model(x), target), opt)
        scales.append(scaler.scale)
    assert scales == [2.0**8, 2.0**8, 2.0**9, 2.0**9, 2.0**9, 2.0**10, 2.0**10]


def test_loss_scaled_step_equals_the_plain_step_bit_for_bit():
    # a power-of-two scale is exact in both directions: the FP32 update of a scaled and
    # unscaled step is the same to the bit (no gradient here is near the subnormal range)
    torch, model, opt, x, target = _linear_problem()
    import copy  # noqa: PLC0415

    model2 = copy.deepcopy(model)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    scaler = LossScaler(2.0**14)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()
        opt2.zero_grad()
        assert scaler.backward_step(torch.nn.functional.cross_entropy(model2(x), target), opt2)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters(), strict=True)
    )


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist().subset(1024, 256)


@needs_fashion
def test_lightnorm_training_smoke_loss_decreases(fashion, monkeypatch):
    pytest.importorskip("lightnorm.torch", reason="lightnorm.torch (the torch module) not present")
    monkeypatch.setenv("LIGHTNORM_TORCH_BACKEND", "eager")  # no torch.compile in unit tests
    # a tiny ResNet fits 16 real images: 3 epochs of 2 steps, the training loss must fall
    settings = TrainSettings(
        model="resnet8",
        width=2,
        norm="lightnorm",
        epochs=3,
        seed=0,
        batch_size=8,
        limit_train=16,
        limit_test=16,
    )
    result = run(settings, data=fashion, progress=False, log=None)
    losses = [h["train_loss"] for h in result["history"]]
    assert len(result["step_losses"]) == 6 and np.isfinite(result["step_losses"]).all()
    assert not result["diverged"]
    assert result["model_info"]["norm_layers_converted"] == 9
    assert result["norm_config"]["statistics"] == "range"
    assert losses[-1] < losses[0] - 0.05, losses


def test_non_finite_model_state_counts_as_diverged():
    # a LightNorm layer refuses to evaluate with non-finite running statistics: run() checks
    # the state before evaluating and records the run as diverged instead of crashing
    import torch  # noqa: PLC0415

    from lightnorm.study.nets import build_model  # noqa: PLC0415
    from lightnorm.study.train import _finite_state  # noqa: PLC0415

    model = build_model("resnet8", 1, 10, 2)
    assert _finite_state(model)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[0] = float("nan")
    assert not _finite_state(model)
    bn.running_var[0] = 1.0
    next(model.parameters()).data.view(-1)[0] = float("inf")
    assert not _finite_state(model)


@needs_fashion
def test_bn_training_is_reproducible(fashion):
    settings = TrainSettings(
        model="resnet8", width=4, norm="bn", epochs=1, seed=3, batch_size=64, max_steps=4
    )
    a = run(settings, data=fashion, progress=False, log=None)
    b = run(settings, data=fashion, progress=False, log=None)
    assert a["step_losses"] == b["step_losses"] and a["final_test_acc"] == b["final_test_acc"]


@needs_fashion
def test_loss_scaling_off_and_fixed_give_the_same_fp32_training(fashion):
    # torch BN in FP32: a power-of-two loss scale is exact, so the run is bit-identical to the
    # unscaled one; the per-epoch log records the scale and the skipped steps
    base = TrainSettings(
        model="resnet8", width=4, norm="bn", epochs=1, seed=3, batch_size=64, max_steps=3
    )
    off = run(base, data=fashion, progress=False, log=None)
    scaled = run(
        TrainSettings(**{**base.__dict__, "loss_scale": "1024"}),
        data=fashion,
        progress=False,
        log=None,
    )
    assert off["step_losses"] == scaled["step_losses"]
    assert off["final_test_acc"] == scaled["final_test_acc"]
    assert off["history"][0]["loss_scale"] is None
    assert scaled["history"][0]["loss_scale"] == 1024.0
    assert scaled["history"][0]["skipped_steps"] == 0
    assert scaled["settings"]["loss_scale"] == "1024"


def _fake_fashion(folder, n_train=192, n_test=64):
    rng = np.random.default_rng(SEED)
    folder.mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))


def test_cli_writes_csv_json_png(tmp_path, capsys):
    _fake_fashion(tmp_path / "fm")
    out = tmp_path / "run"
    rc = main(
        [
            "--model",
            "resnet8",
            "--width",
            "4",
            "--norm",
            "bn",
            "--epochs",
            "2",
            "--seed",
            "1",
            "--batch-size",
            "32",
            "--limit-train",
            "128",
            "--data-dir",
            str(tmp_path / "fm"),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "final test accuracy" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    result = json.loads((out / "result.json").read_text())
    assert result["settings"]["norm"] == "bn" and result["norm_config"] is None
    assert result["data"]["n_train"] == 128 and result["data"]["steps_per_epoch"] == 4
    assert len(result["history"]) == 2 and 0 <= result["final_test_acc"] <= 100
    assert result["environment"]["torch_threads"] == 2
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_small_training_set_is_an_error(tmp_path):
    _fake_fashion(tmp_path / "fm", n_train=10)
    with pytest.raises(ValueError, match="no full batch"):
        run(
            TrainSettings(
                model="resnet8", width=4, norm="bn", epochs=1, data_dir=str(tmp_path / "fm")
            ),
            progress=False,
            log=None,
        )


# ---------------------------------------------------------------------------------------------
# study bookkeeping and report (no training: results are written by hand)
# ---------------------------------------------------------------------------------------------


def test_study_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    lock = tmp_path / "a" / ".lock"
    assert S._try_lock(lock)
    assert not S._try_lock(lock)  # held by this (live) process
    lock.unlink()
    import socket

    lock.write_text(f"999999999 {socket.gethostname()}")  # a pid that does not exist
    assert S._try_lock(lock)
    assert lock.read_text().split()[0] == str(os.getpid())


def _fake_result(path, acc, seed, epochs=3, loss_scale="off"):
    path.mkdir(parents=True)
    hist = [
        {
            "epoch": e + 1,
            "test_acc": acc - (epochs - 1 - e),
            "train_time_s": 2.0,
            "loss_scale": None if loss_scale == "off" else 2.0 ** (16 - e),
            "skipped_steps": 0 if loss_scale == "off" else e,
        }
        for e in range(epochs)
    ]
    path.joinpath("result.json").write_text(
        json.dumps(
            {
                "settings": {"epochs": epochs, "seed": seed, "loss_scale": loss_scale},
                "final_test_acc": acc,
                "train_time_per_epoch_s": 2.0,
                "history": hist,
                "diverged": False,
                "wall_time_s": 7.0,
            }
        )
    )


def test_study_report_target_and_costliest_ablation(tmp_path):
    plan = S.Plan(
        name="t",
        models=(
            S.ModelSpec("ResNet", "resnet8", 16),
            S.ModelSpec("MobileNetV2", "mobilenetv2s", 0.5),
        ),
        seeds=(0, 1, 2),
        epochs=3,
        limit_train=100,
        limit_test=None,
    )
    accs = {
        "fp32-bn": 90.0,
        "range-fp32": 89.5,
        "fp10-bn": 87.0,
        "bfp-bn": 89.9,
        "lightnorm-v2": 88.0,
        "v2/no-loss-scale": 85.0,
        "v2/dx=bn": 87.5,
    }
    variants = [v for v in S.VARIANTS if v.label in accs]
    for model in plan.models:
        for v in variants:
            for seed in plan.seeds:
                scale = "dynamic" if v.loss_scale is None and v.norm != "bn" else "off"
                _fake_result(
                    S.run_dir(tmp_path, plan, model, v, seed),
                    accs[v.label] + 0.1 * seed,
                    seed,
                    loss_scale=scale,
                )
    report = S.summarize(plan, variants, tmp_path, tmp_path / "out")
    r = report["results"]["resnet8"]["variants"]["lightnorm-v2"]
    assert r["loss_scale"] == "dynamic" and r["skipped_steps"] == {"0": 3, "1": 3, "2": 3}
    assert r["loss_scale_per_epoch"]["1"] == [2.0**16, 2.0**15, 2.0**14]
    assert r["mean_acc"] == pytest.approx(88.1) and r["std_acc"] == pytest.approx(0.1)
    assert r["seeds"] == [0, 1, 2] and r["epochs"] == 3
    t = report["target"]
    assert not t["reached"] and t["per_model"]["resnet8"]["gap_pp"] == pytest.approx(2.0)
    assert t["per_model"]["mobilenetv2s"]["costliest_ablation"] == "fp10-bn"
    loo = t["per_model"]["resnet8"]["leave_one_out_gain_pp"]
    assert loo == {"v2/no-loss-scale": pytest.approx(3.0), "v2/dx=bn": pytest.approx(0.5)}
    md = (tmp_path / "out" / "accuracy_t.md").read_text()
    assert "88.10 ± 0.10" in md and "Target not reached" in md and "costliest: `fp10-bn`" in md
    assert "`v2/no-loss-scale` +3.00" in md and "## Loss-scale trace" in md
    assert "65536, 32768, 16384 (3 skipped)" in md
    saved = json.loads((tmp_path / "out" / "accuracy_t.json").read_text())
    assert saved["results"]["mobilenetv2s"]["variants"]["fp32-bn"]["mean_acc"] == pytest.approx(
        90.1
    )


def test_study_plans_cover_the_required_variants():
    labels = {v.label for v in S.VARIANTS}
    assert {
        "torch-bn",
        "fp32-bn",
        "range-fp32",
        "range-fp32/dx=range_exact",
        "fp10-bn",
        "bfp-bn",
        "lightnorm-v2",
        "lightnorm-v1",
        "authors",
        "v2/no-loss-scale",
        "v2/dx=bn",
        "v2/stat=e5m4",
    } <= labels
    assert S.FULL in labels and set(S.LEAVE_ONE_OUT) <= labels and set(S.ABLATIONS) <= labels
    for variant in S.VARIANTS:
        parse_norm(variant.norm)
        TrainSettings(norm=variant.norm, loss_scale=variant.loss_scale).validate()
    for plan in S.PLANS.values():
        assert len(plan.seeds) >= 3
        assert {m.family for m in plan.models} == {"ResNet", "MobileNetV2"}
        assert plan.backend in ("auto", "native", "eager", "compile")
        assert plan.jobs >= 1
        assert plan.limit_train is None or plan.limit_train >= plan.batch_size


def test_cli_trains_on_cifar_pickles_with_augmentation(tmp_path):
    import pickle

    rng = np.random.default_rng(SEED)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [*((f"data_batch_{i}", 16) for i in range(1, 6)), ("test_batch", 8)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    out = tmp_path / "run"
    args = [
        "--model",
        "mobilenetv2s",
        "--width",
        "0.25",
        "--norm",
        "bn",
        "--dataset",
        "cifar10",
        "--data-dir",
        str(tmp_path),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--no-progress",
        "--no-plot",
    ]
    assert main(args) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["settings"]["augment"] is True and result["data"]["n_train"] == 80
    assert result["data"]["steps_per_epoch"] == 5 and not (out / "curves.png").exists()


def test_study_with_two_jobs_runs_every_run_once(tmp_path, capsys):
    """--jobs 2: a worker process shares the plan through the run locks; every run finishes
    exactly once and the report covers them all."""
    argv = [
        "--variants", "torch-bn", "--limit-train", "64", "--limit-test", "64", "--epochs", "1",
        "--batch-size", "32", "--seeds", "0,1", "--resnet", "resnet8:4",
        "--mobilenet", "mobilenetv2s:0.25", "--jobs", "2",
        "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert S.main(argv) == 0
    results = sorted(p.relative_to(tmp_path) for p in (tmp_path / "runs").rglob("result.json"))
    assert len(results) == 4, results  # 2 models x 2 seeds
    report = json.loads((tmp_path / "out" / "accuracy_custom.json").read_text())
    assert report["runs_finished"] == 4
    out = capsys.readouterr().out
    assert "runs done here" in out
