"""lightnorm.torch: the torch modules against the numpy reference model and nn.BatchNorm.

1. Building blocks bit for bit against the model: quantize (every format, both roundings and
   overflow policies, edge-value tables), BFP (both rules, padding, NaN/Inf groups), recip /
   rsqrt (every positive value of small formats, random fp32), add/sub of mixed wide formats
   (near-tie cases), the rounded exact accumulator.
   The per-channel primitives also with the native kernels (``_NativePrims``), and the native
   row rounding (Veltkamp fast path + fallbacks) on float32 bit patterns of every kind.
2. LightNorm1d/2d == lightnorm.reference bit for bit (output, input gradient, weight/bias
   gradients, running statistics, eval output) in every preset and variant, on shapes that are
   / are not multiples of K and of the BFP group, on the native and the eager path; native
   float16/bfloat16 inputs; the default path ("auto" = native) at a larger size (several
   blocks per row), and the torch.compile path for "lightnorm" (both grad modes).
   LIGHTNORM_SLOW_TESTS=1 adds the compiled path for every preset.
3. "fp32-bn" against nn.BatchNorm2d / 1d within FP32 rounding (tolerances below).
4. gradcheck (float64) of range batch norm, and the spec's range_exact formula against autograd.
5. The nn.BatchNorm contract: signature, state_dict both ways, momentum=None, train/eval,
   track_running_stats=False, convert/revert with a filter, errors naming the field.

Seeds are fixed (SEED); no timing assertions (speed: python -m lightnorm.torch.bench).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from lightnorm import arith
from lightnorm import reference as ref
from lightnorm.bfp import BFPFormat, SharedExpRule, bfp_quantize
from lightnorm.config import PRESETS, LightNormConfig
from lightnorm.formats import FORMATS, FloatFormat, decode
from lightnorm.formats import quantize as np_quantize
from lightnorm.torch import (
    LightNorm1d,
    LightNorm2d,
    _native,
    convert_batchnorm,
    quantize,
    revert_batchnorm,
)
from lightnorm.torch import bfp_quantize as t_bfp_quantize
from lightnorm.torch.channel import _Acc, _recip, _round_acc, _rsqrt
from lightnorm.torch.native import _native_store
from lightnorm.torch.ops import _add, _Fmt, _NativePrims, _sub
from lightnorm.torch.passes import _Layout, _PStore

SEED = 20261126
print(f"[test_torch] SEED={SEED}")
SLOW = os.environ.get("LIGHTNORM_SLOW_TESTS") == "1"
MODES = [(r, o) for r in ("rne", "rtz") for o in ("inf", "saturate")]


def rng_for(tag: int) -> np.random.Generator:
    return np.random.default_rng([SEED, tag])


def assert_bits(got, exp, what: str) -> None:
    """Equal values, equal signs of zero, NaN where NaN (any payload)."""
    g = np.asarray(torch.as_tensor(got).detach().to(torch.float64).cpu(), dtype=np.float64).ravel()
    e = np.asarray(exp, dtype=np.float64).ravel()
    assert g.shape == e.shape, f"{what}: shape {g.shape} != {e.shape}"
    same = ((g == e) & (np.signbit(g) == np.signbit(e))) | (np.isnan(g) & np.isnan(e))
    if not np.all(same):
        i = int(np.argmin(same))
        raise AssertionError(
            f"{what}: {int((~same).sum())} mismatches, first at flat index {i}: "
            f"got {g[i]!r}, expected {e[i]!r}"
        )


def edge_values(fmt: FloatFormat) -> np.ndarray:
    """Zeros, subnormals, normals, max, ties and their neighbours, overflow thresholds, specials."""
    m, emin, emax = fmt.man_bits, fmt.emin, fmt.emax
    ulp_min = 2.0 ** (emin - m)
    base = [
        0.0,
        ulp_min,
        ulp_min / 2,
        ulp_min * 1.5,
        ulp_min * 0.75,
        ulp_min * 0.25,
        2.0**emin,
        2.0**emin - ulp_min,
        2.0**emin - ulp_min / 2,
        fmt.max_normal,
        fmt.max_normal + 2.0 ** (emax - m - 1),
        fmt.max_normal + 2.0 ** (emax - m - 2),
        2.0 ** (emax + 1),
        2.0 ** (emax + 3),
        1.0,
        1.0 + 2.0**-m,
        1.0 + 2.0 ** (-m - 1),
        1.0 + 3 * 2.0 ** (-m - 1),
        1.0 + 2.0 ** (-m - 2),
        3.0 - 2.0 ** (-m),
        math.pi,
        1e-30,
        1e30,
        math.inf,
        math.nan,
    ]
    vals = np.array(base, dtype=np.float64)
    vals = np.concatenate([vals, np.nextafter(vals, np.inf), np.nextafter(vals, -np.inf)])
    return np.concatenate([vals, -vals])


# ------------------------------------------------------------------------------------------
# 1. Building blocks
# ------------------------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["torch-ops", "native-prims"])
def prims(request):
    """Run the test body with the per-channel primitives as torch ops, then natively."""
    with _NativePrims(request.param):
        yield request.param


def test_native_kernels_build_here():
    """The native kernels build and load on this machine (the default backend needs them; a
    machine without a C++ compiler falls back to torch ops, which this test reports)."""
    assert _native.load() is not None, _native.error()
    assert _native.library_path() is not None


def test_bench_environment_records_the_machine_and_library():
    """The benchmark's record names the loaded library (not "unavailable"), what it was built
    for, and the CPU's vector instruction sets, threads and OpenMP settings."""
    from lightnorm.torch import bench

    env = bench.environment()
    assert env["native_library"] == _native.library_path()
    assert os.path.exists(env["native_library"])
    assert env["native_isa"].startswith("vector_bytes=")
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for key in ("cpu", "cpu_vector_flags", "torch_num_threads", "omp_env", "cpus_usable"):
        assert key in env
    md = bench.to_markdown(
        env,
        {
            "what": "w",
            "shape": [1],
            "repeats": 1,
            "backend": "auto",
            "backend_resolved": "native",
            "first_call_s": {},
            "results": {},
            "load_average_start": [0, 0, 0],
            "load_average_end": [0, 0, 0],
        },
    )
    assert f"native_library: {env['native_library']}" in md and "native_isa: vector_bytes=" in md


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_quantize_matches_model(name, rounding, overflow, prims):
    fmt = FORMATS[name]
    rng = rng_for(1)
    rand = rng.standard_normal(4000) * np.exp2(rng.integers(-160, 140, 4000))
    with np.errstate(over="ignore"):
        x = np.concatenate([edge_values(fmt), rand, rand.astype(np.float32).astype(np.float64)])
    exp = np_quantize(x, fmt, rounding, overflow)
    assert_bits(quantize(torch.from_numpy(x), fmt, rounding, overflow), exp, f"{name} float64")
    x32 = x.astype(np.float32)
    got32 = quantize(torch.from_numpy(x32), fmt, rounding, overflow)
    assert got32.dtype == torch.float32
    assert_bits(got32, np_quantize(x32, fmt, rounding, overflow), f"{name} float32")


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize("name", ["fp10_e5m4", "fp8_e5m2", "fp16_e5m10", "fp10_e6m3"])
def test_native_row_rounding_matches_model(name, rounding, overflow):
    """The native store pass (quantize only) on float32 inputs of every kind: each top-16-bit
    pattern (all exponents, signs, NaN/Inf) with random low bits, random patterns, and every
    value / midpoint of the format with its float32 neighbours; rows of 512 mix f-normal,
    f-subnormal and overflowing values (vector lanes of every kind side by side)."""
    check_native_row_rounding(name, rounding, overflow)


def check_native_row_rounding(name, rounding, overflow):
    fmt = FORMATS[name]
    rng = rng_for(12)
    top = np.arange(1 << 16, dtype=np.uint32) << 16
    patterns = np.concatenate(
        [
            top | rng.integers(0, 1 << 16, 1 << 16, dtype=np.uint32),
            rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint32),
        ]
    )
    vals = np.concatenate([_all_finite_positive(fmt), [0.0]])
    mids = (vals[1:] + vals[:-1]) / 2
    near = np.concatenate([vals, mids]).astype(np.float32)
    near = np.concatenate(
        [near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(0))]
    )
    x = np.concatenate([patterns.view(np.float32), near, -near])
    x = np.concatenate([x, np.zeros((-x.size) % 512, np.float32)])
    x = rng.permutation(x)
    f = _tf(fmt, rounding, overflow)
    got = _native_store(
        torch.from_numpy(x).reshape(1, 1, -1), p=_PStore(f, None, _Layout(1), None, False)
    )[0]
    exp = np_quantize(x.astype(np.float64), fmt, rounding, overflow)
    assert_bits(got.reshape(-1).to(torch.float64), exp, f"native quantize {name}")


BFPS = [
    BFPFormat(),
    BFPFormat(man_bits=5, group_size=32, rule=SharedExpRule.SECOND_MAX),
    BFPFormat(man_bits=4, group_size=1),
    BFPFormat(man_bits=3, group_size=1, rule=SharedExpRule.SECOND_MAX),
    BFPFormat(man_bits=8, group_size=4, exp_bits=5),
]
BFPS_NATIVE = [*BFPS, BFPFormat(man_bits=5, group_size=16, exp_bits=6)]


def _stored_ref(x, fmt, bfp, rounding, overflow):
    """stored(x, fmt) of spec section 5 (groups of channels, axis 1) with the model's functions."""
    q = np_quantize(np.asarray(x, dtype=np.float64), fmt, rounding, overflow)
    if bfp is None:
        return q
    return np_quantize(bfp_quantize(q, bfp, 1, rounding), fmt, rounding, overflow)


