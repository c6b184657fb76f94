# SPDX-License-Identifier: Apache-2.0
"""Helpers of the arithmetic-block testbenches: drive vectors through a combinational DUT,
compare bit patterns with the model's, read parameters from the DUT, knobs from the environment.

Expected results are computed up front with numpy from the reference model (lightnorm.formats,
lightnorm.arith, lightnorm.bfp); the simulation loop only applies inputs, waits 1 ns and reads
the outputs. Comparisons are exact equality of bit patterns, never a tolerance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lightnorm.formats import FloatFormat, decode, encode, quantize

__all__ = [
    "binary_op_sweeps",
    "dense_patterns",
    "mixed_ids",
    "mixed_params",
    "operand_formats",
    "param_env",
    "random_mixed_pairs",
    "n_vectors",
    "under_icarus",
    "stress_patterns",
    "MODES",
    "by_mode",
    "full_sweeps",
    "all_pairs",
    "corner_pairs",
    "random_pairs",
    "run_vectors_wide",
    "Mismatch",
    "all_patterns",
    "check_bits",
    "dut_param",
    "env_int",
    "exhaustive_enabled",
    "fmt_corners",
    "random_patterns",
    "rng_for",
    "run_vectors",
]

#: Modes (rnd_i, sat_i) as the model spells them.
RND = {0: "rne", 1: "rtz"}
OVF = {0: "inf", 1: "saturate"}


def env_int(name: str, default: int) -> int:
    """Integer knob from the environment (e.g. LN_VECTORS), ``default`` when unset or empty."""
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def full_sweeps(sim: str) -> str:
    """LN_EXHAUSTIVE value for a simulation: exhaustive sweeps always run under Verilator and
    under Icarus only when LN_FULL_ICARUS=1 (Icarus evaluates ~40-100 us per vector)."""
    return "1" if sim == "verilator" or os.environ.get("LN_FULL_ICARUS") == "1" else "0"


def under_icarus() -> bool:
    """True inside an Icarus simulation (about 10x slower per vector than Verilator here)."""
    import cocotb  # deferred: only inside a simulation

    return "icarus" in str(cocotb.SIM_NAME).lower()


def n_vectors(verilator: int, icarus: int) -> int:
    """Number of random vectors: LN_VECTORS if set, else the default of the running simulator."""
    return env_int("LN_VECTORS", icarus if under_icarus() else verilator)


def exhaustive_enabled() -> bool:
    """True when the test should sweep every input (LN_EXHAUSTIVE=1, set by the pytest wrapper)."""
    return os.environ.get("LN_EXHAUSTIVE", "1").strip() not in ("0", "", "false", "no")


def dut_param(dut: Any, name: str, default: int | None = None) -> int:
    """Value of the toplevel parameter ``name`` read through the simulator (VPI).

    Falls back to the environment variable LN_PARAM_<name> (set by the pytest wrapper) and then
    to ``default`` for simulators that do not expose parameters.
    """
    try:
        return int(getattr(dut, name).value)
    except (AttributeError, TypeError, ValueError):
        env = os.environ.get(f"LN_PARAM_{name}")
        if env is not None:
            return int(env)
        if default is None:
            raise
        return default


def rng_for(tag: str) -> np.random.Generator:
    """A numpy generator seeded from cocotb's random seed (SEED, COCOTB_RANDOM_SEED) and ``tag``."""
    import cocotb  # deferred: only inside a simulation

    seed = int(cocotb.RANDOM_SEED)
    return np.random.default_rng([seed, *tag.encode()])


def all_patterns(fmt: FloatFormat) -> np.ndarray:
    """Every bit pattern of ``fmt`` (0 .. 2^(1+E+M) - 1), uint64."""
    return np.arange(1 << fmt.total_bits, dtype=np.uint64)


