# SPDX-License-Identifier: Apache-2.0
"""Tests of lightnorm.hw.traffic: hand-computed traffic of a tiny layer list for each scheme,
network shapes against architecture facts and torchvision's own definitions, BFP storage
against lightnorm.bfp, energy arithmetic, input validation, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lightnorm.bfp import BFPFormat, bfp_pack
from lightnorm.hw.traffic import (
    CONSTANTS,
    PHASES,
    BNLayer,
    Scheme,
    bn_energy,
    bn_layers,
    compare,
    main,
    make_scheme,
    tensor_bits,
    traffic,
)

FIXTURE = Path(__file__).parent / "data" / "torchvision_bn_shapes.json"

# Two layers: a = (2, 32, 2, 2): 256 values, 32 channels, 8 positions;
#             b = (1, 20, 1, 1): 20 values, 20 channels, 1 position.
TINY = [BNLayer("a", 2, 32, 2, 2), BNLayer("b", 1, 20, 1, 1)]
# FP32 tensor E = (256 + 20) * 32 bits = 8832 bits = 1104 B; per-channel vector P = 52 * 32 bits
# = 1664 bits = 208 B. BFP m5 g16 e8, one group = 16 * (1 + 5) + 8 = 104 bits:
# a: 8 positions * 2 groups * 104 = 1664 bits; b: 1 position * 2 groups (20 -> 32 lanes) * 104
# = 208 bits; E = 1872 bits = 234 B.
FP32_E, P, BFP_E = 1104, 208, 234


def test_conventional_by_hand() -> None:
    r = traffic(TINY, "conventional")
    pb = r.phase_bytes()
    assert pb["fwd_stats"] == {"read": FP32_E, "write": 0, "total": FP32_E}
    assert pb["fwd_norm"] == {"read": 1104, "write": 1104, "total": 2208}
    assert pb["fwd_channel"] == {"read": 4 * P, "write": 4 * P, "total": 8 * P}
    assert pb["bwd_sums"] == {"read": 2208, "write": 0, "total": 2208}
    assert pb["bwd_dx"] == {"read": 2208, "write": 1104, "total": 3312}
    assert pb["bwd_channel"] == {"read": 3 * P, "write": 2 * P, "total": 5 * P}
    # reads 6E + 7P = 6624 + 1456; writes 2E + 6P = 2208 + 1248
    assert r.bytes_read == 8080
    assert r.bytes_written == 3456
    assert r.total_bytes == 11536
    assert r.direction_bytes("fwd") == 1104 + 2208 + 1664
    assert r.direction_bytes("bwd") == 2208 + 3312 + 1040
    assert r.neighbour_bits == 4 * 8832
    assert r.values_processed == 276 * 4
    assert r.elements == 276


def test_conventional_two_pass_statistics_by_hand() -> None:
    r = traffic(TINY, "conventional", stat_passes=2)
    assert r.phase_bytes()["fwd_stats"]["read"] == 2208
    assert r.total_bytes == 11536 + 1104
    assert r.values_processed == 276 * 5


def test_fused_fp32_by_hand() -> None:
    r = traffic(TINY, "fused_fp32")
    assert r.phases["fwd_stats"].total_bits == 0
    assert r.bytes_read == 8080 - 1104
    assert r.bytes_written == 3456
    assert r.total_bytes == 10432
    assert r.values_processed == 276 * 4  # the statistics unit still sees every value


def test_lightnorm_by_hand() -> None:
    r = traffic(TINY, "lightnorm")
    pb = r.phase_bytes()
    assert pb["fwd_stats"]["total"] == 0
    assert pb["fwd_norm"] == {"read": BFP_E, "write": BFP_E, "total": 468}
    assert pb["bwd_sums"]["read"] == 468
    assert pb["bwd_dx"] == {"read": 468, "write": 234, "total": 702}
    # per-channel vectors stay FP32; the context adds X = 52 channels * 2K FP10 chunk
    # extremes = 52 * 160 bits = 1040 bytes, written in the forward, read in the backward
    x_ctx = 52 * 160 // 8
    assert pb["fwd_channel"]["total"] == 8 * P + x_ctx
    # reads 5E + 7P + X = 1170 + 1456 + 1040; writes 2E + 6P + X = 468 + 1248 + 1040
    assert r.bytes_read == 3666
    assert r.bytes_written == 2756
    assert r.total_bytes == 6422
    assert r.neighbour_bits == 4 * 1872


def test_lightnorm_group_size_is_a_parameter() -> None:
    # g = 8: group = 8 * 6 + 8 = 56 bits; a: 8 * 4 groups, b: 1 * 3 groups (20 -> 24 lanes)
    e_bits = 8 * 4 * 56 + 1 * 3 * 56
    r = traffic(TINY, "lightnorm", bfp=BFPFormat(5, 8))
    assert r.phases["fwd_norm"].read_bits == e_bits
    assert r.total_bits == 7 * e_bits + 13 * 52 * 32 + 2 * 52 * 160
    s = Scheme("custom", BFPFormat(4, 32), "fused")
    # g = 32: group = 32 * 5 + 8 = 168 bits; a: 8 * 1, b: 1 * 1 (20 -> 32 lanes)
    assert traffic(TINY, s).phases["bwd_dx"].write_bits == 9 * 168


@pytest.mark.parametrize(
    "fmt",
    [BFPFormat(5, 16), BFPFormat(5, 8), BFPFormat(5, 32), BFPFormat(4, 16, 6), BFPFormat(7, 64)],
)
def test_bfp_bits_match_lightnorm_bfp(fmt: BFPFormat) -> None:
    # g divides C: exactly bits_per_value per value (lightnorm.bfp's figure)
    layer = BNLayer("x", 2, 128, 3, 5)
    assert tensor_bits(layer, fmt) == layer.elements * fmt.bits_per_value
    # any C: the packed tensor's fields (padding lanes included) give the same count
    rng = np.random.default_rng(0)
    for c in (1, 20, 24, 144, 128):
        shape = (2, c, 3, 1)
        packed = bfp_pack(rng.standard_normal(shape), fmt, axis=1)
        stored = packed.exp_field.size * fmt.exp_bits + packed.mant.size * (1 + fmt.man_bits)
        assert tensor_bits(BNLayer("x", *shape), fmt) == stored


def test_default_bfp_is_6_5_bits() -> None:
    assert make_scheme("lightnorm").storage == BFPFormat()
    assert BFPFormat().bits_per_value == 6.5
    assert BFPFormat(5, 8).bits_per_value == 7.0
    assert BFPFormat(5, 32).bits_per_value == 6.25


def test_resnet18_architecture_facts() -> None:
    layers = bn_layers("resnet18", "imagenet")
    assert len(layers) == 20
    assert layers[0].shape == (32, 64, 112, 112)
    assert layers[-1].shape == (32, 512, 7, 7)
    assert sum(1 for layer in layers if "downsample" in layer.name) == 3
    cifar = bn_layers("resnet18", "cifar", batch=8)
    assert len(cifar) == 20
    assert cifar[0].shape == (8, 64, 16, 16)
    assert cifar[-1].shape == (8, 512, 1, 1)


def test_mobilenet_v2_architecture_facts() -> None:
    layers = bn_layers("mobilenet_v2", "imagenet")
    assert len(layers) == 52
    assert layers[0].shape == (32, 32, 112, 112)
    assert layers[-1].shape == (32, 1280, 7, 7)
    assert max(layer.c for layer in layers[:-1]) == 960  # 6 * 160 expansion
    assert bn_layers("mobilenet_v2", "cifar")[-1].shape == (32, 1280, 1, 1)


def test_tables_equal_torchvision_definitions() -> None:
    """Fixture recorded by forward hooks on torchvision 0.28.0's own model definitions."""
    shapes = json.loads(FIXTURE.read_text())["shapes"]
    assert set(shapes) == {
        "resnet18/cifar",
        "resnet18/imagenet",
        "mobilenet_v2/cifar",
        "mobilenet_v2/imagenet",
    }
    for key, rows in shapes.items():
        network, dataset = key.split("/")
        mine = [[layer.name, *layer.shape] for layer in bn_layers(network, dataset)]
        assert mine == rows, key