NATIVE_OP_FORMATS = ["fp32_e8m23", "fp10_e5m4", "fp12_e5m6", "fp8_e5m2"]


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize("name", NATIVE_OP_FORMATS)
def test_native_operator_chain_matches_model(name, rounding, overflow):
    """The native normalize pass, y = add(mul(sub(x, mu), a), beta) per channel, on values of
    the format from every region (subnormals, max_normal, signed zeros, Inf, NaN) against the
    model's operators: the float32-emulation path (E <= 7, rne), the binary32 path (FP32, rne:
    float32 arithmetic itself, subnormal results, overflow to Inf or max_normal) and the
    float64 path (rtz); rows of 1021 values (vector tails)."""
    check_native_operator_chain(name, rounding, overflow)


def check_native_operator_chain(name, rounding, overflow):
    from lightnorm.torch.native import _native_norm
    from lightnorm.torch.passes import _PNorm

    fmt = FORMATS[name]
    rng = rng_for(31)
    f = _tf(fmt, rounding, overflow)
    with np.errstate(over="ignore", invalid="ignore"):
        edge = edge_values(fmt)
        rand = rng.standard_normal(1500) * np.exp2(rng.integers(fmt.emin - 3, fmt.emax + 2, 1500))
        vals = np_quantize(np.concatenate([edge, rand]), fmt, rounding, overflow)
        consts = np_quantize(
            np.array(
                [
                    0.0,
                    -0.0,
                    1.0,
                    -1.5,
                    np.inf,
                    np.nan,
                    fmt.max_normal,
                    2.0**fmt.emin,
                    2.0 ** (fmt.emin - fmt.man_bits),
                    3.0 * 2.0 ** (fmt.emax - 2),
                    0.7,
                    -1e-3,
                ]
            ),
            fmt,
            rounding,
            overflow,
        )
    n, s = 2, 1021
    chans = 12
    x = rng.choice(vals, (n, chans, s)).astype(np.float32)
    mu = rng.permutation(consts)
    co = rng.permutation(consts)
    be = rng.permutation(consts)
    with np.errstate(over="ignore", invalid="ignore"):
        exp = arith.add(
            arith.mul(
                arith.sub(x.astype(np.float64), mu[None, :, None], fmt, rounding, overflow),
                co[None, :, None],
                fmt,
                rounding,
                overflow,
            ),
            be[None, :, None],
            fmt,
            rounding,
            overflow,
        )
    got = _native_norm(
        torch.from_numpy(x),
        torch.from_numpy(mu),
        torch.from_numpy(co),
        torch.from_numpy(be),
        p=_PNorm(f, f, None, _Layout(1), False),
    )
    assert_bits(got, exp, f"native operator chain {name} {rounding} {overflow}")


@contextlib.contextmanager
def native_passes_seen():
    """The (pass, arithmetic) of every native kernel call inside the block, in call order."""
    seen: list[tuple[int, int]] = []
    call = _native.call

    def spy(a):
        seen.append((a.pass_, a.arith))
        call(a)

    _native.call = spy
    try:
        yield seen
    finally:
        _native.call = call


MIXED_OP_FORMATS = [
    ("fp10_e5m4", "fp16_e8m7"),
    ("fp10_e6m3", "fp16_e8m7"),
    ("fp8_e5m2", "fp16_e8m7"),
]


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize(
    ("name", "stat"), MIXED_OP_FORMATS, ids=["+".join(p) for p in MIXED_OP_FORMATS]
)
def test_native_mixed_format_operators_match_model(name, stat, rounding, overflow):
    """The native float32 arithmetic with exact sums (mode 3: per-channel scalars of a wider
    format such as E8M7, results of the narrow element format; TwoSum rounded to odd, exact
    products): sub, add and mul of every value of the element format (both signs, zeros, Inf,
    NaN) with scalars that are midpoints of the element grid and their neighbours, values of it,
    tiny and huge values, subnormals of the scalar format, zeros, Inf and NaN, each operator
    alone (the other two the identity) and chained, against the model's operators; and a
    scalar that is no float32 value falls back to float64 with the same bits."""
    check_native_mixed_operators(name, stat, rounding, overflow)


def _mixed_scalars(fmt: FloatFormat, st: FloatFormat, rng: np.random.Generator) -> np.ndarray:
    vals = _all_finite_positive(fmt)
    mids = (vals[1:] + vals[:-1]) / 2
    pick = rng.choice(mids, 24, replace=False)
    ulp = lambda v: 2.0 ** (np.floor(np.log2(v)) - st.man_bits)  # noqa: E731
    m, emin, emax = fmt.man_bits, fmt.emin, fmt.emax
    base = np.concatenate(
        [
            pick,
            pick + ulp(pick),
            pick - ulp(pick) / 2,
            rng.choice(vals, 8),
            mids[:3],  # midpoints among the subnormals
            [fmt.max_normal + 2.0 ** (emax - m - 1)],  # the overflow threshold (rne)
            [2.0 ** (emax + 1), 2.0 ** (emax - m - 1), 2.0 ** (emin - m - 1)],
            [2.0 ** (emin - m - 2), 3 * 2.0 ** (emin - m - 2), 2.0**-100, 2.0**100],
            [st.max_normal, 2.0 ** (st.emin - st.man_bits), 2.0**st.emin, 1.0, 1.5],
            rng.standard_normal(12) * np.exp2(rng.integers(-30, 30, 12)),
        ]
    )
    base = np_quantize(base, st)
    return np.concatenate([base, -base, [0.0, -0.0, np.inf, -np.inf, np.nan]])


