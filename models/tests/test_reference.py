"""The reference model (lightnorm.reference) against the spec and against float64 batch norm.

1. Bit for bit against spec_scalar (docs/spec.md re-implemented value by value with exact
   rationals) on small tensors, every preset and the grad/rounding/overflow variants.
2. Within documented tolerances against float64 batch norm ("fp32-bn", spec section 11).
3. Range-BN normalized-output std on Gaussian data in the band 1/(C(m)*d2(m)) predicts.
4. Every bad input raises ValueError naming the argument.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import spec_scalar

from lightnorm.config import LightNormConfig, RangeConstant, range_constant
from lightnorm.reference import (
    backward,
    chunk_bounds,
    forward_infer,
    forward_train,
    ideal_backward,
    ideal_forward,
    layer_constants,
)

SEED = 20261125


def _same(got, exp, what):
    got = np.asarray(got, dtype=np.float64).ravel()
    exp = np.asarray(exp, dtype=np.float64).ravel()
    assert got.shape == exp.shape, what
    same = (got == exp) & (np.signbit(got) == np.signbit(exp)) | (np.isnan(got) & np.isnan(exp))
    if not np.all(same):
        i = int(np.argmin(same))
        raise AssertionError(
            f"{what}: first mismatch at flat index {i}: got {got[i]!r}, expected {exp[i]!r}"
        )


VARIANTS = [
    ("lightnorm", {}),
    ("lightnorm", {"grad_mode": "range_exact"}),
    ("lightnorm", {"rounding": "rtz", "overflow": "saturate"}),
    ("lightnorm", {"range_constant": "banner", "num_chunks": 4}),
    ("fp32-bn", {}),
    ("range-fp32", {"grad_mode": "range_exact"}),
    ("fp10-bn", {}),
    ("bfp-bn", {}),
    ("authors", {}),
    ("fp32-bn-seq", {}),
    ("fp32-bn-seq", {"rounding": "rtz"}),
    ("fp10-bn", {"accumulation": "sequential", "stat_format": "fp16_e8m7"}),
    (
        "lightnorm",
        {"compute_format": "fp12_e6m5", "grad_format": "fp12_e6m5", "stat_format": "fp12_e5m6"},
    ),
]


@pytest.mark.parametrize(("preset", "overrides"), VARIANTS, ids=[f"{p}{o}" for p, o in VARIANTS])
def test_matches_exact_scalar_spec(preset, overrides):
    cfg = LightNormConfig.from_preset(preset, **overrides)
    rng = np.random.default_rng(SEED)
    shape = (2, 5, 3, 3)  # C=5: not a multiple of the BFP group; n=18: not a multiple of K
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    # Near or beyond the fp10 maximum (Inf or saturation would poison the exact oracle, which
    # handles finite values only; variance presets square it, so keep it smaller there).
    finite_only = cfg.overflow.value == "inf" and cfg.rounding.value == "rne"
    x[0, 1, 0, 0] = (6.0e4 if finite_only else 7.0e4) if cfg.statistics.value == "range" else 200.0
    x[1, 2] = 2.5  # all-equal values in one channel of one sample
    x[0, 3, 1, 1] = 3e-6  # fp10 subnormal range
    dy = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 5)
    beta = rng.uniform(-0.5, 0.5, 5)
    rm, rv = rng.standard_normal(5), rng.uniform(0.5, 2, 5)

    fwd = forward_train(x, gamma, beta, cfg, rm, rv, eps=1e-3, momentum=0.2)
    xc, chans, y = spec_scalar.forward(x, gamma, beta, rm, rv, cfg, eps=1e-3, momentum=0.2)
    _same(fwd.x_c, xc, "F1 x_c")
    _same(fwd.sum_x, [c.sum_x for c in chans], "F2 sum_x")
    _same(fwd.mean, [c.mean for c in chans], "F2 mean")
    if fwd.chunk_max is not None:
        _same(fwd.chunk_max, [c.chunk_max for c in chans], "F2 chunk_max")
        _same(fwd.chunk_min, [c.chunk_min for c in chans], "F2 chunk_min")
        _same(fwd.chunk_argmax, [c.argmax for c in chans], "F2 chunk_argmax")
        _same(fwd.chunk_argmin, [c.argmin for c in chans], "F2 chunk_argmin")
        _same(fwd.range_mean, [c.range_mean for c in chans], "F2 range_mean")
        _same(fwd.sigma, [c.sigma for c in chans], "F2 sigma")
    else:
        _same(fwd.var, [c.var for c in chans], "F2 var")
    _same(fwd.scale, [c.scale for c in chans], "F2 scale")
    _same(fwd.coeff, [c.coeff for c in chans], "F3 coeff")
    _same(fwd.y, y, "F5 y")
    _same(fwd.running_mean, [c.running_mean for c in chans], "F6 running_mean")
    _same(fwd.running_var, [c.running_var for c in chans], "F6 running_var")

    bwd = backward(dy, fwd, cfg)
    dyc, grads, dx = spec_scalar.backward(fwd.x_c, dy, chans, cfg)
    _same(bwd.dy_c, dyc, "B1 dy_c")
    _same(bwd.d_gamma, [g[0] for g in grads], "B2 d_gamma")
    _same(bwd.d_beta, [g[1] for g in grads], "B2 d_beta")
    _same(bwd.k_beta, [g[2] for g in grads], "B3 k_beta")
    _same(bwd.k_gamma, [g[3] for g in grads], "B3 k_gamma")
    if bwd.correction is not None:
        _same(bwd.correction, [g[4] for g in grads], "B3 correction")
    _same(bwd.dx, dx, "B5 dx")


def test_chunk_bounds_cover_stream_in_order():
    assert chunk_bounds(18, 8) == [
        (0, 2),
        (2, 4),
        (4, 6),
        (6, 8),
        (8, 10),
        (10, 12),
        (12, 14),
        (14, 18),
    ]
    for n in (16, 17, 100, 1000):
        b = chunk_bounds(n, 8)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(b[i][1] == b[i + 1][0] for i in range(7))


def test_fp32_bn_matches_float64_batch_norm():
    """Tolerance 1e-4 absolute on unit-scale data: ~6 FP32 roundings per element (spec 11)."""
    rng = np.random.default_rng(SEED)
    x = (rng.standard_normal((8, 6, 5, 5)) * 2 + 3).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 6), rng.uniform(-1, 1, 6)
    cfg = LightNormConfig.from_preset("fp32-bn")
    rm, rv = np.zeros(6), np.ones(6)
    fwd = forward_train(x, gamma, beta, cfg, rm, rv, momentum=0.1)
    y64, mean64, var64 = ideal_forward(x, gamma, beta)
    np.testing.assert_allclose(fwd.y, y64, atol=1e-4)
    np.testing.assert_allclose(fwd.mean, mean64, rtol=1e-6)
    np.testing.assert_allclose(fwd.var, var64, rtol=1e-5)
    n = x.size // 6
    np.testing.assert_allclose(fwd.running_mean, 0.1 * mean64, rtol=1e-6)
    np.testing.assert_allclose(fwd.running_var, 0.9 + 0.1 * var64 * n / (n - 1), rtol=1e-6)
    bwd = backward(dy, fwd, cfg)
    dx64, dg64, db64 = ideal_backward(x, dy, gamma)
    np.testing.assert_allclose(bwd.dx, dx64, atol=1e-4)
    np.testing.assert_allclose(bwd.d_gamma, dg64, atol=1e-3)
    np.testing.assert_allclose(bwd.d_beta, db64, atol=1e-3)
    # Inference with the batch statistics as running statistics equals training (biased var).
    inf = forward_infer(x, gamma, beta, fwd.mean, fwd.var, cfg)
    np.testing.assert_allclose(inf.y, y64, atol=1e-4)


@pytest.mark.parametrize("kind", list(RangeConstant))
def test_range_bn_output_std_in_predicted_band(kind):
    """std(x_hat) on Gaussian data ~= 1 / (C(m) * d2(m)); chunk ranges of m = 2048 values."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((16, 4, 32, 32)).astype(np.float32) * 3 - 1
    cfg = LightNormConfig.from_preset("range-fp32", range_constant=kind)
    fwd = forward_train(x, np.ones(4), np.zeros(4), cfg)
    m = layer_constants(16 * 32 * 32, cfg).chunk_len
    predicted = 1.0 / (range_constant(kind, m) * (1.0 / range_constant("gauss", m)))
    std = fwd.y.reshape(16, 4, -1).transpose(1, 0, 2).reshape(4, -1).std(axis=1)
    # Band: the range of K = 8 chunks estimates d2 * sigma with ~3 % relative spread.
    np.testing.assert_allclose(std, predicted, rtol=0.06)
    if kind == "lightnorm":
        assert 0.5 < predicted < 0.62