def fmt_corners(fmt: FloatFormat) -> np.ndarray:
    """Edge patterns of ``fmt``: +-0, min/max subnormal, min/max normal, 1.0, Inf, NaNs and
    their neighbours."""
    m, e = fmt.man_bits, fmt.exp_bits
    ones = (1 << e) - 1
    pos = [
        0,
        1,
        2,
        (1 << m) - 1,  # max subnormal
        1 << m,  # min normal
        (1 << m) + 1,
        (fmt.bias << m),  # 1.0
        (fmt.bias << m) + 1,
        ((fmt.bias << m) - 1),
        (ones - 1) << m,  # 2^emax
        (ones << m) - 1,  # max normal
        ((ones << m) - 2),
        ones << m,  # Inf
        (ones << m) | 1,  # NaN
        (ones << m) | (1 << (m - 1)),  # canonical NaN
    ]
    sign = 1 << (e + m)
    return np.array(sorted(set(pos + [p | sign for p in pos])), dtype=np.uint64)


def random_patterns(rng: np.random.Generator, fmt: FloatFormat, n: int) -> np.ndarray:
    """``n`` random bit patterns of ``fmt``, uint64 (uniform over patterns)."""
    return rng.integers(0, 1 << fmt.total_bits, n, dtype=np.uint64)


class Mismatch(AssertionError):
    """A DUT output differs from the model's (first failing vector in the message)."""


def check_bits(
    name: str,
    got: np.ndarray,
    exp: np.ndarray,
    inputs: Mapping[str, np.ndarray],
    fmt: FloatFormat | None = None,
    log: Any = None,
) -> int:
    """Assert got == exp elementwise (bit patterns); report the first mismatches with inputs."""
    got = np.asarray(got, dtype=np.uint64)
    exp = np.asarray(exp, dtype=np.uint64)
    bad = np.flatnonzero(got != exp)
    if bad.size:
        lines = [f"{name}: {bad.size} of {got.size} vectors differ; first ones:"]
        for i in bad[:8]:
            ins = ", ".join(f"{k}=0x{int(v[i]):x}" for k, v in inputs.items())
            line = f"  [{i}] {ins}: dut 0x{int(got[i]):x} model 0x{int(exp[i]):x}"
            if fmt is not None:
                line += f" ({decode(int(got[i]), fmt)!r} vs {decode(int(exp[i]), fmt)!r})"
            lines.append(line)
        raise Mismatch("\n".join(lines))
    if log is not None:
        log.info("%s: %d vectors, all bit-exact", name, got.size)
    return int(got.size)


def _setter(handle: Any) -> Any:
    """A fast deposit function for ``handle`` (cocotb's GPI object when available).

    The public ``handle.value = v`` path costs ~15 us per write (range checks, LogicArray
    conversions, write scheduling); the combinational sweeps write millions of vectors, so they
    deposit through the simulator object directly (cocotb 2.1's sim_obj API; action 0 =
    deposit). LN_SLOW_IO=1 forces the public path.
    """
    gpi = getattr(handle, "_handle", None)
    width = len(handle)
    if os.environ.get("LN_SLOW_IO") == "1" or gpi is None:
        return lambda v: setattr(handle, "value", v)
    if width <= 32:
        return lambda v: gpi.set_signal_val_int(0, v)
    return lambda v: gpi.set_signal_val_binstr(0, format(v, f"0{width}b"))


def _getter(handle: Any) -> Any:
    """A fast unsigned read of ``handle`` (see :func:`_setter`); X/Z raise ValueError."""
    gpi = getattr(handle, "_handle", None)
    width = len(handle)
    if os.environ.get("LN_SLOW_IO") == "1" or gpi is None:
        return lambda: handle.value.to_unsigned()  # noqa: PLW0108 (re-reads the signal)
    if width <= 32:
        # get_signal_val_long returns a signed C long view of the bits: mask to the width
        mask = (1 << width) - 1
        return lambda: gpi.get_signal_val_long() & mask
    return lambda: int(gpi.get_signal_val_binstr(), 2)