def test_tables_equal_live_torchvision() -> None:
    tv = pytest.importorskip("torchvision", reason="torchvision not importable here")
    from lightnorm.hw.traffic import bn_layers_from_module

    for fn, net in ((tv.models.resnet18, "resnet18"), (tv.models.mobilenet_v2, "mobilenet_v2")):
        for dataset, size, classes in (("cifar", 32, 10), ("imagenet", 224, 1000)):
            live = bn_layers_from_module(fn(num_classes=classes), (32, 3, size, size))
            assert live == bn_layers(net, dataset)


def test_project_nets_by_hooks() -> None:
    pytest.importorskip("torch")
    from torch import nn

    from lightnorm.study.nets import build_model

    for name in ("resnet20", "mobilenetv2"):
        layers = bn_layers(f"lightnorm.{name}", "cifar", batch=4)
        count = sum(isinstance(m, nn.BatchNorm2d) for m in build_model(name).modules())
        assert len(layers) == count
        assert layers[0].n == 4 and layers[0].h == 32
    assert bn_layers("lightnorm.resnet20", "cifar")[0].shape == (32, 16, 32, 32)


def test_energy_composition_by_hand() -> None:
    r = traffic(TINY, "conventional")  # 11536 B = 92288 bits, 1104 datapath values
    e = bn_energy(r, dram_pj_per_bit=20.0, sram_pj_per_bit=0.5, datapath_pj_per_value=3.0)
    assert e.dram_pj == 92288 * 20.0
    assert e.sram_pj == 92288 * 2 * 0.5
    assert e.datapath_pj == 1104 * 3.0
    assert e.total_pj == 1845760 + 92288 + 3312
    assert e.dram_share == pytest.approx(1845760 / 1941360)
    none = bn_energy(r, dram_pj_per_bit=20.0, sram_pj_per_bit=0.5)
    assert none.datapath_pj is None
    assert none.total_pj == 1845760 + 92288
    assert none.as_uj()["total"] == pytest.approx(1.938048)


