"""LightNormConfig: presets, validation (errors name the field), the range constants C(m)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lightnorm.bfp import BFPFormat, SharedExpRule
from lightnorm.config import (
    PRESETS,
    GradMode,
    LightNormConfig,
    RangeConstant,
    Statistics,
    range_constant,
)
from lightnorm.formats import FloatFormat, Rounding


def test_required_presets_exist_and_differ_where_documented():
    for name in ("lightnorm", "fp32-bn", "range-fp32", "authors", "fp10-bn", "bfp-bn"):
        assert isinstance(LightNormConfig.from_preset(name), LightNormConfig)
    ln = LightNormConfig.from_preset("lightnorm")
    assert ln.compute_format == FloatFormat(5, 4)
    assert ln.statistics is Statistics.RANGE and ln.num_chunks == 8
    assert ln.bfp == BFPFormat(man_bits=5, group_size=16)
    fp32 = LightNormConfig.from_preset("fp32-bn")
    assert fp32.compute_format == fp32.stat_format == fp32.grad_format == FloatFormat(8, 23)
    assert fp32.statistics is Statistics.VARIANCE and fp32.bfp is None
    authors = LightNormConfig.from_preset("authors")
    assert authors.rounding is Rounding.RTZ
    assert authors.bfp is not None and authors.bfp.rule is SharedExpRule.SECOND_MAX
    assert authors.grad_format == FloatFormat(6, 3)


def test_versioned_presets():
    # "lightnorm" is contract v2 (docs/spec.md section 12); v1 is the dataclass's field defaults
    assert PRESETS["lightnorm"] == PRESETS["lightnorm-v2"]
    assert PRESETS["lightnorm-v1"] == LightNormConfig()
    v2 = PRESETS["lightnorm-v2"]
    assert v2.stat_format == FloatFormat(8, 7) and v2.grad_mode is GradMode.RANGE_EXACT
    assert v2.replace(stat_format="fp10_e5m4", grad_mode="bn") == PRESETS["lightnorm-v1"]


def test_presets_are_frozen_and_overrides_copy():
    cfg = LightNormConfig.from_preset("lightnorm", grad_mode="bn", rounding="rtz")
    assert cfg.grad_mode is GradMode.BN and cfg.rounding is Rounding.RTZ
    assert PRESETS["lightnorm"].grad_mode is GradMode.RANGE_EXACT
    assert PRESETS["lightnorm"].rounding is Rounding.RNE
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.num_chunks = 4  # type: ignore[misc]


def test_format_names_are_accepted():
    cfg = LightNormConfig(compute_format="fp12_e6m5", stat_format="bfloat16")
    assert cfg.compute_format == FloatFormat(6, 5)
    assert cfg.stat_format == FloatFormat(8, 7)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_chunks": 6}, "num_chunks"),
        ({"num_chunks": 128}, "num_chunks"),
        ({"num_chunks": 0}, "num_chunks"),
        ({"rounding": "nearest"}, "rounding"),
        ({"overflow": "wrap"}, "overflow"),
        ({"statistics": "std"}, "statistics"),
        ({"range_constant": "pi"}, "range_constant"),
        ({"grad_mode": "exact"}, "grad_mode"),
        ({"compute_format": 10}, "compute_format"),
        ({"stat_format": "fp10_e9m0"}, "exp_bits"),
        ({"bfp": "bfp_m5_g16"}, "bfp"),
        ({"statistics": "variance", "grad_mode": "range_exact"}, "grad_mode"),
    ],
)
def test_invalid_fields_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LightNormConfig(**kwargs)


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match="unknown preset 'fp8'.*lightnorm"):
        LightNormConfig.from_preset("fp8")


def test_min_count_is_two():
    # small layers (n < 2K) use fewer chunks (chunk_count), so every training pass needs n >= 2
    assert LightNormConfig().min_count() == 2
    assert LightNormConfig(statistics="variance").min_count() == 2


def _chunks_by_definition(n: int, k: int) -> int:
    """The largest power of two K_n <= K with chunk length n // K_n >= 2 (spec section 4)."""
    return max(c for c in (1 << i for i in range(7)) if c <= k and n // c >= 2)


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16, 64])
def test_chunk_count_rule(k):
    cfg = LightNormConfig(num_chunks=k)
    for n in (2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 127, 128, 129, 1000):
        kn = cfg.chunk_count(n)
        assert kn == _chunks_by_definition(n, k), (n, k)
        assert kn == min(k, 2 ** (math.floor(math.log2(n)) - 1)), (n, k)
        assert n // kn >= 2
    for n in range(2 * k, 2 * k + 300):  # n >= 2K: K itself, every existing layer unchanged
        assert cfg.chunk_count(n) == k
    expected = {2: 1, 3: 1, 4: 2, 5: 2, 7: 2, 8: 4, 15: 4, 16: 8, 17: 8}
    if k == 8:
        assert {n: cfg.chunk_count(n) for n in expected} == expected


def test_range_constants_formulas():
    m = 4096
    assert range_constant("lightnorm", m) == pytest.approx(
        1 / math.sqrt(2 * math.log(m)), rel=1e-15
    )
    assert range_constant("banner", m) * math.sqrt(2 * math.log(m)) == pytest.approx(
        0.5402, abs=1e-4
    )


@pytest.mark.parametrize(("m", "d2"), [(2, 2 / math.sqrt(math.pi)), (3, 3 / math.sqrt(math.pi))])
def test_gauss_constant_closed_forms(m, d2):
    """E[range] of 2 and 3 standard normals is 2/sqrt(pi) and 3/sqrt(pi) exactly."""
    assert 1 / range_constant(RangeConstant.GAUSS, m) == pytest.approx(d2, rel=1e-9)


@pytest.mark.parametrize(("m", "d2"), [(10, 3.078), (25, 3.931), (50, 4.498), (100, 5.015)])
def test_gauss_constant_matches_control_chart_tables(m, d2):
    """d2(m) as tabulated for control charts (3 decimals)."""
    assert 1 / range_constant("gauss", m) == pytest.approx(d2, abs=1.5e-3)


def test_gauss_constant_matches_monte_carlo():
    rng = np.random.default_rng(7)
    samples = rng.standard_normal((20000, 1000))
    mc = float(np.mean(samples.max(axis=1) - samples.min(axis=1)))
    assert 1 / range_constant("gauss", 1000) == pytest.approx(mc, rel=5e-3)


def test_range_constant_needs_two_values_per_chunk():
    with pytest.raises(ValueError, match="m"):
        range_constant("lightnorm", 1)