def test_range_exact_gradient_matches_float64_derivative():
    """range-fp32 with grad_mode=range_exact vs the analytic float64 range-BN gradient."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((4, 3, 4, 4))
    dy = rng.standard_normal(x.shape)
    gamma = rng.uniform(0.5, 2, 3)
    cfg = LightNormConfig.from_preset("range-fp32", grad_mode="range_exact")
    fwd = forward_train(x.astype(np.float32), gamma, np.zeros(3), cfg, eps=1e-5)
    bwd = backward(dy.astype(np.float32), fwd, cfg)

    def loss(xv):
        n = xv.size // 3
        xs = np.moveaxis(xv, 1, 0).reshape(3, n)
        m = n // 8
        c = range_constant("lightnorm", m)
        ch = xs.reshape(3, 8, m)
        sigma = c * (ch.max(-1).mean(-1) - ch.min(-1).mean(-1))
        y = (xs - xs.mean(-1, keepdims=True)) / (sigma[:, None] + 1e-5) * gamma[:, None]
        return float(np.sum(np.moveaxis(dy, 1, 0).reshape(3, n) * y))

    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (loss(xp) - loss(xm)) / (2 * h)
    np.testing.assert_allclose(bwd.dx, num, atol=2e-3, rtol=1e-3)


def test_nonfinite_input_poisons_only_its_channel():
    cfg = LightNormConfig.from_preset("lightnorm", bfp=None)
    x = np.random.default_rng(SEED).standard_normal((2, 3, 4, 4)).astype(np.float32)
    x[0, 1, 2, 2] = np.nan
    fwd = forward_train(x, np.ones(3), np.zeros(3), cfg)
    assert np.all(np.isnan(fwd.y[:, 1]))
    assert np.all(np.isfinite(fwd.y[:, [0, 2]]))


def test_inference_uses_running_statistics():
    cfg = LightNormConfig.from_preset("lightnorm")
    x = np.full((2, 2, 4, 4), 3.0, dtype=np.float32)
    res = forward_infer(
        x,
        np.array([1.0, 2.0]),
        np.array([0.0, 0.5]),
        np.array([1.0, 3.0]),
        np.array([4.0, 1.0]),
        cfg,
        eps=0.0,
    )
    # channel 0: (3 - 1) / sqrt(4) = 1; channel 1: (3 - 3) * 2 + 0.5 = 0.5 (all exact in fp10)
    assert np.all(res.y[:, 0] == 1.0)
    assert np.all(res.y[:, 1] == 0.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda c: forward_train(np.zeros(5, np.float32), np.ones(1), np.zeros(1), c),
            "x must have rank",
        ),
        (
            lambda c: forward_train(np.zeros((2, 3, 8), np.int32), np.ones(3), np.zeros(3), c),
            "x must be a floating",
        ),
        (
            lambda c: forward_train(np.zeros((4, 3, 8), np.float32), np.ones(2), np.zeros(3), c),
            "gamma must have shape",
        ),
        (
            lambda c: forward_train(np.zeros((1, 3, 1), np.float32), np.ones(3), np.zeros(3), c),
            "n .* must be >= 2.*got n = 1",
        ),
        (
            lambda c: forward_train(
                np.zeros((4, 3, 8), np.float32), [1, np.inf, 1], np.zeros(3), c
            ),
            "gamma must be finite",
        ),
        (
            lambda c: forward_train(
                np.zeros((4, 3, 8), np.float32), np.ones(3), np.zeros(3), c, eps=-1
            ),
            "eps must be",
        ),
        (
            lambda c: forward_train(
                np.zeros((4, 3, 8), np.float32), np.ones(3), np.zeros(3), c, np.zeros(2), np.ones(3)
            ),
            "running_mean must have shape",
        ),
        (
            lambda c: backward(
                np.zeros((4, 3, 4), np.float32),
                forward_train(np.zeros((4, 3, 8), np.float32), np.ones(3), np.zeros(3), c),
                c,
            ),
            "dy has shape",
        ),
        (
            lambda c: forward_infer(
                np.zeros((4, 3, 8), np.float32),
                np.ones(3),
                np.zeros(3),
                np.zeros(3),
                -np.ones(3),
                c,
            ),
            "running_var must be >= 0",
        ),
    ],
)
def test_bad_input_raises_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(LightNormConfig.from_preset("lightnorm"))


def test_layer_constants_are_values_of_stat_format():
    cfg = LightNormConfig.from_preset("lightnorm-v1")  # per-channel scalars in E5M4
    k = layer_constants(1000, cfg)
    assert k.chunk_len == 125
    assert k.inv_count == 2.0**-10  # 1/1000 = 0.001 rounds to 1.0 * 2^-10 in E5M4 (0.000977)
    # 1/sqrt(2 ln 125) = 0.32180 = 1.2872 * 2^-2 -> significand 20.6/16 -> 21/16 * 2^-2
    assert k.range_const == math.ldexp(21, -6)
    # 1e-5 is below 2^-14 (subnormal); grid 2^-18: 1e-5 / 2^-18 = 2.62 -> 3
    assert k.eps == math.ldexp(3, -18)
    # contract v2 ("lightnorm"): E8M7 scalars, 8 fraction bits of significand, no subnormals here
    k2 = layer_constants(1000, LightNormConfig.from_preset("lightnorm"))
    # 1/1000 = 1.024 * 2^-10: significand 1.024 * 128 = 131.07 -> 131/128
    assert k2.inv_count == math.ldexp(131, -17)
    # 0.32180 = 1.2872 * 2^-2: 1.2872 * 128 = 164.76 -> 165/128
    assert k2.range_const == math.ldexp(165, -9)
    # 1e-5 = 1.31072 * 2^-17: 1.31072 * 128 = 167.77 -> 168/128
    assert k2.eps == math.ldexp(168, -24)


# ---- small layers (n < 2K): K_n chunks, spec section 4 ---------------------------------------


def _kn_by_definition(n: int, k: int) -> int:
    """The largest power of two K_n <= K with chunk length n // K_n >= 2."""
    return max(c for c in (1 << i for i in range(7)) if c <= k and n // c >= 2)


SMALL_COUNTS = [2, 3, 4, 5, 7, 8, 15, 16, 17]
SMALL_VARIANTS = [
    ("lightnorm", {}),
    ("lightnorm", {"grad_mode": "range_exact"}),
    ("lightnorm", {"range_constant": "gauss", "num_chunks": 4}),
    ("lightnorm", {"num_chunks": 64, "grad_mode": "range_exact", "rounding": "rtz"}),
    ("lightnorm-v2", {}),
    ("range-fp32", {"grad_mode": "range_exact", "num_chunks": 2}),
]


@pytest.mark.parametrize("n", SMALL_COUNTS)
@pytest.mark.parametrize(
    ("preset", "overrides"), SMALL_VARIANTS, ids=[f"{p}{o}" for p, o in SMALL_VARIANTS]
)
def test_small_layers_match_exact_scalar_spec(n, preset, overrides):
    cfg = LightNormConfig.from_preset(preset, **overrides)
    rng = np.random.default_rng(SEED + n)
    shape = (n, 3, 1) if n % 2 else (n // 2, 3, 2)  # a (N, C) layer, or N * L = n
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    dy = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.uniform(-0.5, 0.5, 3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    fwd = forward_train(x, gamma, beta, cfg, rm, rv, eps=1e-3, momentum=0.2)
    kn = _kn_by_definition(n, cfg.num_chunks)
    assert fwd.constants.num_chunks == kn and fwd.constants.chunk_len == n // kn
    assert fwd.chunk_max is not None and fwd.chunk_max.shape == (3, kn)
    xc, chans, y = spec_scalar.forward(x, gamma, beta, rm, rv, cfg, eps=1e-3, momentum=0.2)
    _same(fwd.chunk_max, [c.chunk_max for c in chans], "F2 chunk_max")
    _same(fwd.chunk_min, [c.chunk_min for c in chans], "F2 chunk_min")
    _same(fwd.chunk_argmax, [c.argmax for c in chans], "F2 chunk_argmax")
    _same(fwd.chunk_argmin, [c.argmin for c in chans], "F2 chunk_argmin")
    _same(fwd.range_mean, [c.range_mean for c in chans], "F2 range_mean")
    _same(fwd.sigma, [c.sigma for c in chans], "F2 sigma")
    _same(fwd.scale, [c.scale for c in chans], "F2 scale")
    _same(fwd.coeff, [c.coeff for c in chans], "F3 coeff")
    _same(fwd.y, y, "F5 y")
    _same(fwd.running_mean, [c.running_mean for c in chans], "F6 running_mean")
    _same(fwd.running_var, [c.running_var for c in chans], "F6 running_var")
    bwd = backward(dy, fwd, cfg)
    dyc, grads, dx = spec_scalar.backward(fwd.x_c, dy, chans, cfg)
    _same(bwd.d_gamma, [g[0] for g in grads], "B2 d_gamma")
    _same(bwd.d_beta, [g[1] for g in grads], "B2 d_beta")
    if bwd.correction is not None:
        _same(bwd.correction, [g[4] for g in grads], "B3 correction")
    _same(bwd.dx, dx, "B5 dx")


@pytest.mark.parametrize("n", SMALL_COUNTS + [31, 33, 100])
@pytest.mark.parametrize("k", [1, 2, 8, 16])
def test_small_layer_range_statistics_by_hand_float64(n, k):
    """FP32 everywhere, small-integer inputs: every sum below is exact in float64, so r, sigma,
    the constants and range_exact's correction equal the definition computed here exactly."""
    cfg = LightNormConfig.from_preset("range-fp32", num_chunks=k, grad_mode="range_exact")
    rng = np.random.default_rng(n * 131 + k)
    x = rng.integers(-40, 41, (n, 2)).astype(np.float32)  # (N, C): stream = x[:, c]
    dy = rng.integers(-8, 9, (n, 2)).astype(np.float32) / 8
    fwd = forward_train(x, np.ones(2), np.zeros(2), cfg, eps=0.0)
    kn = min(k, 2 ** (n.bit_length() - 2))  # the rule, as written in spec section 4
    assert kn == _kn_by_definition(n, k)
    m = n // kn
    bounds = [(j * m, (j + 1) * m if j < kn - 1 else n) for j in range(kn)]
    if n >= 2 * k:
        assert kn == k  # unchanged for n >= 2K
    c_m = range_constant("lightnorm", m)
    kc = fwd.constants
    assert (kc.num_chunks, kc.chunk_len) == (kn, m)
    assert kc.range_const == float(np.float32(c_m))
    assert kc.range_const_per_chunk == float(np.float32(c_m / kn))
    for c in range(2):
        s = x[:, c].astype(np.float64)
        hi = [s[a:b].max() for a, b in bounds]
        lo = [s[a:b].min() for a, b in bounds]
        assert list(fwd.chunk_max[c]) == hi and list(fwd.chunk_min[c]) == lo
        assert list(fwd.chunk_argmax[c]) == [a + int(np.argmax(s[a:b])) for a, b in bounds]
        assert list(fwd.chunk_argmin[c]) == [a + int(np.argmin(s[a:b])) for a, b in bounds]
        r = float(np.float32((sum(hi) - sum(lo)) / kn))  # exact quotient (kn a power of two)
        assert fwd.range_mean[c] == r
        assert fwd.sigma[c] == float(np.float32(r * kc.range_const))
    bwd = backward(dy, fwd, cfg)
    corr = np.float32(np.float32(fwd.coeff * bwd.d_gamma) * np.float64(kc.range_const_per_chunk))
    _same(bwd.correction, corr, "B3 correction")


@pytest.mark.parametrize("preset", ["lightnorm", "fp32-bn", "lightnorm-v2"])
def test_single_value_per_channel_raises_naming_n(preset):
    cfg = LightNormConfig.from_preset(preset)
    with pytest.raises(ValueError, match="n = 1"):
        forward_train(np.ones((1, 4), np.float32), np.ones(4), np.zeros(4), cfg)
    with pytest.raises(ValueError, match="n = 1"):
        layer_constants(1, cfg)
    # inference takes any n >= 1
    inf = forward_infer(
        np.ones((1, 4), np.float32), np.ones(4), np.zeros(4), np.zeros(4), np.ones(4), cfg
    )
    assert inf.y.shape == (1, 4)


def test_layers_from_2k_up_keep_k_chunks():
    for k in (1, 2, 4, 8, 16, 64):
        cfg = LightNormConfig(num_chunks=k)
        for n in (2 * k, 2 * k + 1, 3 * k - 1, 4 * k, 1000 * k + 7):
            lc = layer_constants(n, cfg)
            assert (lc.num_chunks, lc.chunk_len) == (k, n // k)


def test_sequential_sums_are_float32_additions_in_stream_order():
    """accumulation 'sequential' in binary32 / RNE: the model's general path (one rounded
    addition at a time, saturating) equals numpy's float32 add.accumulate (IEEE, sequential)
    where that stays finite, and the model's own fast path equals its general path everywhere
    (overflow to saturation, NaN, Inf, -0 included)."""
    from lightnorm.formats import FloatFormat, Rounding
    from lightnorm.reference import _SequentialSums

    rng = np.random.default_rng(SEED)
    vs = (rng.standard_normal((12, 300)) * 10.0 ** rng.uniform(-30, 30, (12, 1))).astype(np.float32)
    vs[0] = np.float32(3.0e38)  # overflows: saturates at max_normal
    vs[1, 7] = np.nan
    vs[2, 5] = np.inf
    vs[3, 9], vs[3, 11] = np.inf, -np.inf
    vs[4] = -0.0  # a sum of -0 stays -0
    vs[5, :] = rng.standard_normal(300).astype(np.float32) * np.float32(1e-42)  # subnormals
    fp32 = FloatFormat(8, 23)
    general = _SequentialSums.sequential(vs.astype(np.float64), fp32, Rounding.RNE)
    cfg = LightNormConfig.from_preset("fp32-bn-seq")
    fast = _SequentialSums(vs.T[:, :, None], cfg).total  # (N = 300, C = 12, 1)
    _same(fast, general, "fast path vs general path")
    with np.errstate(all="ignore"):
        ref = np.add.accumulate(vs, axis=1)[:, -1].astype(np.float64)
    finite = np.isfinite(ref)
    _same(general[finite], ref[finite], "general path vs numpy float32")
    # per-channel results saturate (spec section 2): an overflow, and an Inf operand, give
    # +-max_normal where float32 gives +-Inf (so +Inf then -Inf ends at -max_normal, not NaN
    # as in float32 or the exact accumulators' flags); a NaN stays
    assert general[0] == fp32.max_normal and general[2] == fp32.max_normal
    assert general[3] == -fp32.max_normal and np.isnan(general[1])
    assert general[4] == 0.0 and np.signbit(general[4])


def test_sequential_accumulation_needs_a_stat_format_holding_the_elements():
    with pytest.raises(ValueError, match="accumulation"):
        LightNormConfig.from_preset(
            "lightnorm-v1", accumulation="sequential", stat_format="fp8_e4m3"
        )