def check_native_mixed_operators(name, stat, rounding, overflow):
    from lightnorm.torch.native import _native_norm
    from lightnorm.torch.passes import _PNorm

    fmt, st = FORMATS[name], FORMATS[stat]
    f, fs = _tf(fmt, rounding, overflow), _tf(st, rounding, overflow)
    rng = rng_for(77)
    vals = np.concatenate([_all_finite_positive(fmt), [0.0, np.inf, np.nan]])
    x = np.concatenate([vals, -vals])
    sc = _mixed_scalars(fmt, st, rng)
    one, nz = np.ones_like(sc), np.full_like(sc, -0.0)
    zero = np.zeros_like(sc)
    mu = np.concatenate([sc, zero, zero, rng.permutation(sc)])  # sub alone, then add, mul, chain
    co = np.concatenate([one, one, sc, rng.permutation(sc)])
    be = np.concatenate([nz, sc, nz, rng.permutation(sc)])
    c = mu.size
    xs = np.broadcast_to(x, (1, c, x.size)).copy()
    xs[0, -c // 4 :] = rng.permutation(xs[0, -c // 4 :], axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        d = arith.sub(xs, mu[None, :, None], fmt, rounding, overflow)
        exp = arith.add(
            arith.mul(d, co[None, :, None], fmt, rounding, overflow),
            be[None, :, None],
            fmt,
            rounding,
            overflow,
        )
    with native_passes_seen() as seen:
        got = _native_norm(
            torch.from_numpy(xs.astype(np.float32)),
            *(torch.from_numpy(v) for v in (mu, co, be)),
            p=_PNorm(f, fs, None, _Layout(1), False),
        )
        assert seen == [(2, 3)], seen  # normalize, in float32 arithmetic with exact sums
        assert_bits(got, exp, f"native mixed operators {name} {stat} {rounding} {overflow}")
        # a scalar that is no float32 value: the pass runs in float64 (same bits as the model)
        mu2 = mu.copy()
        mu2[5] = 1.0 + 2.0**-40
        with np.errstate(over="ignore", invalid="ignore"):
            d2 = arith.sub(xs, mu2[None, :, None], fmt, rounding, overflow)
            exp2 = arith.add(
                arith.mul(d2, co[None, :, None], fmt, rounding, overflow),
                be[None, :, None],
                fmt,
                rounding,
                overflow,
            )
        got2 = _native_norm(
            torch.from_numpy(xs.astype(np.float32)),
            *(torch.from_numpy(v) for v in (mu2, co, be)),
            p=_PNorm(f, fs, None, _Layout(1), False),
        )
        assert_bits(got2, exp2, f"native mixed operators (float64 fallback) {name} {stat}")


@pytest.mark.parametrize("rounding", ["rne", "rtz"])
@pytest.mark.parametrize("name", ["fp32_e8m23", "fp16_e5m10", "fp10_e5m4", "fp12_e6m5"])
def test_native_limb_sums_match_exact_sum(name, rounding):
    """Exact sums in 32-bit limbs (the 'i64'/'wide' kinds of the native passes) and their one
    rounding per channel in the library, against arith.exact_sum: rows of normal values, of the
    format's whole exponent range (subnormals, max_normal), of huge and tiny values together
    (several exponent windows), of 21 to 63 binades (the hi/lo split), zeros of both signs,
    exact cancellation, Inf and NaN."""
    check_native_limb_sums(name, rounding)


def check_native_limb_sums(name, rounding):
    fmt = FORMATS[name]
    rng = rng_for(32)
    n, c, s = 3, 8, 1500  # three 512-value blocks per row, the last one partial
    x = rng.standard_normal((n, c, s))
    x[:, 1] *= np.exp2(rng.integers(fmt.emin - fmt.man_bits, fmt.emax + 1, (n, s)))
    x[:, 7] *= np.exp2(rng.integers(-20, 21, (n, s)))  # blocks spanning 21..63 binades
    x[:, 2] = np.where(rng.random((n, s)) < 0.01, fmt.max_normal / 2, 2.0 ** (fmt.emin - 1))
    x[:, 2] *= rng.choice([-1.0, 1.0], (n, s))
    x[:, 3] = rng.choice([0.0, -0.0], (n, s))
    x[:, 4, : s // 2] = rng.standard_normal((n, s // 2)) * 7
    x[:, 4, s // 2 :] = -x[:, 4, : s // 2]
    x[0, 5, 17], x[1, 5, 900] = np.inf, -np.inf  # +Inf and -Inf: NaN
    x[2, 6, 1100] = np.nan
    vals = np_quantize(x, fmt, rounding, "saturate")  # values of fmt (x[..., 5/6] keep Inf/NaN)
    vals[0, 5, 17], vals[1, 5, 900], vals[2, 6, 1100] = np.inf, -np.inf, np.nan
    f = _tf(fmt, rounding, "inf")
    out = _native_store(
        torch.from_numpy(vals.astype(np.float32)), p=_PStore(f, None, _Layout(1), "i64", False)
    )
    assert out[1].dim() == 3  # limb rows (N, C, L)
    acc = _Acc.from_parts(out[1:], f)
    exact = arith.exact_sum(vals.transpose(1, 0, 2).reshape(c, -1), axis=-1)
    for out_name in (name, "fp32_e8m23", "fp10_e5m4"):
        fo = FORMATS[out_name]
        for ovf in ("inf", "saturate"):
            for scale in (1.0, 1.0 / (n * s), 1.0 / 3, 0.1, 2.0**-30, 2.0**20, 0.0):
                got = _round_acc(acc, scale, _tf(fo, rounding, ovf))
                want = exact.round(fo, rounding, ovf, scale=scale)
                assert_bits(got, want, f"{name} -> {out_name} {ovf} * {scale}")


@pytest.mark.parametrize("rounding", ["rne", "rtz"])
@pytest.mark.parametrize("name", ["fp10_e5m4", "fp12_e6m5", "fp32_e8m23"])
@pytest.mark.parametrize("bfp", [None, *BFPS_NATIVE], ids=["none"] + [b.name for b in BFPS_NATIVE])
def test_native_store_bfp_matches_model(bfp, name, rounding):
    """The native store pass with BFP (both rules; NaN/Inf groups, carries, zero groups, a
    group split by the channel count) against the model, float32 inputs of every region."""
    check_native_store_bfp(bfp, name, rounding)


def check_native_store_bfp(bfp, name, rounding):
    from lightnorm.formats import Rounding
    from lightnorm.torch.ops import _Bfp

    fmt = FORMATS[name]
    rng = rng_for(33)
    x = rng.standard_normal((3, 37, 70)) * np.exp2(rng.integers(-30, 30, (3, 37, 70)))
    x[0, :16, :5] = 0.0  # all-zero groups
    x[1, 3, 1] = -0.0
    x[2, 5, 2] = np.nan  # poisons its group under rule max
    x[2, 20, 6] = -np.inf
    x[0, 33, 1] = 1.0e-45
    x[1, 34, 0] = 2.0**40
    x[0, 7, 9] = 31.75  # carries out of 5 mantissa bits
    x[1, 8, 10] = fmt.max_normal
    x = x.astype(np.float32)
    g = 1 if bfp is None else bfp.group_size
    f = _tf(fmt, rounding, "inf")
    got = _native_store(
        torch.from_numpy(x),
        p=_PStore(f, _Bfp.of(bfp, Rounding(rounding)), _Layout(g), None, False),
    )[0]
    with np.errstate(over="ignore", invalid="ignore"):
        exp = _stored_ref(x, fmt, bfp, rounding, "inf")
    assert_bits(got.to(torch.float64), exp, f"native store {name} {bfp}")


BFPS_FP32 = [
    *BFPS_NATIVE,
    BFPFormat(man_bits=5, group_size=16, exp_bits=10),  # shared exponents -149 .. 128
    BFPFormat(man_bits=16, group_size=8, exp_bits=10, rule=SharedExpRule.SECOND_MAX),
    BFPFormat(man_bits=2, group_size=4, exp_bits=9),
    BFPFormat(man_bits=7, group_size=2, exp_bits=4),
]


def _fp32_bfp_inputs(rng: np.random.Generator, shape) -> np.ndarray:
    """float32 values of every binade (subnormals, FLT_MAX's), ties and carries on every grid."""
    n, c, s = shape
    e = rng.integers(-149, 128, shape)
    x = rng.standard_normal(shape) * np.exp2(e.astype(np.float64))
    x = np.where(rng.random(shape) < 0.2, np.exp2(e.astype(np.float64)), x)
    # a group exponent per (n, s) and neighbours within a few binades: deep grids, zeros
    base = rng.integers(-160, 130, (n, 1, s))
    near = np.exp2(np.clip(base + rng.integers(-30, 2, shape), -149, 127).astype(np.float64))
    x = np.where(rng.random(shape) < 0.5, near * (1 + rng.integers(0, 64, shape) / 32.0), x)
    # significands 1.xxx with the bits of ties / carries at mb = 2..16
    k = rng.integers(1, 17, shape)
    tie = np.exp2(-k.astype(np.float64))
    x = np.where(rng.random(shape) < 0.2, near * (2 - tie), x)
    x = np.where(rng.random(shape) < 0.1, near * (1 + tie), x)
    x *= rng.choice([-1.0, 1.0], shape)
    x = np.clip(x, -3.4028234663852886e38, 3.4028234663852886e38).astype(np.float32)
    x[0, :16, :3] = 0.0
    x[0, :8, 3] = -0.0
    x[0, 0, 4], x[0, 1, 4] = 3.4028234663852886e38, 3.3e38  # carries to 2^128
    x[0, 0, 5], x[0, 1, 5] = 1.4e-45, -2.8e-45  # subnormal groups
    x[0, 2, 6] = np.nan
    x[0, 3, 7], x[0, 4, 7] = np.inf, -np.inf
    x[0, 5, 8] = -np.inf
    x[0, 0, 9], x[0, 1, 9] = 1.1754942e-38, 1.17549435e-38  # the largest subnormal, 2^-126
    return x


@pytest.mark.parametrize("overflow", ["inf", "saturate"])
@pytest.mark.parametrize("rounding", ["rne", "rtz"])
@pytest.mark.parametrize("bfp", BFPS_FP32, ids=[b.name + "_" + b.rule.value for b in BFPS_FP32])
def test_native_store_bfp_fp32_every_binade(bfp, rounding, overflow):
    """BFP of FP32 values on the store pass in binary32 mode (integer rounding on the float32 bit
    patterns): values of every float32 binade, subnormals, groups whose shared exponent pushes
    elements to zero, carries (also to 2^128), grids below 2^-149 and caps above FLT_MAX, NaN/Inf
    groups, against the model; the pass must run in mode 2."""
    check_native_store_bfp_fp32(bfp, rounding, overflow)


def check_native_store_bfp_fp32(bfp, rounding, overflow):
    from lightnorm.formats import Rounding
    from lightnorm.torch.ops import _Bfp

    fmt = FORMATS["fp32_e8m23"]
    x = _fp32_bfp_inputs(rng_for(34), (2, 37, 301))
    f = _tf(fmt, rounding, overflow)
    with native_passes_seen() as seen:
        got = _native_store(
            torch.from_numpy(x),
            p=_PStore(f, _Bfp.of(bfp, Rounding(rounding)), _Layout(bfp.group_size), None, False),
        )[0]
    assert seen == [(0, 2)], seen
    with np.errstate(over="ignore", invalid="ignore"):
        exp = _stored_ref(x, fmt, bfp, rounding, overflow)
    assert_bits(got.to(torch.float64), exp, f"native store fp32 {bfp} {rounding} {overflow}")


def test_native_bfp_bn_runs_every_pass_in_binary32():
    """The "bfp-bn" preset (FP32 formats, BFP storage): every native pass runs in binary32 (mode
    2, BFP on the float32 bit patterns), with the model's bits."""
    cfg = LightNormConfig.from_preset("bfp-bn")
    with native_passes_seen() as seen:
        run_module_vs_reference(cfg, (6, 20, 3, 5), "native", tag=43)
    assert {p for p, _ in seen} >= {0, 1, 2, 3, 4}, seen
    assert {ar for _, ar in seen} == {2}, seen


# (N, C, S) layouts of the chunk arg-max / arg-min checks: n = 2, 3, 5 (K_n = 1, 1, 2: fewer
# chunks than K = 8; n = 5: the last chunk takes the remainder), chunks inside one row (N = 1),
# chunks of whole rows, chunks across rows and across vectors (m not a multiple of S or of the
# SIMD width), chunks across the kernels' 1024-value blocks (S = 1500, m = 375), a K = 8 layer
# with a remainder (n = 111); C = 13 / 3 / 17 channels: no multiple of any SIMD width.
CHUNK_ARG_SHAPES = [
    (2, 13, 1),
    (3, 13, 1),
    (5, 13, 1),
    (1, 13, 7),
    (8, 13, 4),
    (3, 13, 37),
    (2, 3, 1500),
    (4, 17, 6),
]


def chunk_arg_stream_rule(vals: np.ndarray, largest: bool) -> int:
    """The spec's arg rule on one chunk (float64 values), written out: the first NaN if there
    is one (NaN is above every number for max, below for min), else the first element equal to
    the extremum (-0 == +0)."""
    nan = np.isnan(vals)
    if nan.any():
        return int(np.flatnonzero(nan)[0])
    best = vals.max() if largest else vals.min()
    return int(np.flatnonzero(vals == best)[0])


CHUNK_ARG_KINDS = [7, 0, 1, 3, 2, 4, 5, 6]  # channel 0: kind 7, 1: kind 0 (all equal), ...


def chunk_arg_inputs(shape, k: int, tag: int, specials: bool = True) -> np.ndarray:
    """float32 (N, C, S) with, in stream order per chunk: ties (an all-equal channel, repeated
    maxima/minima, many equal small integers), NaN first / last / twice in a chunk, +-Inf (also
    twice), -0 / +0 extremes in either order, and random values elsewhere. specials=False: NaN
    -> 0.75, +-Inf -> +-8 (BFP: a NaN or Inf makes its whole group of channels NaN)."""
    n_, c, s_ = shape
    count = n_ * s_
    rng = rng_for(tag)
    xs = (rng.standard_normal((max(c, 8), count)) * 3).astype(np.float64)
    for j, (a, b) in enumerate(ref.chunk_bounds(count, k)):
        ln = b - a
        rows = {
            0: np.full(ln, 1.5),  # all equal: arg-max = arg-min = the first element
            1: np.concatenate([[np.nan], xs[1, a + 1 : b]]),  # NaN first
            2: np.concatenate([xs[2, a : b - 1], [np.nan]]),  # NaN last
            3: xs[3, a:b].copy(),
            4: np.where(np.arange(ln) % 2 == (j % 2), -0.0, 0.0),  # zeros of both signs
            5: -np.abs(xs[5, a:b]),
            6: rng.integers(-2, 3, ln).astype(np.float64),  # many ties
            7: xs[7, a:b].copy(),
        }
        rows[3][(ln - 1) // 2] = np.inf
        rows[3][-1] = -np.inf
        if ln > 2:
            rows[3][0] = np.inf  # two +Inf: the first wins
            rows[2][ln // 2] = np.nan  # the first of two NaN wins
        rows[5][ln // 2] = -0.0 if j % 2 else 0.0  # a zero maximum of either sign, then
        rows[5][-1] = 0.0 if j % 2 else -0.0  # ... the other sign later: the first wins
        mx, mn = rows[7].max(), rows[7].min()
        rows[7][0], rows[7][-1] = mn, mx  # the extremes again at the ends (ties: the first wins)
        for ch, kind in enumerate(CHUNK_ARG_KINDS):
            xs[ch, a:b] = rows[kind]
    xs = xs[:c]  # C = 3: the first three kinds only
    if not specials:
        xs = np.nan_to_num(xs, nan=0.75, posinf=8.0, neginf=-8.0)
    return np.ascontiguousarray(xs.reshape(c, n_, s_).transpose(1, 0, 2)).astype(np.float32)


def check_native_chunk_args(name, rounding, overflow, bfp=None):
    """The native store pass's chunk arg-max / arg-min (range_exact) against the arg rule written
    out (chunk_arg_stream_rule) and the reference model's choice (reference._chunk_extrema), on
    its own stored values, for every CHUNK_ARG_SHAPES layout; x_c and the arg outputs equal the
    torch pass's, also with row sums and row extrema requested alongside."""
    from lightnorm.formats import Rounding
    from lightnorm.torch.ops import _Bfp
    from lightnorm.torch.passes import _pass_store

    fmt = FORMATS[name]
    f = _tf(fmt, rounding, overflow)
    cfg = LightNormConfig()  # K = 8
    tb = _Bfp.of(bfp, Rounding(rounding))
    lay = _Layout(1 if bfp is None else bfp.group_size)
    for shape in CHUNK_ARG_SHAPES:
        n_, c, s_ = shape
        count = n_ * s_
        k = cfg.chunk_count(count)
        assert k == ref.layer_constants(count, cfg).num_chunks
        tag = zlib.crc32(repr(shape).encode())
        x = torch.from_numpy(chunk_arg_inputs(shape, k, tag, specials=bfp is None))
        for kind, extrema in ((None, False), ("i64", n_ % k == 0)):
            p = _PStore(f, tb, lay, kind, extrema, k)
            got, exp = _native_store(x, p=p), _pass_store(x, p=p)
            what = f"{name} {rounding} {overflow} {bfp} {shape} {kind}"
            assert len(got) == len(exp)
            assert_bits(got[0].double(), exp[0].double().numpy(), f"{what} x_c")
            amax, amin = got[-2], got[-1]
            assert amax.dtype == amin.dtype == torch.int64 and amax.shape == (c, k), what
            assert torch.equal(amax, exp[-2]) and torch.equal(amin, exp[-1]), what
            if extrema:
                assert_bits(got[-4], exp[-4].numpy(), f"{what} row max")
            x3 = got[0].to(torch.float32).numpy()
            bounds = ref.chunk_bounds(count, k)
            _, _, rmax, rmin = ref._chunk_extrema(x3, bounds)
            assert np.array_equal(amax.numpy(), rmax), f"{what}: arg-max != reference"
            assert np.array_equal(amin.numpy(), rmin), f"{what}: arg-min != reference"
            xs = x3.astype(np.float64).transpose(1, 0, 2).reshape(c, count)
            for ch in range(c):
                for j, (a, b) in enumerate(bounds):
                    assert amax[ch, j] == a + chunk_arg_stream_rule(xs[ch, a:b], True), what
                    assert amin[ch, j] == a + chunk_arg_stream_rule(xs[ch, a:b], False), what
            # the rule's special cases did occur (on channels the inputs set up)
            starts = [a for a, _ in bounds]
            if bfp is not None:
                continue
            assert np.array_equal(amax[1].numpy(), starts), what  # all equal
            assert np.array_equal(amin[1].numpy(), starts), what
            assert np.array_equal(amax[2].numpy(), starts), what  # NaN first
            assert np.array_equal(amin[2].numpy(), starts), what


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize("name", ["fp10_e5m4", "fp32_e8m23", "fp16_e8m7"])
def test_native_chunk_args_match_reference(name, rounding, overflow):
    """The store pass's chunk arg-max / arg-min (float32 emulation, binary32 and float64
    kernels: fp10, fp32, fp16_e8m7): ties, NaN, +-Inf, -0 / +0, remainder chunks, small n."""
    check_native_chunk_args(name, rounding, overflow)


@pytest.mark.parametrize("bfp", BFPS_NATIVE[:3], ids=[b.name for b in BFPS_NATIVE[:3]])
def test_native_chunk_args_with_bfp_groups(bfp):
    """The same with BFP storage: work items are groups of channels (C not a multiple of g)."""
    check_native_chunk_args("fp10_e5m4", "rne", "inf", bfp)


VEC_VARIANTS = ["-DLN_VEC_BYTES=16", "-DLN_VEC_BYTES=64", "-march=x86-64"]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 variant flags")
@pytest.mark.parametrize("flags", VEC_VARIANTS)
def test_native_vector_width_variants_match_reference(flags):
    """The kernels are one code path on SIMD vectors of the machine's width; this machine
    builds the other widths too (16 bytes: SSE width, 64: AVX-512 width as pairs of 256-bit
    operations) and the portable x86-64 build (SSE2 only, no F16C: the scalar float16
    conversions), and each must give the same bits: the operator, limb-sum, BFP and row
    rounding checks above and whole modules in several presets (vector tails included)."""
    lib = _native.build_variant([flags])
    with _native.using(lib):
        assert _native.isa().startswith(
            "vector_bytes=" + {"-march=x86-64": "16"}.get(flags, flags[-2:])
        )
        check_native_row_rounding("fp10_e5m4", "rne", "inf")
        check_native_row_rounding("fp8_e5m2", "rtz", "saturate")
        for name, rnd, ovf in (("fp32_e8m23", "rne", "saturate"), ("fp10_e5m4", "rne", "inf")):
            check_native_operator_chain(name, rnd, ovf)
        check_native_mixed_operators("fp10_e5m4", "fp16_e8m7", "rne", "inf")
        check_native_mixed_operators("fp10_e6m3", "fp16_e8m7", "rtz", "inf")
        check_native_limb_sums("fp32_e8m23", "rne")
        check_native_limb_sums("fp10_e5m4", "rne")
        for bfp in BFPS_NATIVE:
            check_native_store_bfp(bfp, "fp10_e5m4", "rne")
            check_native_store_bfp(bfp, "fp10_e5m4", "rtz")
        for bfp in BFPS_FP32[-4:]:
            check_native_store_bfp_fp32(bfp, "rne", "inf")
            check_native_store_bfp_fp32(bfp, "rtz", "saturate")
        check_native_chunk_args("fp10_e5m4", "rne", "inf")
        check_native_chunk_args("fp16_e8m7", "rtz", "saturate")
        for preset, overrides in VARIANT_SUBSET:
            cfg = LightNormConfig.from_preset(preset, **overrides)
            run_module_vs_reference(cfg, (6, 20, 3, 5), "native", tag=41)
            run_module_vs_reference(cfg, (16, 36, 9, 7), "native", tag=42)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 flags")
def test_native_avx512_build_compiles():
    """The AVX-512 build (64-byte vectors with AVX-512 conversions) compiles; it runs, and the
    module tests check it, on machines whose CPU has AVX-512F."""
    import subprocess

    probe = [_native._cxx(), "-march=x86-64-v4", "-x", "c++", "-E", "-o", os.devnull, os.devnull]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        pytest.skip("this C++ compiler has no -march=x86-64-v4 (GCC < 11): no AVX-512 build")
    cmd = [_native._cxx(), *_native.FLAGS, "-march=x86-64-v4", "-O0", "-c", "-o", os.devnull]
    cmd = [a for a in cmd if a not in ("-shared", "-O3")] + [str(_native.SOURCE)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("rounding", ["rne", "rtz"])
@pytest.mark.parametrize("fmt", BFPS, ids=[b.name for b in BFPS])
def test_bfp_matches_model(fmt, rounding):
    rng = rng_for(2)
    x = rng.standard_normal((3, 37, 2, 3)) * np.exp2(rng.integers(-30, 30, (3, 37, 2, 3)))
    x[0, :16, 0, 0] = 0.0  # an all-zero group
    x[1, 3, 1, 1] = -0.0
    x[2, 5, 0, 2] = np.nan  # poisons its group under rule max
    x[2, 20, 1, 0] = -np.inf
    x[0, 33, 0, 1] = 1.0e-45  # below the shared-exponent range of exp_bits=5
    x[1, 34, 0, 0] = 2.0**40
    x[0, 7, 1, 2] = 31.75  # carries out of 5 mantissa bits
    got = t_bfp_quantize(torch.from_numpy(x), fmt, axis=1, rounding=rounding)
    assert_bits(got, bfp_quantize(x, fmt, axis=1, rounding=rounding), fmt.name)


def _all_finite_positive(fmt: FloatFormat) -> np.ndarray:
    bits = np.arange(1, (1 << (fmt.exp_bits + fmt.man_bits)) - (1 << fmt.man_bits))
    return decode(bits, fmt)


def _tf(fmt: FloatFormat, rounding: str = "rne", overflow: str = "inf") -> _Fmt:
    from lightnorm.formats import Overflow, Rounding

    return _Fmt.of(fmt, Rounding(rounding), Overflow(overflow))


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize("name", ["fp10_e5m4", "fp10_e6m3", "fp8_e5m2", "fp12_e5m6"])
def test_recip_rsqrt_every_value(name, rounding, overflow, prims):
    fmt = FORMATS[name]
    v = np.concatenate([_all_finite_positive(fmt), [0.0, -0.0, np.inf, -1.0, np.nan]])
    for out_name in (name, "fp32_e8m23", "fp10_e5m4"):
        out = FORMATS[out_name]
        f = _tf(out, rounding, overflow)
        t = torch.from_numpy(v)
        assert_bits(
            _recip(t, f), arith.recip(v, out, rounding, overflow), f"recip {name}->{out_name}"
        )
        assert_bits(
            _rsqrt(t, f), arith.rsqrt(v, out, rounding, overflow), f"rsqrt {name}->{out_name}"
        )


@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_recip_rsqrt_fp32_random_and_near_ties(rounding, prims):
    fmt = FORMATS["fp32_e8m23"]
    rng = rng_for(3)
    v = np_quantize(np.abs(rng.standard_normal(3000)) * np.exp2(rng.integers(-140, 120, 3000)), fmt)
    # exact squares and near-squares: 1/sqrt lands on or next to a breakpoint
    s = np_quantize(rng.uniform(1, 2, 500), FORMATS["fp12_e5m6"])
    v = np.concatenate(
        [v, np_quantize(1 / (s * s), fmt), np.nextafter(np_quantize(1 / (s * s), fmt), 0)]
    )
    for out_name in ("fp32_e8m23", "fp10_e5m4", "fp16_e8m7"):
        out = FORMATS[out_name]
        f = _tf(out, rounding)
        t = torch.from_numpy(v)
        assert_bits(_recip(t, f), arith.recip(v, out, rounding), f"recip fp32->{out_name}")
        assert_bits(_rsqrt(t, f), arith.rsqrt(v, out, rounding), f"rsqrt fp32->{out_name}")


PAIRS = [
    ("fp10_e6m3", "fp32_e8m23", "fp10_e6m3"),
    ("fp32_e8m23", "fp32_e8m23", "fp32_e8m23"),
    ("fp10_e5m4", "fp32_e8m23", "fp10_e5m4"),
    ("fp10_e6m3", "fp10_e6m3", "fp10_e6m3"),
    ("fp10_e5m4", "fp10_e5m4", "fp10_e5m4"),
]


@pytest.mark.parametrize(("rounding", "overflow"), MODES, ids=[f"{r}-{o}" for r, o in MODES])
@pytest.mark.parametrize(("fa", "fb", "fo"), PAIRS, ids=["+".join(p) for p in PAIRS])
def test_add_sub_mixed_formats(fa, fb, fo, rounding, overflow, prims):
    ffa, ffb, ffo = FORMATS[fa], FORMATS[fb], FORMATS[fo]
    rng = rng_for(4)
    n = 3000
    a = np_quantize(rng.standard_normal(n) * np.exp2(rng.integers(ffa.emin - 3, ffa.emax, n)), ffa)
    b = np_quantize(rng.standard_normal(n) * np.exp2(rng.integers(ffb.emin - 3, ffb.emax, n)), ffb)
    # adversarial: b is a breakpoint of fo (a midpoint), a is tiny -> float64 rounding hides a
    mids = np_quantize(rng.uniform(1, 2, 200), ffo) * np.exp2(rng.integers(-8, 8, 200))
    mids = np_quantize(mids + np.exp2(np.floor(np.log2(mids)) - ffo.man_bits - 1), ffb)
    tiny = np_quantize(
        np.exp2(rng.integers(ffa.emin - ffa.man_bits, ffa.emin, 200)) * rng.choice([-1, 1], 200),
        ffa,
    )
    a = np.concatenate([a, tiny, [0.0, -0.0, 0.0, np.inf, np.nan, 1.0]])
    b = np.concatenate([b, mids, [-0.0, -0.0, 0.0, -np.inf, 1.0, -1.0]])
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    to, tfa, tfb = _tf(ffo, rounding, overflow), _tf(ffa), _tf(ffb)
    assert_bits(_add(ta, tb, to, tfa, tfb), arith.add(a, b, ffo, rounding, overflow), "add")
    assert_bits(_sub(ta, tb, to, tfa, tfb), arith.sub(a, b, ffo, rounding, overflow), "sub")


@pytest.mark.parametrize("name", ["fp10_e5m4", "fp8_e5m2", "fp12_e5m6", "fp16_e5m10"])
def test_float32_add_double_rounding_is_exact(name):
    """The float32 path of add (round to float32, then to the format: RNE, p <= 11 bits) equals
    the correctly rounded sum: every pair of values for fp10_e5m4 / fp8_e5m2 (both signs,
    subnormals, overflow), 200000 random pairs for the wider formats."""
    fmt = FORMATS[name]
    f = _tf(fmt)
    vals = np.concatenate([_all_finite_positive(fmt), [0.0]])
    vals = np.concatenate([vals, -vals])
    if vals.size <= 4096:
        a, b = (v.ravel() for v in np.meshgrid(vals, vals))
    else:
        rng = rng_for(6)
        a, b = rng.choice(vals, 200_000), rng.choice(vals, 200_000)
    ta, tb = torch.from_numpy(a.astype(np.float32)), torch.from_numpy(b.astype(np.float32))
    got = _add(ta, tb, f, f, f)
    assert got.dtype == torch.float32  # the float32 path
    assert_bits(got, arith.add(a, b, fmt), f"add {name}")


@pytest.mark.parametrize("name", ["fp32_e8m23", "fp10_e5m4", "fp12_e6m5"])
def test_rounded_accumulator_matches_model(name, prims):
    fmt = FORMATS[name]
    rng = rng_for(5)
    vals = np_quantize(
        rng.standard_normal((6, 50)) * np.exp2(rng.integers(-20, 10, (6, 50))), FORMATS["fp10_e5m4"]
    )
    vals[0] = 0.0
    vals[1, :25], vals[1, 25:] = 3.0, -3.0  # exact cancellation -> +0
    exact = arith.exact_sum(vals, axis=-1)
    sums = torch.from_numpy(vals.sum(axis=-1))  # exact: fp10 values, 50 terms
    for c in (1.0, 1.0 / 3, 0.1, 2.0**-20, float(np_quantize(1 / 1568, fmt)), 0.0):
        for rnd in ("rne", "rtz"):
            f = _tf(fmt, rnd)
            exp = exact.round(fmt, rnd, "inf", scale=c)
            assert_bits(_round_acc(_Acc.from_parts((sums[None],), f), c, f), exp, f"f64 sum * {c}")
            ints = _Acc(
                ints=[int(t) for t in (vals * 2.0**18).sum(axis=-1)],
                lsb=-18,
                special=torch.zeros(6, dtype=torch.float64),
            )
            assert_bits(_round_acc(ints, c, f), exp, f"int sum * {c}")


# ------------------------------------------------------------------------------------------
# 2. Modules == reference, bit for bit
# ------------------------------------------------------------------------------------------

VARIANTS = [
    ("lightnorm", {}),
    ("lightnorm", {"grad_mode": "range_exact"}),
    ("lightnorm", {"rounding": "rtz"}),
    ("lightnorm", {"overflow": "saturate"}),
    ("lightnorm", {"range_constant": "gauss", "num_chunks": 4}),
    (
        "lightnorm",
        {"compute_format": "fp12_e6m5", "grad_format": "fp12_e6m5", "stat_format": "fp12_e5m6"},
    ),
    ("fp32-bn", {}),
    ("range-fp32", {}),
    ("range-fp32", {"grad_mode": "range_exact"}),
    ("fp10-bn", {}),
    ("bfp-bn", {}),
    ("authors", {}),
    ("authors", {"grad_mode": "range_exact", "overflow": "saturate"}),
    ("lightnorm-v2", {}),
]
VARIANT_IDS = [p + "".join(f"-{v}" for v in o.values()) for p, o in VARIANTS]
VARIANT_SUBSET = [VARIANTS[i] for i in (0, 1, 2, 3, 6, 8, 10, 12, 13)]
SHAPES = [(16, 32, 4, 4), (6, 20, 3, 5), (64, 24), (8, 24, 5)]


def make_inputs(shape, tag, special=True):
    rng = rng_for(tag)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    if special:
        flat_x, flat_dy = x.reshape(-1), dy.reshape(-1)
        flat_x[::7] = 0.0
        flat_x[3::11] = -0.0
        flat_x[5::13] = 1.25  # repeated values: ties for the chunk max/min
        flat_x[6::29] = 4.0e3  # beyond fp10 precision
        flat_dy[::5] = -0.0
        flat_dy[2::9] = 0.0
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.uniform(-0.5, 0.5, c).astype(np.float32)
    gamma[0], beta[1] = -0.75, -0.0
    return x, dy, gamma, beta


def stored_np(v, fmt, cfg):
    """stored(v, fmt) of spec section 5 with the model's public functions."""
    q = np_quantize(np.asarray(v, dtype=np.float64), fmt, cfg.rounding, cfg.overflow)
    if cfg.bfp is None:
        return q
    return np_quantize(bfp_quantize(q, cfg.bfp, 1, cfg.rounding), fmt, cfg.rounding, cfg.overflow)


def run_module_vs_reference(
    cfg, shape, backend, tag=0, momentum=0.1, eps=1e-5, special=True, eval_grad=True
):
    x, dy, gamma, beta = make_inputs(shape, tag, special)
    c = shape[1]
    cls = LightNorm2d if len(shape) == 4 else LightNorm1d
    m = cls(c, eps=eps, momentum=momentum, config=cfg, backend=backend)
    rm0 = rng_for(tag + 1).standard_normal(c).astype(np.float32)
    rv0 = rng_for(tag + 2).uniform(0.5, 2.0, c).astype(np.float32)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(gamma))
        m.bias.copy_(torch.from_numpy(beta))
        m.running_mean.copy_(torch.from_numpy(rm0))
        m.running_var.copy_(torch.from_numpy(rv0))
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y = m(xt)
    y.backward(torch.from_numpy(dy))
    fwd = ref.forward_train(x, gamma, beta, cfg, rm0, rv0, eps=eps, momentum=momentum)
    bwd = ref.backward(dy, fwd, cfg)
    what = f"{shape}"
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert_bits(y, fwd.y, f"{what} y")
    assert_bits(xt.grad, bwd.dx, f"{what} dx")
    assert_bits(m.weight.grad, bwd.d_gamma, f"{what} d_gamma")
    assert_bits(m.bias.grad, bwd.d_beta, f"{what} d_beta")
    assert_bits(m.running_mean, fwd.running_mean, f"{what} running_mean")
    assert_bits(m.running_var, fwd.running_var, f"{what} running_var")
    assert int(m.num_batches_tracked) == 1
    m.eval()
    inf = ref.forward_infer(x, gamma, beta, fwd.running_mean, fwd.running_var, cfg, eps=eps)
    with torch.no_grad():  # inference as usually run: no autograd graph
        assert_bits(m(torch.from_numpy(x.copy())), inf.y, f"{what} eval y (no_grad)")
    if not eval_grad:
        return
    xe = torch.from_numpy(x.copy()).requires_grad_()
    ye = m(xe)
    assert_bits(ye, inf.y, f"{what} eval y")
    ye.backward(torch.from_numpy(dy))
    # eval backward (an extension, module docstring): dx = stored(mul(stored(dy), a, gf))
    a_eval = inf.coeff.reshape((1, c) + (1,) * (x.ndim - 2))
    dx_c = arith.mul(
        stored_np(dy, cfg.grad_format, cfg), a_eval, cfg.grad_format, cfg.rounding, cfg.overflow
    )
    dx_eval = stored_np(dx_c, cfg.grad_format, cfg)
    assert_bits(xe.grad, dx_eval, f"{what} eval dx")


@pytest.mark.parametrize("backend", ["native", "eager"])
@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
@pytest.mark.parametrize(("preset", "overrides"), VARIANTS, ids=VARIANT_IDS)
def test_module_matches_reference(preset, overrides, shape, backend):
    cfg = LightNormConfig.from_preset(preset, **overrides)
    run_module_vs_reference(
        cfg, shape, backend, tag=zlib.crc32(f"{preset}{overrides}{shape}".encode())
    )


RANGE_EXACT_CONFIGS = [
    ("lightnorm-v2", {}),  # float32 emulation with exact sums (E8M7 scalars)
    ("lightnorm-v1", {"grad_mode": "range_exact"}),  # float32 emulation
    ("range-fp32", {"grad_mode": "range_exact"}),  # binary32
    ("authors", {"grad_mode": "range_exact", "overflow": "saturate"}),
    ("lightnorm-v2", {"compute_format": "fp16_e8m7", "grad_format": "fp16_e8m7"}),  # float64
]


@pytest.mark.parametrize("backend", ["native", "eager"])
@pytest.mark.parametrize(
    ("preset", "overrides"),
    RANGE_EXACT_CONFIGS,
    ids=[p + "".join(f"-{v}" for v in o.values()) for p, o in RANGE_EXACT_CONFIGS],
)
def test_range_exact_special_chunks_match_reference(preset, overrides, backend):
    """grad_mode range_exact where the chunk arg-max / arg-min rule matters (chunk_arg_inputs:
    ties, all-equal chunks with no correction, NaN, +-Inf, -0 / +0; without NaN / Inf under
    BFP) on the CHUNK_ARG_SHAPES
    layouts (small n with K_n < K, remainder chunks, chunks across rows and blocks, C no
    multiple of the SIMD width): y, dx, d_gamma, d_beta equal the reference model's."""
    cfg = LightNormConfig.from_preset(preset, **overrides)
    for shape in CHUNK_ARG_SHAPES:
        count = shape[0] * shape[2]
        k = ref.layer_constants(count, cfg).num_chunks
        tag = zlib.crc32(repr(shape).encode())
        x = chunk_arg_inputs(shape, k, tag, specials=cfg.bfp is None)
        dy = rng_for(count).standard_normal(shape).astype(np.float32)
        c = shape[1]
        gamma = np.linspace(0.5, 1.5, c).astype(np.float32)
        beta = np.linspace(-0.5, 0.5, c).astype(np.float32)
        m = LightNorm1d(c, config=cfg, backend=backend)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(gamma))
            m.bias.copy_(torch.from_numpy(beta))
        xt = torch.from_numpy(x.copy()).requires_grad_()
        y = m(xt)
        y.backward(torch.from_numpy(dy))
        fwd = ref.forward_train(x, gamma, beta, cfg, np.zeros(c), np.ones(c))
        bwd = ref.backward(dy, fwd, cfg)
        assert_bits(y, fwd.y, f"{shape} y")
        assert_bits(xt.grad, bwd.dx, f"{shape} dx")
        assert_bits(m.weight.grad, bwd.d_gamma, f"{shape} d_gamma")
        assert_bits(m.bias.grad, bwd.d_beta, f"{shape} d_beta")
        # the correction is applied (channel 0: distinct args), not where they are equal
        distinct = fwd.chunk_argmax != fwd.chunk_argmin
        assert bool(distinct[0].all() if cfg.bfp is None else distinct.any())
        assert cfg.bfp is not None or not bool(distinct[1:3].any())


def test_native_buffers_reused_only_when_free():
    """The native backend lends pooled output buffers (x_c, y, dy_c, dx): two forwards of the
    same shape before one backward (the first x_c is held only by autograd), outputs kept
    across steps, a view kept after its tensor is gone: every result equals the eager path's,
    and a freed buffer is reused."""
    from lightnorm.torch.native import _pool

    x, dy, gamma, beta = make_inputs((16, 64, 16, 16), 14, special=False)  # 1 MiB outputs
    results = []
    for backend in ("native", "eager"):
        m = LightNorm2d(64, backend=backend)
        x1 = torch.from_numpy(x).requires_grad_()
        x2 = torch.from_numpy(x[::-1].copy()).requires_grad_()
        y1, y2 = m(x1), m(x2)
        keep = y1[3]  # a view outlives y1
        (y1 * torch.from_numpy(dy) + y2).sum().backward()
        del y1
        y3 = m(x1.detach() * 2)
        results.append([keep.detach().clone(), y2.detach(), x1.grad, x2.grad, y3.detach()])
        results[-1].append(m.weight.grad)
    for got, exp in zip(*results, strict=True):
        assert_bits(got, exp.double().numpy(), "native vs eager")
    y = LightNorm2d(64, backend="native")(torch.from_numpy(x))
    ptr = y.data_ptr()
    del y
    assert LightNorm2d(64, backend="native")(torch.from_numpy(x)).data_ptr() == ptr
    assert _pool.arrays  # the pool is in use


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("preset", ["lightnorm", "fp32-bn", "authors"])
def test_native_other_input_dtypes_match_eager(preset, dtype):
    """float16 / bfloat16 inputs run natively (widened exactly), float64 inputs take the eager
    path: outputs and gradients equal the eager path's bit for bit."""
    x, dy, gamma, beta = make_inputs((6, 40, 3, 7), 13)
    outs = []
    for backend in ("native", "eager"):
        m = LightNorm2d(40, config=preset, backend=backend)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(gamma))
            m.bias.copy_(torch.from_numpy(beta))
        xt = torch.from_numpy(x).to(dtype).requires_grad_()
        y = m(xt)
        y.backward(torch.from_numpy(dy).to(dtype))
        outs.append((y, xt.grad, m.weight.grad, m.bias.grad, m.running_mean, m.running_var))
    for got, exp, what in zip(outs[0], outs[1], ("y", "dx", "dw", "db", "rm", "rv"), strict=True):
        assert got.dtype == exp.dtype, what
        assert_bits(
            got.detach().to(torch.float64),
            exp.detach().double().numpy(),
            f"{preset} {dtype} {what}",
        )


def test_int64_accumulator_path_matches_reference():
    """fp16_e5m10 elements, n = 8448: sums need 54 bits, so they are int64 sums (not float64)."""
    cfg = LightNormConfig.from_preset(
        "fp10-bn", compute_format="fp16_e5m10", grad_format="fp16_e5m10", stat_format="fp16_e5m10"
    )
    run_module_vs_reference(cfg, (8, 2, 32, 33), "eager", tag=11)


def test_module_momentum_none_and_eps_match_reference():
    cfg = PRESETS["lightnorm"]
    x, dy, gamma, beta = make_inputs((16, 8, 3, 3), 7)
    m = LightNorm2d(8, eps=1e-3, momentum=None, config=cfg, backend="eager")
    rm, rv = np.zeros(8, np.float32), np.ones(8, np.float32)
    for step in range(1, 4):
        xs = x * step
        m(torch.from_numpy(xs))
        fwd = ref.forward_train(
            xs, np.ones(8), np.zeros(8), cfg, rm, rv, eps=1e-3, momentum=1.0 / step
        )
        rm, rv = fwd.running_mean, fwd.running_var
        assert_bits(m.running_mean, rm, f"step {step} running_mean")
        assert_bits(m.running_var, rv, f"step {step} running_var")
    assert int(m.num_batches_tracked) == 3


def test_nonfinite_input_propagates_like_reference():
    cfg = PRESETS["lightnorm"]
    x, dy, gamma, beta = make_inputs((16, 20, 2, 2), 8, special=False)
    x[3, 2, 1, 0] = np.nan
    x[5, 17, 0, 1] = np.inf
    m = LightNorm2d(20, config=cfg, backend="eager")
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(gamma))
        m.bias.copy_(torch.from_numpy(beta))
    xt = torch.from_numpy(x).requires_grad_()
    y = m(xt)
    y.backward(torch.from_numpy(dy))
    fwd = ref.forward_train(x, gamma, beta, cfg, np.zeros(20), np.ones(20))
    bwd = ref.backward(dy, fwd, cfg)
    assert_bits(y, fwd.y, "y")
    assert_bits(xt.grad, bwd.dx, "dx")
    assert_bits(m.running_mean, fwd.running_mean, "running_mean")


DEFAULT_PATH = [("lightnorm", {}), ("lightnorm", {"grad_mode": "range_exact"})]


@pytest.mark.parametrize(
    ("preset", "overrides"), DEFAULT_PATH, ids=["lightnorm", "lightnorm-range_exact"]
)
def test_default_path_matches_reference(preset, overrides):
    """What users get by default (backend "auto": the native kernels) at a size with several
    512-value blocks per row and both threads (S = 1200, not a multiple of the block)."""
    cfg = LightNormConfig.from_preset(preset, **overrides)
    run_module_vs_reference(cfg, (16, 40, 30, 40), "auto", tag=9, eval_grad=False)


@pytest.mark.parametrize(
    ("preset", "overrides"), DEFAULT_PATH, ids=["lightnorm", "lightnorm-range_exact"]
)
def test_compiled_path_matches_reference(preset, overrides):
    """The torch.compile path (other devices; machines without the native kernels). The first
    run compiles (about ten graphs, minutes on a busy 2-core machine); inductor caches them on
    disk. Eval is checked without autograd (the fused inference pass)."""
    cfg = LightNormConfig.from_preset(preset, **overrides)
    run_module_vs_reference(cfg, (16, 64, 16, 16), "compile", tag=9, eval_grad=False)


@pytest.mark.skipif(not SLOW, reason="compiles every preset (minutes): set LIGHTNORM_SLOW_TESTS=1")
@pytest.mark.parametrize(("preset", "overrides"), VARIANTS, ids=VARIANT_IDS)
def test_compiled_path_matches_reference_every_preset(preset, overrides):
    cfg = LightNormConfig.from_preset(preset, **overrides)
    for shape in ((16, 32, 4, 4), (6, 20, 3, 5)):
        run_module_vs_reference(cfg, shape, "compile", tag=10)


# ------------------------------------------------------------------------------------------
# 3. fp32-bn == nn.BatchNorm within FP32 rounding
# ------------------------------------------------------------------------------------------

# Documented tolerance: "fp32-bn" rounds every operator to FP32 and sums exactly; torch rounds
# in its own order (and computes 1/sqrt differently). On unit-scale data each output differs by
# a few FP32 ulps: |diff| <= 2e-5 * (1 + |ref|) for y and dx, 1e-4 relative for the sums
# (d_gamma, d_beta, running statistics) - far below any effect on training.
TOL = {"y": 2e-5, "dx": 2e-5, "sum": 1e-4}


def close(got, exp, tol, what):
    got = got.detach().to(torch.float64)
    exp = exp.detach().to(torch.float64)
    err = ((got - exp).abs() / (1 + exp.abs())).max().item()
    assert err <= tol, f"{what}: max scaled error {err:.3g} > {tol}"


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
@pytest.mark.parametrize("shape", [(8, 16, 5, 5), (3, 7, 4, 2), (32, 8), (4, 12, 9)], ids=str)
def test_fp32_bn_matches_torch_batchnorm(shape, eps, momentum):
    torch.manual_seed(hash((shape, eps, momentum)) % 2**31)
    c = shape[1]
    ours = (LightNorm2d if len(shape) == 4 else LightNorm1d)(c, eps, momentum, config="fp32-bn")
    theirs = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(c, eps, momentum)
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(torch.linspace(0.5, 1.5, c))
            m.bias.copy_(torch.linspace(-0.5, 0.5, c))
    for step in range(3):
        x = torch.randn(shape) * (1 + step) + step
        dy = torch.randn(shape)
        outs = []
        for m in (ours, theirs):
            xt = x.clone().requires_grad_()
            for p in m.parameters():
                p.grad = None
            y = m(xt)
            y.backward(dy)
            outs.append((y, xt.grad, m.weight.grad, m.bias.grad))
        (y0, dx0, g0, b0), (y1, dx1, g1, b1) = outs
        close(y0, y1, TOL["y"], "y")
        close(dx0, dx1, TOL["dx"], "dx")
        close(g0, g1, TOL["sum"], "weight.grad")
        close(b0, b1, TOL["sum"], "bias.grad")
        close(ours.running_mean, theirs.running_mean, TOL["sum"], "running_mean")
        close(ours.running_var, theirs.running_var, TOL["sum"], "running_var")
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3
    ours.eval()
    theirs.eval()
    x = torch.randn(shape) * 2 + 1
    close(ours(x), theirs(x), TOL["y"], "eval y")


# ------------------------------------------------------------------------------------------
# 4. Range batch norm: gradcheck and the exact-gradient formula
# ------------------------------------------------------------------------------------------


def range_bn64(x, gamma, beta, k, c_m, eps):
    """Float64 range BN (spec section 6 without rounding): x (N, C, S), stream chunks of N."""
    n_, ch, s_ = x.shape
    xs = x.permute(1, 0, 2).reshape(ch, n_ * s_)
    m = xs.shape[1] // k
    mx = torch.stack(
        [xs[:, i * m : (i + 1) * m if i < k - 1 else None].amax(dim=1) for i in range(k)], 1
    )
    mn = torch.stack(
        [xs[:, i * m : (i + 1) * m if i < k - 1 else None].amin(dim=1) for i in range(k)], 1
    )
    mu = xs.mean(dim=1)
    sigma = c_m / k * (mx - mn).sum(dim=1)
    s = 1.0 / (sigma + eps)
    y = (x - mu.view(1, -1, 1)) * (gamma * s).view(1, -1, 1) + beta.view(1, -1, 1)
    return y


def range_exact_formula64(x, dy, gamma, k, c_m, eps):
    """Spec section 7, range_exact, in float64: dx = a (dy - mean dy) everywhere, -+ a d_gamma C/K
    at each chunk's arg-max / arg-min."""
    n_, ch, s_ = x.shape
    xs = x.permute(1, 0, 2).reshape(ch, -1)
    dys = dy.permute(1, 0, 2).reshape(ch, -1)
    m = xs.shape[1] // k
    bounds = [(i * m, (i + 1) * m if i < k - 1 else xs.shape[1]) for i in range(k)]
    mu = xs.mean(dim=1, keepdim=True)
    sigma = c_m / k * sum(xs[:, a:b].amax(1) - xs[:, a:b].amin(1) for a, b in bounds)
    s = (1.0 / (sigma + eps)).unsqueeze(1)
    a_ = gamma.unsqueeze(1) * s
    x_hat = (xs - mu) * s
    d_gamma = (dys * x_hat).sum(1, keepdim=True)
    dx = a_ * (dys - dys.mean(1, keepdim=True))
    corr = a_ * d_gamma * c_m / k
    rows = torch.arange(ch)
    for a, b in bounds:
        dx[rows, xs[:, a:b].argmax(1) + a] -= corr[:, 0]
        dx[rows, xs[:, a:b].argmin(1) + a] += corr[:, 0]
    return dx.reshape(ch, n_, s_).permute(1, 0, 2), d_gamma[:, 0], dys.sum(1)


def test_range_bn_gradcheck_and_exact_formula():
    torch.manual_seed(SEED % 2**31)
    k, eps, shape = 4, 1e-3, (8, 3, 5)
    c_m = 1 / math.sqrt(2 * math.log(8 * 5 // k))
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    gamma = (torch.rand(3, dtype=torch.float64) + 0.5).requires_grad_()
    beta = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: range_bn64(*a, k, c_m, eps), (x, gamma, beta))
    dy = torch.randn(shape, dtype=torch.float64)
    range_bn64(x, gamma, beta, k, c_m, eps).backward(dy)
    dx, d_gamma, d_beta = range_exact_formula64(x.detach(), dy, gamma.detach(), k, c_m, eps)
    torch.testing.assert_close(dx, x.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d_gamma, gamma.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d_beta, beta.grad, rtol=1e-12, atol=1e-12)


def test_range_exact_module_matches_float64_autograd():
    """range-fp32 + range_exact: the module's custom backward == autograd of float64 range BN,
    within FP32 rounding (same constant C(m) rounded to FP32 in both)."""
    cfg = LightNormConfig.from_preset("range-fp32", grad_mode="range_exact")
    torch.manual_seed(3)
    shape = (16, 6, 3, 3)
    x = torch.randn(shape)
    dy = torch.randn(shape)
    m = LightNorm2d(6, eps=1e-3, config=cfg)
    with torch.no_grad():
        m.weight.copy_(torch.linspace(0.5, 1.5, 6))
    xt = x.clone().requires_grad_()
    m(xt).backward(dy)
    consts = ref.layer_constants(16 * 9, cfg, 1e-3)
    x64 = x.double().reshape(16, 6, 9).requires_grad_()
    g64 = m.weight.detach().double().requires_grad_()
    b64 = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    range_bn64(x64, g64, b64, cfg.num_chunks, consts.range_const, consts.eps).backward(
        dy.double().reshape(16, 6, 9)
    )
    close(xt.grad.reshape(16, 6, 9), x64.grad, 1e-4, "dx")
    close(m.weight.grad, g64.grad, 1e-4, "d_gamma")
    close(m.bias.grad, b64.grad, 1e-4, "d_beta")


# ------------------------------------------------------------------------------------------
# 5. The nn.BatchNorm contract
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"), [(LightNorm1d, nn.BatchNorm1d), (LightNorm2d, nn.BatchNorm2d)]
)
def test_signature_buffers_and_state_dict_keys(ours, theirs):
    sig_o = inspect.signature(ours.__init__).parameters
    sig_t = inspect.signature(theirs.__init__).parameters
    assert list(sig_o)[: len(sig_t)] == list(sig_t)
    for name, par in sig_t.items():
        assert sig_o[name].default == par.default and sig_o[name].kind == par.kind, name
    assert sig_o["config"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig_o["config"].default == "lightnorm"
    for kwargs in ({}, {"affine": False}, {"track_running_stats": False}, {"bias": False}):
        a, b = ours(5, **kwargs), theirs(5, **kwargs)
        assert list(a.state_dict()) == list(b.state_dict())
        assert [n for n, _ in a.named_buffers()] == [n for n, _ in b.named_buffers()]
        assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


def test_state_dict_round_trip_with_batchnorm2d():
    torch.manual_seed(4)
    bn = nn.BatchNorm2d(6, momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    for _ in range(3):
        bn(torch.randn(4, 6, 3, 3) * 2 + 1)
    ln = LightNorm2d(6, momentum=0.3)
    ln.load_state_dict(bn.state_dict())  # strict
    for key, val in bn.state_dict().items():
        assert torch.equal(ln.state_dict()[key], val), key
    ln.train()
    ln(torch.randn(16, 6, 3, 3))
    back = nn.BatchNorm2d(6, momentum=0.3)
    back.load_state_dict(ln.state_dict())
    for key, val in ln.state_dict().items():
        assert torch.equal(back.state_dict()[key], val), key
    assert int(back.num_batches_tracked) == 4
    # a pre-1.2 checkpoint (no num_batches_tracked, state_dict version 1) loads like into torch
    old = bn.state_dict()
    del old["num_batches_tracked"]
    old._metadata = {"": {"version": 1}}
    ln2 = LightNorm2d(6)
    ln2.load_state_dict(old)
    assert int(ln2.num_batches_tracked) == 0


def test_train_eval_semantics_like_torch():
    torch.manual_seed(5)
    x = torch.randn(16, 4, 3, 3)
    # eval without running statistics uses the batch statistics (as torch)
    m = LightNorm2d(4, track_running_stats=False, config="lightnorm")
    assert m.running_mean is None and m.num_batches_tracked is None
    m.eval()
    y_eval = m(x)
    m.train()
    assert torch.equal(y_eval, m(x))
    # eval with running statistics does not touch them
    m = LightNorm2d(4)
    m(x)
    snap = copy.deepcopy(m.state_dict())
    m.eval()
    m(x)
    for key, val in snap.items():
        assert torch.equal(m.state_dict()[key], val), key
    # affine=False: gamma = 1, beta = 0; no parameters
    plain = LightNorm2d(4, affine=False)
    ref_m = LightNorm2d(4)
    assert torch.equal(plain(x), ref_m(x))
    assert list(plain.parameters()) == []
    # bias=False (torch 2.13 keyword): beta = 0, weight still learnable
    nb = LightNorm2d(4, bias=False)
    xt = x.clone().requires_grad_()
    nb(xt).sum().backward()
    assert nb.bias is None and nb.weight.grad is not None and xt.grad is not None


def test_channels_last_and_double_backward():
    torch.manual_seed(7)
    x = torch.randn(16, 8, 4, 4)
    m = LightNorm2d(8)
    y = m(x.clone())
    xl = x.clone().to(memory_format=torch.channels_last).requires_grad_()
    m2 = LightNorm2d(8)
    yl = m2(xl)
    assert yl.is_contiguous(memory_format=torch.channels_last)  # as nn.BatchNorm2d
    assert torch.equal(y, yl)
    (g,) = torch.autograd.grad(yl.sum(), xl, create_graph=True)
    with pytest.raises(RuntimeError):  # the custom backward is not differentiable
        g.sum().backward()


def test_convert_and_revert_with_filter():
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8, momentum=None)),
        nn.Flatten(),
        nn.Linear(8 * 16, 10),
        nn.BatchNorm1d(10, eps=1e-3),
    )
    model.train()
    for _ in range(2):
        model(torch.randn(16, 3, 4, 4))
    model.eval()
    x = torch.randn(16, 3, 4, 4)
    y_before = model(x)
    params = {n: p for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    out = convert_batchnorm(model, config="fp32-bn", module_filter=lambda name, mod: name != "3.1")
    assert out is model  # in place
    assert type(model[1]) is LightNorm2d and type(model[3][1]) is nn.BatchNorm2d
    assert type(model[6]) is LightNorm1d and model[6].eps == 1e-3 and not model[6].training
    assert model[1].config == PRESETS["fp32-bn"]
    for n, p in model.named_parameters():
        assert p is params[n], n  # the same Parameter objects: optimizers keep working
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    close(model(x), y_before, 1e-4, "converted fp32-bn eval output")
    assert revert_batchnorm(model) is model
    assert type(model[1]) is nn.BatchNorm2d and type(model[6]) is nn.BatchNorm1d
    assert model[3][1].momentum is None
    for n, p in model.named_parameters():
        assert p is params[n], n
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    assert torch.equal(model(x), y_before)
    single = convert_batchnorm(nn.BatchNorm2d(3))
    assert type(single) is LightNorm2d and type(revert_batchnorm(single)) is nn.BatchNorm2d


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: LightNorm2d(4, config=LightNormConfig(num_chunks=3)), "num_chunks"),
        (lambda: LightNorm2d(4, config="no-such-preset"), "preset"),
        (lambda: LightNorm2d(4, config=42), "config"),
        (
            lambda: LightNorm2d(
                4, config=LightNormConfig(statistics="variance", grad_mode="range_exact")
            ),
            "grad_mode",
        ),
        (
            lambda: LightNorm2d(4, config=LightNormConfig(compute_format=FloatFormat(9, 4))),
            "exp_bits",
        ),
        (lambda: LightNorm2d(4, backend="cuda-graphs"), "backend"),
        (lambda: convert_batchnorm(nn.BatchNorm2d(4), config="nope"), "preset"),
        # the RTL baseline's sequential accumulation: the reference model only
        (lambda: LightNorm2d(4, config="fp32-bn-seq"), "accumulation"),
    ],
)
def test_bad_config_raises_value_error_naming_field(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs_raise_value_error():
    m = LightNorm2d(4)
    with pytest.raises(ValueError, match="n \\(values per channel\\)"):
        m(torch.randn(1, 4, 1, 1))  # n = 1: no training pass
    with pytest.raises(ValueError, match="4D"):
        m(torch.randn(8, 4))
    with pytest.raises(ValueError, match="eps"):
        LightNorm2d(4, eps=-1.0)(torch.randn(8, 4, 2, 2))
    with torch.no_grad():
        m.weight[0] = math.nan
    with pytest.raises(ValueError, match="weight"):
        m(torch.randn(8, 4, 2, 2))
