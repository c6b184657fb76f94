"""Independent oracle tests for lightnorm.arith: add, sub, mul, recip, rsqrt, sum_round.

Each result must be the exact real result rounded once to the format (see exact_ref):
exhaustive pairs for E4M3 / E5M2 (vectorised exact integer oracle), random pairs
(format values and arbitrary float64) for fp10_e5m4, fp12_e6m5, bfloat16, fp32_e8m23
through the scalar Fraction oracle, adversarial near-tie / near-boundary cases, all
positive (and negative) values of small formats for recip / rsqrt, exact sums with
huge cancellation for sum_round.  Bit-exact comparisons; random inputs from SEED.
"""

from __future__ import annotations

import math
import signal
from fractions import Fraction

import numpy as np
import pytest
from exact_ref import (
    assert_same_bits,
    decode_bits,
    finite_values,
    fmt_params,
    max_normal,
    min_subnormal,
    n_positive_finite,
    positive_finite_values,
    round_fraction,
    round_rsqrt,
    round_scaled,
)

from lightnorm.arith import add, mul, recip, rsqrt, sub, sum_round
from lightnorm.formats import FloatFormat

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SEED = 20251126  # every random input below derives from this seed
print(f"[test_arith] SEED={SEED}")

MODES = [(r, o) for r in ("rne", "rtz") for o in ("inf", "saturate")]
MODE_IDS = [f"{r}-{o}" for r, o in MODES]
OPS = {"add": add, "sub": sub, "mul": mul}