def test_constants_are_cited() -> None:
    by_name = {c.name: c for c in CONSTANTS}
    assert by_name["dram_pj_per_bit_low"].value == 1300 / 64
    assert by_name["dram_pj_per_bit_high"].value == 2600 / 64
    assert by_name["sram_pj_per_bit_low"].value == 10 / 64
    for c in CONSTANTS:
        assert c.source and c.unit


def test_compare_structure_and_arithmetic() -> None:
    out = compare(
        {"lightnorm": 0.5, "conventional": None},
        networks=[("resnet18", "cifar")],
        dram_pj_per_bit=(10.0, 30.0),
    )
    e = out["networks"]["resnet18/cifar"]
    b = e["dram_bytes_per_iter"]
    assert set(b) == {"conventional", "fused_fp32", "lightnorm"}
    layers = bn_layers("resnet18", "cifar")
    assert b["lightnorm"] == traffic(layers, "lightnorm").total_bytes
    assert e["ratios"]["conventional_to_lightnorm"] == b["conventional"] / b["lightnorm"]
    assert e["ratios"]["fused_fp32_to_lightnorm"] == b["fused_fp32"] / b["lightnorm"]
    assert e["target_met"] == (e["ratios"]["conventional_to_lightnorm"] >= 6.0)
    assert b["conventional"] > b["fused_fp32"] > b["lightnorm"]
    for s in ("conventional", "fused_fp32", "lightnorm"):
        lo, hi = e["bn_energy_uj_per_iter"][s]["low"], e["bn_energy_uj_per_iter"][s]["high"]
        assert 0 < lo < hi
    ln = e["energy_breakdown_uj"]["lightnorm"]["low"]
    assert ln["dram"] == pytest.approx(b["lightnorm"] * 8 * 10.0 * 1e-6)
    assert ln["datapath"] == pytest.approx(e["values_processed"]["lightnorm"] * 0.5e-6)
    assert e["energy_breakdown_uj"]["conventional"]["low"]["datapath"] is None
    assert e["energy_breakdown_uj"]["fused_fp32"]["low"]["dram_share"] > 0.95


def test_sums_of_phases_and_directions() -> None:
    r = traffic(bn_layers("mobilenet_v2", "cifar"), "lightnorm")
    assert set(r.phases) == set(PHASES)
    assert r.total_bytes == r.direction_bytes("fwd") + r.direction_bytes("bwd")
    assert r.total_bytes == r.bytes_read + r.bytes_written


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: BNLayer("a", 1, 0, 1, 1), "BNLayer.c"),
        (lambda: BNLayer("a", 1, 2, 1.5, 1), "BNLayer.h"),  # type: ignore[arg-type]
        (lambda: Scheme("s", BFPFormat(), "fused", stat_passes=3), "Scheme.stat_passes"),
        (lambda: Scheme("s", BFPFormat(), "later"), "Scheme.stats"),  # type: ignore[arg-type]
        (lambda: Scheme("s", 32, "fused"), "Scheme.storage"),  # type: ignore[arg-type]
        (lambda: traffic(TINY, "welford"), "scheme"),
        (lambda: traffic([], "lightnorm"), "layers"),
        (lambda: bn_layers("vgg16", "cifar"), "network"),
        (lambda: bn_layers("resnet18", "mnist"), "dataset"),
        (lambda: bn_layers("resnet18", "cifar", batch=0), "batch"),
        (lambda: bn_layers("lightnorm.resnet20", "imagenet"), "dataset"),
        (
            lambda: bn_energy(
                traffic(TINY, "lightnorm"), dram_pj_per_bit=-1.0, sram_pj_per_bit=0.1
            ),
            "dram_pj_per_bit",
        ),
        (
            lambda: bn_energy(
                traffic(TINY, "lightnorm"),
                dram_pj_per_bit=1.0,
                sram_pj_per_bit=0.1,
                datapath_pj_per_value=float("nan"),
            ),
            "datapath_pj_per_value",
        ),
        (lambda: compare(dram_pj_per_bit=(40.0, 20.0)), "dram_pj_per_bit"),
        (lambda: compare(sram_pj_per_bit=(1.0,)), "sram_pj_per_bit"),
        (lambda: compare({"bfp": 1.0}), "datapath_pj_per_value"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        call()  # type: ignore[operator]


def test_cli_writes_both_files(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--datapath-pj", "lightnorm=0.5"]) == 0
    report = json.loads((tmp_path / "dram_traffic.json").read_text())
    nets = report["compare"]["networks"]
    assert set(nets) == {
        "resnet18/cifar",
        "resnet18/imagenet",
        "mobilenet_v2/cifar",
        "mobilenet_v2/imagenet",
    }
    for e in nets.values():
        assert set(e["bn_energy_uj_per_iter"]["lightnorm"]) == {"low", "high"}
    md = (tmp_path / "dram_traffic.md").read_text()
    assert "conventional : LightNorm" in md and "Horowitz" in md