async def run_vectors(
    dut: Any,
    inputs: Mapping[str, np.ndarray | int],
    outputs: Sequence[str],
    log: Any = None,
) -> dict[str, np.ndarray]:
    """Apply the input vectors one per ns to a combinational DUT and sample ``outputs``.

    ``inputs`` maps port names to integer arrays (one element per vector) or to a constant int
    (set once). Returns {output port: uint64 array}; outputs must be at most 64 bits wide
    (wider ones: :func:`run_vectors_wide`).
    """
    got = await run_vectors_wide(dut, inputs, outputs, log)
    return {k: np.asarray(v, dtype=np.uint64) for k, v in got.items()}


async def run_vectors_wide(
    dut: Any,
    inputs: Mapping[str, Any],
    outputs: Sequence[str],
    log: Any = None,
) -> dict[str, list[int]]:
    """:func:`run_vectors` for ports of any width: inputs and outputs as Python int lists."""
    from cocotb.triggers import Timer  # deferred: only inside a simulation

    arrays = {
        k: list(np.asarray(v, dtype=object).tolist()) if not isinstance(v, list) else v
        for k, v in inputs.items()
        if isinstance(v, list) or np.ndim(v) > 0
    }
    consts = {k: int(v) for k, v in inputs.items() if k not in arrays}
    n = len(next(iter(arrays.values()))) if arrays else 1
    for k, v in arrays.items():
        if len(v) != n:
            raise ValueError(f"input {k}: {len(v)} vectors, expected {n}")
    for k, c in consts.items():
        getattr(dut, k).value = c
    setters = [(_setter(getattr(dut, k)), [int(x) for x in v]) for k, v in arrays.items()]
    getters = [_getter(getattr(dut, k)) for k in outputs]
    results: list[list[int]] = [[0] * n for _ in outputs]
    settle = Timer(1, "ns")
    await settle  # constant inputs take effect
    t0 = time.perf_counter()
    if len(setters) == 2 and len(getters) == 1:  # the common case (two operands), unrolled
        (set_a, va), (set_b, vb) = setters
        get, res = getters[0], results[0]
        for i in range(n):
            set_a(va[i])
            set_b(vb[i])
            await settle
            res[i] = get()
    else:
        for i in range(n):
            for set_in, values in setters:
                set_in(values[i])
            await settle
            for j, get in enumerate(getters):
                results[j][i] = get()
    dt = time.perf_counter() - t0
    if log is not None:
        log.info("%d vectors in %.2f s (%.1f us/vector)", n, dt, 1e6 * dt / max(n, 1))
    return dict(zip(outputs, results, strict=True))