@pytest.fixture(autouse=True)
def _time_limit():
    """Turn a hang in the code under test into a failure (30 s per test, POSIX only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def _alarm(signum, frame):
        raise TimeoutError("test exceeded 30 s (hang in the code under test?)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def stable_rng(tag: int) -> np.random.Generator:
    return np.random.default_rng([SEED, tag])


def call(fn, *args, E, M, r, o, **kw):
    out = fn(*args, FloatFormat(E, M), rounding=r, overflow=o, **kw)
    assert getattr(out, "dtype", None) == np.float64, (
        f"{fn.__name__}: got {type(out)} {getattr(out, 'dtype', None)}"
    )
    return np.asarray(out)


def F(x) -> Fraction:
    return Fraction(float(x))


def signbit(x) -> bool:
    return bool(np.signbit(np.float64(x)))


def exact_binop(op: str, a: float, b: float) -> float | Fraction:
    """Exact result as a Fraction, or a signed float zero where the result is exactly 0
    (IEEE zero-sign rules: x + (-x) = +0, (-0) + (-0) = -0, (-0) - (+0) = -0,
    product sign = xor of the signs)."""
    fa, fb = F(a), F(b)
    if op == "add":
        q = fa + fb
        if q == 0:
            return -0.0 if (fa == 0 and fb == 0 and signbit(a) and signbit(b)) else 0.0
    elif op == "sub":
        q = fa - fb
        if q == 0:
            return -0.0 if (fa == 0 and fb == 0 and signbit(a) and not signbit(b)) else 0.0
    else:
        q = fa * fb
        if q == 0:
            return -0.0 if signbit(a) != signbit(b) else 0.0
    return q


def oracle(q, E, M, r, o) -> float:
    if isinstance(q, float):  # signed exact zero
        return q
    return round_fraction(q, E, M, r, o)


def random_f64_in_range(rng, n, E, M, far=0.03) -> np.ndarray:
    """Random finite float64: exponents mostly in [emin-M-4, emax+2], a fraction ``far``
    anywhere in [-1020, 1020); half of them with only M+3 significant fraction bits
    (so exact ties happen)."""
    _, emin, emax = fmt_params(E, M)
    ex = rng.integers(emin - M - 4, emax + 3, n)
    ex = np.where(rng.random(n) < far, rng.integers(-1020, 1020, n), ex)
    frac = rng.integers(0, 2**52, n, dtype=np.uint64)
    keep = np.uint64(52 - (M + 3))
    frac = np.where(rng.random(n) < 0.5, (frac >> keep) << keep, frac)
    sign = rng.integers(0, 2, n).astype(np.uint64)
    bits = (sign << np.uint64(63)) | ((ex + 1023).astype(np.uint64) << np.uint64(52)) | frac
    return bits.view(np.float64)


def random_format_values(rng, n, E, M) -> np.ndarray:
    """Random finite values of the format (uniform over finite bit patterns, both signs)."""
    p = rng.integers(0, n_positive_finite(E, M), n)
    v = decode_bits(p, E, M)
    return np.where(rng.random(n) < 0.5, -v, v)


# ======================================================================================
# exhaustive pairs, small formats (vectorised exact integer oracle)
# ======================================================================================
SMALL_PAIRS = [(4, 3), (5, 2)]


def _exact_pairs(E, M, op):
    v = finite_values(E, M)
    A, B = (g.ravel() for g in np.meshgrid(v, v, indexing="ij"))
    sa, sb = np.signbit(A), np.signbit(B)
    if op in ("add", "sub"):
        _, emin, _ = fmt_params(E, M)
        # every value is an integer multiple of min_subnormal = 2**(emin-M)
        na = np.ldexp(np.abs(A), -(emin - M)).astype(np.int64)
        nb = np.ldexp(np.abs(B), -(emin - M)).astype(np.int64)
        assert np.array_equal(np.ldexp(na.astype(np.float64), emin - M), np.abs(A))
        ia = np.where(sa, -na, na)
        ib = np.where(sb, -nb, nb)
        s = ia + ib if op == "add" else ia - ib
        sign = s < 0
        zero = s == 0
        if op == "add":
            zsign = sa & sb
        else:
            zsign = sa & ~sb & (na == 0) & (nb == 0)
        sign = np.where(zero, zsign & (na == 0) & (nb == 0), sign)
        n, k = np.abs(s), np.full(s.shape, emin - M)
    else:
        ma, ea = np.frexp(np.abs(A))
        mb, eb = np.frexp(np.abs(B))
        ia = np.ldexp(ma, M + 1).astype(np.int64)  # M+1-bit integer significands
        ib = np.ldexp(mb, M + 1).astype(np.int64)
        assert np.array_equal(np.ldexp(ia.astype(np.float64), ea - (M + 1)), np.abs(A))
        n = ia * ib
        k = (ea - (M + 1)) + (eb - (M + 1))
        sign = sa ^ sb
    return A, B, sign, n, k


@pytest.mark.parametrize("r,o", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("E,M", SMALL_PAIRS, ids=[f"e{E}m{M}" for E, M in SMALL_PAIRS])
def test_binop_exhaustive_pairs(E, M, op, r, o):
    A, B, sign, n, k = _exact_pairs(E, M, op)
    exp = round_scaled(sign, n, k, E, M, r, o)
    got = call(OPS[op], A, B, E=E, M=M, r=r, o=o)
    assert_same_bits(got, exp, A, f"{op} e{E}m{M} {r}/{o} (all pairs)", inputs2=B)


def test_binop_exhaustive_oracle_crosscheck():
    """The vectorised pair oracle against the Fraction oracle on a sample."""
    rng = stable_rng(1)
    for E, M in SMALL_PAIRS:
        for op in ("add", "sub", "mul"):
            A, B, sign, n, k = _exact_pairs(E, M, op)
            idx = rng.choice(A.size, 3000, replace=False)
            for r, o in MODES:
                vec = round_scaled(sign[idx], n[idx], k[idx], E, M, r, o)
                ref = np.array(
                    [
                        oracle(exact_binop(op, a, b), E, M, r, o)
                        for a, b in zip(A[idx], B[idx], strict=True)
                    ]
                )
                assert_same_bits(
                    vec, ref, A[idx], f"pair-oracle {op} e{E}m{M} {r}/{o}", inputs2=B[idx]
                )


def test_binop_broadcasting_and_float32_inputs():
    E, M = 5, 4
    v = finite_values(E, M)[::7]
    w = finite_values(E, M)[::11]
    got = add(v[:, None], w[None, :], FloatFormat(E, M))
    assert got.shape == (v.size, w.size) and got.dtype == np.float64
    exp = np.array([[oracle(exact_binop("add", a, b), E, M, "rne", "inf") for b in w] for a in v])
    assert_same_bits(
        got, exp, np.broadcast_to(v[:, None], got.shape), "add broadcast", inputs2=w[None, :]
    )
    got32 = mul(v.astype(np.float32)[:, None], w.astype(np.float32)[None, :], FloatFormat(E, M))
    assert got32.dtype == np.float64
    exp = np.array([[oracle(exact_binop("mul", a, b), E, M, "rne", "inf") for b in w] for a in v])
    assert_same_bits(
        got32, exp, np.broadcast_to(v[:, None], got32.shape), "mul float32 in", inputs2=w[None, :]
    )


@pytest.mark.parametrize(
    "fn,a,b,want",
    [
        (add, 1.0, 2.0**-5, 1.0),
        (sub, 1.0, -(2.0**-5), 1.0),
        (mul, 1.5, 1.5, 2.25),
        (add, 1.0, 3 * 2.0**-5, 1.125),
    ],
    ids=["add", "sub", "mul", "add2"],
)
def test_binop_zero_dim_inputs(fn, a, b, want):
    f = FloatFormat(5, 4)
    for x, y in ((np.array(a), np.array(b)), (np.float64(a), np.float64(b)), (a, b)):
        got = np.asarray(fn(x, y, f))
        assert got.shape == () and got.dtype == np.float64, (type(x), got.shape, got.dtype)
        assert float(got) == want, (fn.__name__, a, b, float(got), want)
    assert np.asarray(recip(np.array(4.0), f)).shape == ()
    assert float(np.asarray(rsqrt(np.array(4.0), f))) == 0.5


# ======================================================================================
# random pairs (Fraction oracle)
# ======================================================================================
RAND_FORMATS = [(5, 4), (6, 5), (8, 7), (8, 23)]


@pytest.mark.parametrize("kind", ["format_values", "any_float64"])
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("E,M", RAND_FORMATS, ids=[f"e{E}m{M}" for E, M in RAND_FORMATS])
def test_binop_random_pairs(E, M, op, kind):
    rng = stable_rng(
        10 + 7 * E + 31 * M + (1000 if kind == "any_float64" else 0) + 100_000 * list(OPS).index(op)
    )
    n = 2500
    gen = random_format_values if kind == "format_values" else random_f64_in_range
    a, b = gen(rng, n, E, M), gen(rng, n, E, M)
    if kind == "format_values" and op != "mul":
        # make cancellation frequent: b close to -a (or a) in a third of the pairs
        j = rng.random(n) < 0.33
        b = np.where(
            j, (-a if op == "add" else a) * (1 + rng.integers(-8, 9, n) * 2.0 ** -(M + 1)), b
        )
    exact = [exact_binop(op, x, y) for x, y in zip(a, b, strict=True)]
    for r, o in MODES:
        exp = np.array([oracle(q, E, M, r, o) for q in exact])
        got = call(OPS[op], a, b, E=E, M=M, r=r, o=o)
        assert_same_bits(got, exp, a, f"{op} e{E}m{M} {kind} {r}/{o} seed={SEED}", inputs2=b)


# ======================================================================================
# adversarial cases: exact result just off a tie / a representable value / a boundary
# ======================================================================================
def _adversarial_pairs(E, M):
    _, emin, emax = fmt_params(E, M)
    u = math.ldexp(1, -M)  # ulp of 1
    mx = float(max_normal(E, M))
    ms = float(min_subnormal(E, M))
    hu = math.ldexp(1, emax - M - 1)
    tinies = [2.0**-60, 2.0**-70, 2.0**-100, 2.0**-1000, 5e-324]
    bases = [
        1.0,
        1 + u,
        1.5,
        2.0 - u,
        math.ldexp(1, emin),
        math.ldexp(1, emin) + ms,
        mx,
        mx / 2,
        math.ldexp(1, emax),
        math.ldexp(1, emin + 1),
    ]
    pairs = []
    for base in bases:
        for t in tinies:
            for s in (1.0, -1.0):
                pairs += [(s * base, -s * t), (s * base, s * t), (-s * t, s * base)]
    # ties (not values of the format) nudged by a tiny amount, split in several ways
    ties = [
        1 + u / 2,
        1 + 1.5 * u,
        2 - u / 2,
        ms / 2,
        1.5 * ms,
        math.ldexp(1, emin) - ms / 2,
        mx + hu,
    ]
    for tie in ties:
        for t in tinies:
            for s in (1.0, -1.0):
                pairs += [(s * tie, s * t), (s * tie, -s * t)]
    # the tie reached as (representable) + (half ulp -/+ tiny)
    for base, half in (
        (1.0, u / 2),
        (1 + u, u / 2),
        (2 - u, u / 2),
        (mx, hu),
        (0.0, ms / 2),
        (ms, ms / 2),
    ):
        for t in tinies[:3]:
            for s in (1.0, -1.0):
                pairs += [
                    (s * base, s * (half - t * half)),
                    (s * base, s * (half + t * half)),
                    (s * base, s * half),
                ]
    return [(float(a), float(b)) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]


def _adversarial_mul(E, M):
    _, _, emax = fmt_params(E, M)
    u = math.ldexp(1, -M)
    mx = float(max_normal(E, M))
    pairs = [(1 + 2.0**-27, 1 - 2.0**-27), (-(1 + 2.0**-27), 1 - 2.0**-27)]  # = 1 - 2**-54
    for c in (1 + u / 2, 1 + 1.5 * u, 2 - u / 2):  # ties scaled by (1 - 2**-54): just below the tie
        pairs += [(c * (1 + 2.0**-27), 1 - 2.0**-27), (-c * (1 - 2.0**-27), 1 + 2.0**-27)]
    for j in range(M, M + 5):
        for s in (1.0, -1.0):
            pairs += [
                (s * mx, 1 + 2.0**-j),
                (s * mx, 1 - 2.0**-j),
                (mx, s * (1 + 2.0**-j - 2.0**-52)),
            ]
    pairs += [
        (mx, 2.0),
        (math.sqrt(mx) * 1.0001, math.sqrt(mx)),
        (1e-300, 1e-300),
        (-1e-300, 1e-300),
        (5e-324, 0.5),
        (-5e-324, 0.5),
    ]
    return [(float(a), float(b)) for a, b in pairs if math.isfinite(a * 1.0) and math.isfinite(b)]


ADV_FORMATS = [(5, 4), (6, 3), (5, 6), (6, 5), (6, 8), (8, 7), (5, 10), (8, 23), (2, 1)]


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("E,M", ADV_FORMATS, ids=[f"e{E}m{M}" for E, M in ADV_FORMATS])
def test_binop_adversarial(E, M, op):
    groups = {
        "add": _adversarial_pairs(E, M),
        "sub": [(a, -b) for a, b in _adversarial_pairs(E, M)],
        "mul": _adversarial_mul(E, M),
    }
    for pairs in [groups[op]]:
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        exact = [exact_binop(op, x, y) for x, y in pairs]
        for r, o in MODES:
            exp = np.array([oracle(q, E, M, r, o) for q in exact])
            got = call(OPS[op], a, b, E=E, M=M, r=r, o=o)
            assert_same_bits(got, exp, a, f"adversarial {op} e{E}m{M} {r}/{o}", inputs2=b)


@pytest.mark.parametrize(
    "E,M", [(5, 4), (8, 7), (8, 23), (2, 1)], ids=["e5m4", "e8m7", "e8m23", "e2m1"]
)
def test_mul_product_beyond_float64(E, M):
    """Finite inputs whose exact product overflows (or underflows) float64: rtz/inf and
    saturate must give +-max_normal (+-0 for underflow), rne/inf +-Inf."""
    pairs = [
        (1e300, 1e300),
        (-1e300, 1e300),
        (1e200, -1e200),
        (1.7976931348623157e308, 2.0),
        (1e-300, 1e-300),
        (-1e-300, 1e-300),
        (5e-324, 5e-324),
    ]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    for r, o in MODES:
        exp = np.array([oracle(exact_binop("mul", x, y), E, M, r, o) for x, y in pairs])
        assert_same_bits(
            call(mul, a, b, E=E, M=M, r=r, o=o), exp, a, f"mul huge e{E}m{M} {r}/{o}", inputs2=b
        )


def test_add_sub_exact_zero_signs():
    E, M = 5, 4
    f = FloatFormat(E, M)
    cases_add = [
        (0.0, 0.0, 0.0),
        (0.0, -0.0, 0.0),
        (-0.0, 0.0, 0.0),
        (-0.0, -0.0, -0.0),
        (1.5, -1.5, 0.0),
        (-1.5, 1.5, 0.0),
        (1e-300, -1e-300, 0.0),
        (-3.0, 3.0, 0.0),
    ]
    cases_sub = [
        (0.0, 0.0, 0.0),
        (-0.0, 0.0, -0.0),
        (0.0, -0.0, 0.0),
        (-0.0, -0.0, 0.0),
        (1.5, 1.5, 0.0),
        (-1.5, -1.5, 0.0),
    ]
    for fn, cases in ((add, cases_add), (sub, cases_sub)):
        a = np.array([c[0] for c in cases])
        b = np.array([c[1] for c in cases])
        exp = np.array([c[2] for c in cases])
        for r, o in MODES:
            assert_same_bits(
                fn(a, b, f, rounding=r, overflow=o),
                exp,
                a,
                f"{fn.__name__} zero sign {r}/{o}",
                inputs2=b,
            )


def test_negative_underflow_gives_minus_zero():
    E, M = 5, 4
    ms = float(min_subnormal(E, M))
    f = FloatFormat(E, M)
    for r, o in MODES:
        got = add(
            np.array([-ms / 4, ms / 4, -ms / 2]),
            np.array([0.0, -0.0, 0.0]),
            f,
            rounding=r,
            overflow=o,
        )
        assert_same_bits(got, np.array([-0.0, 0.0, -0.0]), None, f"add underflow sign {r}/{o}")
        got = mul(np.array([-ms, ms]), np.array([0.25, -0.25]), f, rounding=r, overflow=o)
        assert_same_bits(got, np.array([-0.0, -0.0]), None, f"mul underflow sign {r}/{o}")


def test_mul_exact_zero_sign_ieee():
    """Exact zero products: sign = xor of the operand signs (IEEE 754; the contract's
    'rounded as quantize' keeps the sign of the exact product)."""
    f = FloatFormat(5, 4)
    a = np.array([0.0, -0.0, 0.0, -0.0, -2.0, 3.0])
    b = np.array([1.0, 1.0, -1.0, -1.0, 0.0, -0.0])
    exp = np.array([0.0, -0.0, -0.0, 0.0, -0.0, -0.0])
    for r, o in MODES:
        assert_same_bits(
            mul(a, b, f, rounding=r, overflow=o), exp, a, f"mul zero sign {r}/{o}", inputs2=b
        )


# ======================================================================================
# recip / rsqrt
# ======================================================================================
UNARY_EXHAUSTIVE = [(5, 4), (6, 5), (5, 10)]


@pytest.mark.parametrize("E,M", UNARY_EXHAUSTIVE, ids=[f"e{E}m{M}" for E, M in UNARY_EXHAUSTIVE])
def test_recip_all_values(E, M):
    v = positive_finite_values(E, M)[1:]
    if v.size < 5000:
        v = np.concatenate([v, -v])  # negatives too (all of them for the small formats)
    for r, o in MODES:
        exp = np.array([round_fraction(1 / F(x), E, M, r, o) for x in v])
        got = call(recip, v, E=E, M=M, r=r, o=o)
        assert_same_bits(got, exp, v, f"recip e{E}m{M} {r}/{o} (all values)")


@pytest.mark.parametrize("E,M", UNARY_EXHAUSTIVE, ids=[f"e{E}m{M}" for E, M in UNARY_EXHAUSTIVE])
def test_rsqrt_all_values(E, M):
    v = positive_finite_values(E, M)[1:]
    for r, o in MODES:
        exp = np.array([round_rsqrt(F(x), E, M, r, o) for x in v])
        got = call(rsqrt, v, E=E, M=M, r=r, o=o)
        assert_same_bits(got, exp, v, f"rsqrt e{E}m{M} {r}/{o} (all values)")


@pytest.mark.parametrize("E,M", [(8, 23), (8, 7), (5, 4)], ids=["e8m23", "e8m7", "e5m4"])
def test_recip_rsqrt_random(E, M):
    rng = stable_rng(40 + E + M)
    fv = np.abs(random_format_values(rng, 2000, 8, 23))  # random float32 values
    fv = fv[fv > 0]
    anyv = np.abs(random_f64_in_range(rng, 2000, E, M))
    anyv = anyv[anyv > 0]
    v = np.concatenate([fv, anyv, [1e-300, 1e300, 1.7976931348623157e308]])
    sv = np.concatenate([v, -v])
    for r, o in MODES:
        exp = np.array([round_fraction(1 / F(x), E, M, r, o) for x in sv])
        assert_same_bits(
            call(recip, sv, E=E, M=M, r=r, o=o),
            exp,
            sv,
            f"recip e{E}m{M} random {r}/{o} seed={SEED}",
        )
        exp = np.array([round_rsqrt(F(x), E, M, r, o) for x in v])
        assert_same_bits(
            call(rsqrt, v, E=E, M=M, r=r, o=o), exp, v, f"rsqrt e{E}m{M} random {r}/{o} seed={SEED}"
        )


@pytest.mark.parametrize("E,M", [(5, 4), (8, 23)], ids=["e5m4", "e8m23"])
def test_recip_rsqrt_float64_subnormal_inputs(E, M):
    """Inputs are any finite float64: 1/v can exceed the float64 range."""
    v = np.array(
        [5e-324, 3 * 5e-324, 2.0**-1030, 2.0**-1023 * 1.5, 1e-310, 2.2250738585072014e-308]
    )
    sv = np.concatenate([v, -v])
    for r, o in MODES:
        exp = np.array([round_fraction(1 / F(x), E, M, r, o) for x in sv])
        assert_same_bits(
            call(recip, sv, E=E, M=M, r=r, o=o), exp, sv, f"recip e{E}m{M} tiny {r}/{o}"
        )
        exp = np.array([round_rsqrt(F(x), E, M, r, o) for x in v])
        assert_same_bits(call(rsqrt, v, E=E, M=M, r=r, o=o), exp, v, f"rsqrt e{E}m{M} tiny {r}/{o}")


@pytest.mark.parametrize("E,M", [(5, 4), (8, 23)], ids=["e5m4", "e8m23"])
def test_recip_rsqrt_specials(E, M):
    f = FloatFormat(E, M)
    for r in ("rne", "rtz"):
        got = recip(np.array([0.0, -0.0, np.inf, -np.inf]), f, rounding=r, overflow="inf")
        assert_same_bits(got, np.array([np.inf, -np.inf, 0.0, -0.0]), None, f"recip specials {r}")
        got = rsqrt(np.array([0.0, np.inf, -1.0, -1e-300, -np.inf]), f, rounding=r, overflow="inf")
        assert_same_bits(
            got, np.array([np.inf, 0.0, np.nan, np.nan, np.nan]), None, f"rsqrt specials {r}"
        )
    got = rsqrt(np.array([4.0, 0.25, 1.0]), f)
    assert_same_bits(got, np.array([0.5, 2.0, 1.0]), None, "rsqrt exact powers")


# ======================================================================================
# sum_round
# ======================================================================================
def exact_sum(values) -> Fraction:
    """Exact sum of finite float64 values (integers scaled by 2**1074)."""
    tot = 0
    for v in values:
        n, d = float(v).as_integer_ratio()
        tot += n * ((1 << 1074) // d)
    return Fraction(tot, 1 << 1074)


def sum_oracle(row, E, M, r, o) -> float:
    row = np.asarray(row, np.float64)
    if np.isnan(row).any() or (np.isposinf(row).any() and np.isneginf(row).any()):
        return math.nan
    if np.isposinf(row).any():
        return math.inf
    if np.isneginf(row).any():
        return -math.inf
    q = exact_sum(row)
    if q == 0:
        return 0.0
    return round_fraction(q, E, M, r, o)


SUM_FORMATS = [(5, 4), (6, 5), (8, 7), (8, 23), (6, 3)]


def _cancel_rows(rng, E, M, rows, cols, wide=False):
    """Random rows where a third of the entries are big values (2**(emax-4) .. 2**(emax+8),
    or up to 2**1000 when ``wide``) cancelled exactly by another third."""
    _, emin, emax = fmt_params(E, M)
    x = random_f64_in_range(rng, rows * cols, E, M, far=0.03 if wide else 0.0).reshape(rows, cols)
    half = cols // 3
    hi = 1000 if wide else emax + 8
    big = np.ldexp(1 + rng.random((rows, half)), rng.integers(emax - 4, hi, (rows, half)))
    big = np.where(rng.random((rows, half)) < 0.5, -big, big)
    x[:, :half] = big
    x[:, half : 2 * half] = -big[:, rng.permutation(half)]  # cancels the big ones exactly
    for i in range(rows):
        rng.shuffle(x[i])
    return x


def _tie_rows(rng, E, M, big):
    """Rows whose exact sum is a tie (+/- a tiny amount) under cancellation of +-big."""
    u = math.ldexp(1, -M)
    ms = float(min_subnormal(E, M))
    tiny = float(min_subnormal(E, M)) * 2.0**-30 if big < 1e100 else 2.0**-200
    out = []
    for t in (1 + u / 2, 1 + 1.5 * u, 2 - u / 2, ms / 2, 3 * ms / 2):
        for d in (0.0, tiny, -tiny):
            row = np.zeros(30)
            row[:6] = [big, t, -big, d, big / 3, -big / 3]
            out.append(rng.permutation(row))
            out.append(-rng.permutation(row))
    return np.array(out)


@pytest.mark.parametrize("E,M", SUM_FORMATS, ids=[f"e{E}m{M}" for E, M in SUM_FORMATS])
def test_sum_round_cancellation(E, M):
    rng = stable_rng(60 + E * 31 + M)
    x = _cancel_rows(rng, E, M, 150, 30)
    x = np.concatenate([x, _tie_rows(rng, E, M, float(max_normal(E, M)) * 0.75)])
    for r, o in MODES:
        exp = np.array([sum_oracle(row, E, M, r, o) for row in x])
        got = call(sum_round, x, E=E, M=M, r=r, o=o)
        assert got.shape == (x.shape[0],)
        assert_same_bits(
            got,
            exp,
            x[:, 0],
            f"sum_round e{E}m{M} {r}/{o} seed={SEED} (input = row's first element)",
        )


@pytest.mark.parametrize("E,M", SUM_FORMATS, ids=[f"e{E}m{M}" for E, M in SUM_FORMATS])
def test_sum_round_wide_range(E, M):
    """Inputs are any finite float64: exact sums over (almost) the whole float64 range."""
    rng = stable_rng(65 + E * 31 + M)
    x = np.concatenate([_cancel_rows(rng, E, M, 40, 30, wide=True), _tie_rows(rng, E, M, 1e300)])
    for r, o in MODES:
        exp = np.array([sum_oracle(row, E, M, r, o) for row in x])
        got = call(sum_round, x, E=E, M=M, r=r, o=o)
        assert_same_bits(
            got,
            exp,
            x[:, 0],
            f"sum_round wide e{E}m{M} {r}/{o} seed={SEED} (input = row's first element)",
        )


@pytest.mark.parametrize(
    "row",
    [
        [1e300, 1.5],
        [1e300, 1.5, -1e300],
        [5e-324, -5e-324, 3.0],
        [5e-324, 1.0],
        [1.7976931348623157e308, -1.7976931348623157e308, 2.0],
        [-1e-300, 1e-300, -0.0],
    ],
    ids=["1e300+1.5", "1e300+1.5-1e300", "denorm64", "denorm64+1", "dblmax", "1e-300"],
)
def test_sum_round_extreme_float64_rows(row):
    for E, M in [(5, 4), (8, 23)]:
        for r, o in MODES:
            row_a = np.array(row, np.float64)
            got = call(sum_round, row_a, E=E, M=M, r=r, o=o)
            assert_same_bits(
                got,
                np.array(sum_oracle(row_a, E, M, r, o)),
                None,
                f"sum_round({row}) e{E}m{M} {r}/{o}",
            )


def test_sum_round_named_cases():
    for E, M in [(5, 4), (6, 5), (8, 7), (8, 23)]:
        mx = float(max_normal(E, M))
        ms = float(min_subnormal(E, M))
        u = math.ldexp(1, -M)
        rows = [
            [1e30, 1.0, -1e30],
            [mx * 0.75, 1.5, -mx * 0.75],
            [mx, mx, -mx],  # intermediate overflow, exact sum representable
            [mx, mx],  # true overflow
            [-mx, -mx, 0.0],
            [1.0, u / 2],  # tie -> even (1)
            [1.0 + u, u / 2],  # tie -> even (1 + 2u)
            [1.0, u / 2, 2.0**-200],  # just above the tie
            [1.0, u / 2, -(2.0**-200)],  # just below the tie
            [1.0, -(2.0**-200)],  # just below 1: rtz -> pred(1)
            [-ms / 4, 0.0],  # negative, rounds to zero -> -0.0
            [ms / 2, 0.0],
            [1.5, -1.5],  # exact zero -> +0.0
            [-ms * 1e-5, ms * 1e-5, -0.0],
            [ms * 2.0**-20, -ms * 2.0**-20, 3.0],
        ]
        for r, o in MODES:
            for row_list in rows:
                row = np.array(row_list, np.float64)
                got = call(sum_round, row, E=E, M=M, r=r, o=o)
                exp = np.array(sum_oracle(row, E, M, r, o))
                assert_same_bits(got, exp, None, f"sum_round({row_list}) e{E}m{M} {r}/{o}")


def test_sum_round_all_negative_zeros():
    """Contract: an exact zero sum is +0.0 (even for all -0.0 inputs)."""
    got = sum_round(np.array([-0.0, -0.0]), FloatFormat(5, 4))
    assert_same_bits(got, np.array(0.0), None, "sum_round([-0, -0])")


def test_sum_round_specials():
    f = FloatFormat(5, 4)
    x = np.array(
        [
            [1.0, np.nan, 2.0],
            [np.inf, -np.inf, 1.0],
            [np.inf, 1.0, 1e30],
            [-np.inf, 1.0, 2.0],
            [np.nan, np.inf, 0.0],
            [1.0, 2.0, 3.0],
        ]
    )
    exp = np.array([np.nan, np.nan, np.inf, -np.inf, np.nan, 6.0])
    for r in ("rne", "rtz"):
        assert_same_bits(
            sum_round(x, f, rounding=r, overflow="inf"), exp, x[:, 0], f"sum_round specials {r}"
        )


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_sum_round_axis(axis):
    E, M = 6, 5
    rng = stable_rng(70)
    x = _cancel_rows(rng, E, M, 5 * 6, 7).reshape(5, 6, 7)
    got = call(sum_round, x, E=E, M=M, r="rne", o="inf", axis=axis)
    assert got.shape == np.sum(x, axis=axis).shape
    moved = np.moveaxis(x, axis, -1)
    exp = np.array(
        [sum_oracle(row, E, M, "rne", "inf") for row in moved.reshape(-1, moved.shape[-1])]
    )
    assert_same_bits(got, exp.reshape(moved.shape[:-1]), None, f"sum_round axis={axis}")
    # default axis is -1
    got = sum_round(x, FloatFormat(E, M))
    exp = np.array([sum_oracle(row, E, M, "rne", "inf") for row in x.reshape(-1, 7)]).reshape(5, 6)
    assert_same_bits(got, exp, None, "sum_round default axis")


def test_sum_round_long_float32_row():
    rng = stable_rng(80)
    E, M = 5, 4
    x = (rng.standard_normal(100_000) * 100).astype(np.float32)
    x[:100] = 3e38
    x[100:200] = -3e38
    for r, o in MODES:
        got = call(sum_round, x, E=E, M=M, r=r, o=o)
        exp = np.array(sum_oracle(x.astype(np.float64), E, M, r, o))
        assert_same_bits(got, exp, None, f"sum_round long float32 row {r}/{o}")
