"""Block floating point: crafted groups per rule, invariants, pack/unpack, specials, errors.

Expected values are derived in the test from docs/spec.md section 5, not from the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from exact_ref import finite_values

from lightnorm.bfp import BFPFormat, SharedExpRule, bfp_pack, bfp_quantize, bfp_unpack
from lightnorm.formats import FloatFormat, quantize

SEED = 1125


def _group(values, **fmt):
    """A (1, g) tensor: one position, g channels (the grouped axis is 1)."""
    return bfp_quantize(np.array([values], dtype=np.float64), BFPFormat(**fmt), axis=1)[0]


def test_max_rule_on_a_crafted_group():
    # E = floor(log2 1.0) = 0; unit = 2^(0 - 5 + 1) = 1/16.
    got = _group([1.0, 0.3, -0.01, 0.0], man_bits=5, group_size=4)
    assert list(got) == [1.0, 5 / 16, -0.0, 0.0]  # 0.3*16 = 4.8 -> 5; 0.01*16 = 0.16 -> 0
    assert math.copysign(1, got[2]) == -1  # the sign of a flushed element is kept


def test_max_rule_carry_moves_the_shared_exponent():
    # 1.99 * 16 = 31.84: RNE gives 32 = 2^5, a carry: E becomes 1 (unit 1/8) and
    # 1.99 * 8 = 15.92 -> 16 -> 2.0, as an element format would round; 0.3 * 8 = 2.4 -> 2.
    assert list(_group([1.99, 0.3], man_bits=5, group_size=2)) == [2.0, 0.25]
    # RTZ never carries: 31/16, and 0.3 * 16 = 4.8 -> 4.
    got = bfp_quantize(np.array([[1.99, 0.3]]), BFPFormat(5, 2), rounding="rtz")[0]
    assert list(got) == [31 / 16, 4 / 16]


def test_max_rule_rounding_modes():
    # 0.34375 * 16 = 5.5: tie -> 6 (even) under RNE, 5 under RTZ.
    x = np.array([[1.0, 0.34375]])
    assert bfp_quantize(x, BFPFormat(5, 2), rounding="rne")[0, 1] == 6 / 16
    assert bfp_quantize(x, BFPFormat(5, 2), rounding="rtz")[0, 1] == 5 / 16


def test_second_max_rule_passes_the_largest_through():
    fmt = dict(man_bits=5, group_size=4, rule="second_max")
    # exponents 3, 1, 0, -7 -> E = 1, unit = 2^(1-4) = 1/8; 8.25 passes through unquantized.
    got = _group([8.25, 2.0, 1.0625, 0.005], **fmt)
    assert got[0] == 8.25
    assert got[1] == 2.0
    assert got[2] == 1.0  # 1.0625 * 8 = 8.5 -> 8 (tie to even)
    assert got[3] == 0.0  # needs < 0 bits


def test_second_max_with_a_single_nonzero_uses_its_exponent():
    got = _group([0.0, 3.0, 0.0, 0.0], man_bits=5, group_size=4, rule="second_max")
    assert list(got) == [0.0, 3.0, 0.0, 0.0]


def test_group_of_one_equals_the_element_format():
    """g = 1 with man_bits = M + 1 stores every finite value of FP(E, M) exactly and rounds
    like quantize for in-range inputs (the shared exponent is the element's exponent)."""
    fmt = FloatFormat(5, 4)
    vals = finite_values(5, 4)
    np.testing.assert_array_equal(bfp_quantize(vals[None, :], BFPFormat(5, 1), axis=0)[0], vals)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal(50_000) * np.exp2(rng.integers(-14, 15, 50_000))
    x = x[(np.abs(x) >= fmt.min_normal) & (np.abs(x) <= fmt.max_normal)]  # the normal range
    for rnd in ("rne", "rtz"):
        got = bfp_quantize(x[:, None], BFPFormat(5, 1), axis=1, rounding=rnd)[:, 0]
        exp = quantize(x, fmt, rnd, "saturate")
        np.testing.assert_array_equal(got, exp)


def test_pack_fields_and_round_trip():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((3, 40, 2, 2)) * np.exp2(rng.integers(-10, 10, (3, 40, 2, 2)))
    fmt = BFPFormat(6, 16)
    packed = bfp_pack(x, fmt)
    assert packed.mant.shape == (3, 2, 2, 3, 16)  # C = 40 -> 3 groups of 16 (8 padding lanes)
    assert packed.exp_field.max() < 255 and packed.mant.max() < 64
    assert np.all(packed.mant[..., 2, 8:] == 0)  # padding lanes are +0
    y = bfp_unpack(packed)
    assert y.shape == x.shape
    # Idempotent: stored values are stored exactly.
    np.testing.assert_array_equal(bfp_unpack(bfp_pack(y, fmt)), y)
    # Error bound: |x - y| <= half a unit of the shared exponent (RNE).
    g = np.moveaxis(x, 1, -1)
    gp = np.concatenate([g, np.zeros((*g.shape[:-1], 8))], axis=-1).reshape(3, 2, 2, 3, 16)
    gmax = np.max(np.abs(gp), axis=-1)
    e = np.floor(np.log2(gmax))
    e += np.rint(gmax / np.exp2(e - 5)) == 64  # the largest magnitude's carry moves E up
    unit = np.exp2(e - 5)
    err = np.abs(np.moveaxis(x - y, 1, -1))
    errp = np.concatenate([err, np.zeros((*err.shape[:-1], 8))], axis=-1).reshape(3, 2, 2, 3, 16)
    assert np.all(errp <= unit[..., None] / 2)


def test_zero_group_and_exponent_clamping():
    fmt = BFPFormat(5, 4)
    packed = bfp_pack(np.zeros((1, 4)), fmt)
    assert packed.exp_field[0, 0] == 0 and np.all(packed.mant == 0)
    # 2^200 is above the largest shared exponent (2^127): the magnitude saturates.
    got = bfp_quantize(np.array([[2.0**200, 1.0, 0.0, 0.0]]), fmt)[0]
    assert got[0] == 31 * 2.0 ** (127 - 4)
    # 2^-200 is below the smallest (2^-127): it rounds on the 2^(-127-4) grid, to 0.
    assert bfp_quantize(np.array([[2.0**-200, 0.0, 0.0, 0.0]]), fmt)[0, 0] == 0.0


def test_nonfinite_values_poison_their_group_only():
    x = np.array(
        [[1.0, np.inf, -2.0, 0.5, 1.0, 1.0, 1.0, 1.0], [1.0, np.nan, 1.0, 1.0, -np.inf, 1, 1, 1]]
    )
    packed = bfp_pack(x, BFPFormat(5, 4))
    assert packed.exp_field[0, 0] == 255 and packed.exp_field[0, 1] != 255
    y = bfp_unpack(packed)
    assert y[0, 1] == np.inf
    assert np.all(np.isnan(y[0, [0, 2, 3]]))
    np.testing.assert_array_equal(y[0, 4:], 1.0)
    assert np.all(np.isnan(y[1, :4])) and y[1, 4] == -np.inf and np.all(np.isnan(y[1, 5:]))


def test_storage_cost():
    assert BFPFormat(5, 16).bits_per_value == 6.5
    assert BFPFormat(5, 16).name == "bfp_m5_g16"
    assert BFPFormat(4, 32, 6, "second_max").name == "bfp_m4_g32_e6_second_max"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"man_bits": 1}, "man_bits"),
        ({"group_size": 12}, "group_size"),
        ({"group_size": 128}, "group_size"),
        ({"exp_bits": 3}, "exp_bits"),
        ({"rule": "min"}, "rule"),
        ({"man_bits": 4.0}, "man_bits"),
    ],
)
def test_invalid_format_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BFPFormat(**kwargs)


def test_second_max_cannot_be_packed():
    with pytest.raises(ValueError, match="rule"):
        bfp_pack(np.zeros((1, 4)), BFPFormat(5, 4, rule=SharedExpRule.SECOND_MAX))