def random_pairs(
    rng: np.random.Generator, fmt: FloatFormat, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` operand pairs of ``fmt`` stressing add/mul: a quarter uniform bit patterns, the rest
    with nearby exponents (alignment shifts of 0..M+4, cancellation, carries), near-opposite
    values (b = -a +- a few ulps), and edge patterns against random ones. uint64 arrays."""
    e, m = fmt.exp_bits, fmt.man_bits
    sign_bit = np.uint64(1 << (e + m))
    a = random_patterns(rng, fmt, n)
    b = random_patterns(rng, fmt, n)
    kind = rng.integers(0, 4, n)
    # nearby exponents: b's field = a's field + small delta (clipped to the finite range)
    fa = (a >> np.uint64(m)) & np.uint64((1 << e) - 1)
    delta = rng.integers(-(m + 4), m + 5, n)
    fb = np.clip(fa.astype(np.int64) + delta, 0, (1 << e) - 2).astype(np.uint64)
    near = (b & ~np.uint64(((1 << e) - 1) << m)) | (fb << np.uint64(m))
    b = np.where(kind == 1, near, b)
    # near-opposite / near-equal: b = a +- k (pattern arithmetic moves by ulps), random sign
    k = rng.integers(-3, 4, n).astype(np.int64)
    mag = (a & ~sign_bit).astype(np.int64) + k
    mag = np.clip(mag, 0, ((1 << e) - 1) << m).astype(np.uint64)
    b = np.where(kind == 2, mag | (rng.integers(0, 2, n).astype(np.uint64) * sign_bit), b)
    # edge patterns against random operands
    corners = fmt_corners(fmt)
    b = np.where(kind == 3, corners[rng.integers(0, len(corners), n)], b)
    swap = rng.random(n) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


def corner_pairs(fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of edge patterns of ``fmt`` (fmt_corners x fmt_corners)."""
    c = fmt_corners(fmt)
    a, b = np.meshgrid(c, c, indexing="ij")
    return a.ravel(), b.ravel()


def all_pairs(fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Every operand pair of ``fmt`` (2^(2 * total_bits) pairs), a outer, b inner."""
    p = all_patterns(fmt)
    return np.repeat(p, p.size), np.tile(p, p.size)


def float_modes(n: int, rnd: Any, sat: Any) -> tuple[np.ndarray, np.ndarray]:
    """rnd/sat broadcast to ``n`` vectors (int arrays)."""
    return (
        np.broadcast_to(np.asarray(rnd), (n,)).astype(np.int64),
        np.broadcast_to(np.asarray(sat), (n,)).astype(np.int64),
    )


def by_mode(fn: Any, n: int, rnd: Any, sat: Any) -> np.ndarray:
    """Evaluate ``fn(sel, rounding, overflow) -> values`` per (rnd, sat) group; float64 array."""
    rnd_a, sat_a = float_modes(n, rnd, sat)
    out = np.zeros(n, dtype=np.float64)
    for r in (0, 1):
        for o in (0, 1):
            sel = (rnd_a == r) & (sat_a == o)
            if np.any(sel):
                with np.errstate(all="ignore"):
                    out[sel] = fn(sel, RND[r], OVF[o])
    return out


MODES = [(0, 0), (1, 0), (0, 1), (1, 1)]
"""The four (rnd_i, sat_i) combinations."""


def stress_patterns(
    rng: np.random.Generator, fin: FloatFormat, fout: FloatFormat, n: int
) -> np.ndarray:
    """``n`` bit patterns of ``fin`` that stress rounding to ``fout``: exponents from below
    fout's smallest subnormal to beyond its overflow threshold, fractions with exact ties and
    near ties at random cut positions, plus uniform patterns and edge patterns of ``fin``."""
    e, m = fin.exp_bits, fin.man_bits
    lo = max(fout.emin - fout.man_bits - 3 + fin.bias, 0)
    hi = min(fout.emax + 2 + fin.bias, (1 << e) - 2)
    field = rng.integers(lo, hi + 1, n).astype(np.uint64)
    frac = rng.integers(0, 1 << m, n, dtype=np.uint64)
    cut = rng.integers(1, m + 1, n).astype(np.uint64)
    below = (np.uint64(1) << cut) - np.uint64(1)
    half = np.uint64(1) << (cut - np.uint64(1))
    kind = rng.integers(0, 5, n)
    frac = np.where(kind == 1, (frac & ~below) | half, frac)  # exact tie
    frac = np.where(kind == 2, (frac & ~below) | (half - np.uint64(1)), frac)  # just below
    frac = np.where(kind == 3, (frac & ~below) | half | np.uint64(1), frac)  # just above
    sign = rng.integers(0, 2, n).astype(np.uint64) << np.uint64(e + m)
    pats = sign | (field << np.uint64(m)) | frac
    uniform = random_patterns(rng, fin, n)
    corners = fmt_corners(fin)
    pick = rng.random(n)
    pats = np.where(pick < 0.15, uniform, pats)
    return np.where(pick > 0.97, corners[rng.integers(0, len(corners), n)], pats)


# A model operator (va, vb, fmt, rounding, overflow) -> values, chosen per control setting.
BinaryModel = Callable[[np.ndarray, np.ndarray, FloatFormat, str, str], np.ndarray]


def model_binary(
    op_for: Callable[[dict[str, int]], BinaryModel],
    a: np.ndarray,
    b: np.ndarray,
    fmt: FloatFormat,
    controls: Mapping[str, Any],
    fa: FloatFormat | None = None,
    fb: FloatFormat | None = None,
) -> np.ndarray:
    """Expected res_o bit patterns of a binary operator block on operand patterns a, b.

    ``controls`` maps the block's control inputs (rnd_i, sat_i, and e.g. sub_i) to a scalar
    or a per-vector array; ``op_for(setting)`` gives the model operator for one setting.
    a, b are patterns of ``fa``, ``fb`` (default: the result format ``fmt``); the model
    operator gets their values and rounds once to ``fmt``."""
    n = len(a)
    names = sorted(controls)
    cols = np.stack([np.broadcast_to(np.asarray(controls[k]), (n,)) for k in names])
    va, vb = decode(a, fa or fmt), decode(b, fb or fmt)
    out = np.zeros(n, dtype=np.uint64)
    for combo in np.unique(cols, axis=1).T:
        setting = {k: int(v) for k, v in zip(names, combo, strict=True)}
        sel = np.all(cols == combo[:, None], axis=0)
        with np.errstate(all="ignore"):
            res = op_for(setting)(
                va[sel], vb[sel], fmt, RND[setting["rnd_i"]], OVF[setting["sat_i"]]
            )
        out[sel] = encode(res, fmt)
    return out


def mixed_params(cfg: Sequence[int]) -> dict[str, int]:
    """Parameters of a mixed-format operator block from (ExpBits, ManBits, AExpBits,
    AManBits, BExpBits, BManBits)."""
    names = ("ExpBits", "ManBits", "AExpBits", "AManBits", "BExpBits", "BManBits")
    return dict(zip(names, cfg, strict=True))


def mixed_ids(cfgs: Sequence[Sequence[int]]) -> list[str]:
    """pytest ids of mixed-format configurations: '<a>-<b>-to-<result>' format names."""
    return [
        f"{FloatFormat(c[2], c[3]).name}-{FloatFormat(c[4], c[5]).name}-to-"
        f"{FloatFormat(c[0], c[1]).name}"
        for c in cfgs
    ]


def param_env(params: Mapping[str, int]) -> dict[str, str]:
    """LN_PARAM_<name> environment of a simulation (the fallback of dut_param)."""
    return {f"LN_PARAM_{k}": str(v) for k, v in params.items()}


def operand_formats(dut: Any) -> tuple[FloatFormat, FloatFormat, FloatFormat]:
    """(result, operand a, operand b) formats of a binary operator block: ExpBits / ManBits
    and AExpBits / AManBits, BExpBits / BManBits (default: the result format)."""
    e, m = dut_param(dut, "ExpBits"), dut_param(dut, "ManBits")
    fa = FloatFormat(dut_param(dut, "AExpBits", e), dut_param(dut, "AManBits", m))
    fb = FloatFormat(dut_param(dut, "BExpBits", e), dut_param(dut, "BManBits", m))
    return FloatFormat(e, m), fa, fb


def _patterns_of(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Bit patterns of ``fmt`` nearest to ``values`` (quantize, saturating; NaN canonical)."""
    with np.errstate(all="ignore"):
        return encode(quantize(values, fmt, "rne", "saturate"), fmt).astype(np.uint64)


def dense_patterns(
    fmt: FloatFormat, exp_lo: int, exp_hi: int, ties: Sequence[FloatFormat], rng: Any
) -> np.ndarray:
    """Patterns of ``fmt`` that stress a mixed-format operator against an exhaustive sweep of
    the other operand: every normal exponent of ``fmt`` in [exp_lo, exp_hi] (clamped to its
    finite range; of more than 64, the 24 lowest, the 24 highest and 16 spread between) with
    the fractions 0, 1, 100..0, all ones, the tie pattern of each format of ``ties`` with fewer
    fraction bits (the half ulp of that grid at the same exponent) and its neighbours, and two
    random ones; a random sign each; plus the edge patterns of ``fmt``."""
    e, m = fmt.exp_bits, fmt.man_bits
    lo, hi = max(exp_lo, fmt.emin), min(exp_hi, fmt.emax)
    exps = list(range(lo, hi + 1))
    if len(exps) > 64:
        mid = exps[24:-24]
        exps = exps[:24] + [mid[i * len(mid) // 16] for i in range(16)] + exps[-24:]
    fracs = {0, 1, 1 << (m - 1), (1 << m) - 1}
    for t in ties:
        if t.man_bits < m:
            h = 1 << (m - t.man_bits - 1)
            fracs |= {h, h - 1, h + 1, (1 << m) - h}
    out = []
    for x in exps:
        fr = sorted(fracs) + [int(v) for v in rng.integers(0, 1 << m, 2)]
        sign = rng.integers(0, 2, len(fr)).astype(np.uint64) << np.uint64(e + m)
        field = np.uint64(x + fmt.bias) << np.uint64(m)
        out.append(sign | field | np.array(fr, dtype=np.uint64))
    return np.unique(np.concatenate([*out, fmt_corners(fmt)]))


def random_mixed_pairs(
    rng: np.random.Generator, fa: FloatFormat, fb: FloatFormat, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` operand pairs (a of ``fa``, b of ``fb``) stressing a mixed-format add/mul: a is
    uniform (an eighth edge patterns); b a quarter uniform, a quarter near a's magnitude (a's
    value in fb with its exponent moved by up to fb's fraction width + 4), a quarter
    near-opposite (a's value in fb, moved by a few ulps of fb, random sign: cancellation), a
    quarter edge patterns of fb. uint64 arrays."""
    eb, mb = fb.exp_bits, fb.man_bits
    sign_bit = np.uint64(1 << (eb + mb))
    a = random_patterns(rng, fa, n)
    ca = fmt_corners(fa)
    a = np.where(rng.random(n) < 0.125, ca[rng.integers(0, len(ca), n)], a)
    va = decode(a, fa)
    b = random_patterns(rng, fb, n)
    kind = rng.integers(0, 4, n)
    as_b = _patterns_of(np.where(np.isfinite(va), va, 1.0), fb)
    field = (as_b >> np.uint64(mb)) & np.uint64((1 << eb) - 1)
    delta = rng.integers(-(mb + 4), mb + 5, n)
    moved = np.clip(field.astype(np.int64) + delta, 0, (1 << eb) - 2).astype(np.uint64)
    frac = random_patterns(rng, fb, n) & np.uint64((1 << mb) - 1)
    near = (as_b & sign_bit) | (moved << np.uint64(mb)) | frac
    b = np.where(kind == 1, near, b)
    k = rng.integers(-3, 4, n).astype(np.int64)
    mag = np.clip((as_b & ~sign_bit).astype(np.int64) + k, 0, ((1 << eb) - 1) << mb)
    opp = mag.astype(np.uint64) | (rng.integers(0, 2, n).astype(np.uint64) * sign_bit)
    b = np.where(kind == 2, opp, b)
    cb = fmt_corners(fb)
    b = np.where(kind == 3, cb[rng.integers(0, len(cb), n)], b)
    return a, b


def _mixed_sweep_pairs(
    block: str, fmt: FloatFormat, fa: FloatFormat, fb: FloatFormat, rng: Any
) -> tuple[np.ndarray, np.ndarray, str]:
    """Operand pairs of a mixed-format sweep: every pattern of the operand with fewer bits
    (<= 12) against dense_patterns of the other, in the exponent range where the result
    depends on both (add: the narrow operand's and the result's range; mul: the range that
    brings a product into the result's range)."""
    narrow_is_a = fa.total_bits <= fb.total_bits
    fn, fw = (fa, fb) if narrow_is_a else (fb, fa)
    if block == "fp_mul":
        lo = fmt.emin - fmt.man_bits - fn.emax - 3
        hi = fmt.emax - (fn.emin - fn.man_bits) + 2
    else:  # the narrow operand's range, and the result's when it is narrower than fw's
        ref = [fn, fmt] if fmt.exp_bits < fw.exp_bits else [fn]
        lo = min(f.emin - f.man_bits for f in ref) - 3
        hi = max(f.emax for f in ref) + 2
    wide = dense_patterns(fw, lo, hi, [fn, fmt], rng)
    narrow = all_patterns(fn)
    pn, pw = np.repeat(narrow, wide.size), np.tile(wide, narrow.size)
    what = f"all {fn.name} x {wide.size} dense {fw.name}"
    return (pn, pw, what) if narrow_is_a else (pw, pn, what)


async def binary_op_sweeps(
    dut: Any,
    block: str,
    op_for: Callable[[dict[str, int]], BinaryModel],
    sweeps: Sequence[Mapping[str, int]],
    name_of: Callable[[Mapping[str, int]], str],
) -> None:
    """The directed test of a binary FP operator block (a_i, b_i, controls -> res_o).

    One format (operands in the result format): each setting of ``sweeps`` runs over every
    operand pair of the format when it has <= 2^20 pairs and exhaustive sweeps are on
    (exhaustive_enabled), else over the edge-pattern pairs plus random pairs (2^14; 2^12 for
    formats wider than 10 bits under Icarus).
    Mixed formats (the block's AExpBits / AManBits / BExpBits / BManBits differ from the
    result format): every pair when there are <= 2^20, else every pattern of the narrower
    operand (<= 12 bits) against a dense set of the other (``_mixed_sweep_pairs``) when
    exhaustive sweeps are on; otherwise edge-pattern pairs plus random mixed pairs.
    Then 2^12 random pairs with every control drawn per vector. ``name_of(setting)`` names a
    setting in mismatch reports."""
    fmt, fa, fb = operand_formats(dut)
    mixed = (fa, fb) != (fmt, fmt)
    pair_bits = fa.total_bits + fb.total_bits
    tag_fmt = f"{fa.name} x {fb.name} -> {fmt.name}" if mixed else fmt.name
    rng = rng_for(f"{block}-{fmt.name}" + (f"-{fa.name}-{fb.name}" if mixed else ""))
    n_rand = n_vectors(1 << 14, 1 << 14 if pair_bits <= 20 else 1 << 12)

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
        return random_mixed_pairs(rng, fa, fb, n) if mixed else random_pairs(rng, fmt, n)

    for setting in sweeps:
        what = "random"
        if exhaustive_enabled() and pair_bits <= 20:
            pa, pb = all_patterns(fa), all_patterns(fb)
            a, b = np.repeat(pa, pb.size), np.tile(pb, pa.size)
            what = "all"
        elif exhaustive_enabled() and mixed and min(fa.total_bits, fb.total_bits) <= 12:
            a, b, what = _mixed_sweep_pairs(block, fmt, fa, fb, rng)
        else:
            ca, cb = fmt_corners(fa), fmt_corners(fb)
            ra, rb = pairs(n_rand)
            a = np.concatenate([np.repeat(ca, cb.size), ra])
            b = np.concatenate([np.tile(cb, ca.size), rb])
        want = model_binary(op_for, a, b, fmt, setting, fa, fb)
        got = await run_vectors(dut, {**setting, "a_i": a, "b_i": b}, ["res_o"], log=dut._log)
        tag = f"{name_of(setting)} {tag_fmt} {RND[setting['rnd_i']]}/{OVF[setting['sat_i']]}"
        check_bits(f"{tag} {what}", got["res_o"], want, {"a": a, "b": b}, fmt, dut._log)
    # every control combination, drawn per vector
    n = 1 << 12
    a, b = pairs(n)
    controls = {k: rng.integers(0, 2, n) for k in sweeps[0]}
    want = model_binary(op_for, a, b, fmt, controls, fa, fb)
    ins = {"a_i": a, "b_i": b, **controls}
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(f"{block} {tag_fmt} mixed controls", got["res_o"], want, ins, fmt, dut._log)
