# SPDX-License-Identifier: Apache-2.0
"""lightnorm_acc_round vs lightnorm.arith.ExactSum.round(fmt, scale=...), bit-exact.

Vectors: scales 1.0, round(1/n) for counts n from 2 to 2^22, +-0, the extreme finite values and
random finite patterns (negative and subnormal included), each with accumulator values of
every magnitude (random bit lengths up to AccWidth - 1, +-1, 0, the extreme two's complement
values, values just around rounding boundaries), and the special flags (NaN, +Inf, -Inf,
+Inf with -Inf); rnd_i / sat_i drawn per vector. Each vector is one ExactSum row with
lsb_exp = emin - M of the accumulated element format FP(AccExpBits, AccManBits) (a zero scale
uses the model's ndarray path at every magnitude: the sign of a zero result is then sign(acc)
xor sign(scale), as in the RTL). Under saturate an Inf sum gives +-max_normal (docs/spec.md
section 2). Configurations: the element format as the result format (contract v1), and
fp10_e5m4 sums read into fp16_e8m7 (the statistics format of numeric contract v2: mu, S, k_beta,
d_gamma, ... with the core's 59-bit accumulator).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import (
    OVF,
    RND,
    dut_param,
    env_int,
    param_env,
    random_patterns,
    rng_for,
    run_vectors_wide,
)

from lightnorm.arith import ExactSum
from lightnorm.formats import FloatFormat, decode, encode, quantize

# (ExpBits, ManBits, AccWidth, AccExpBits, AccManBits): the core's fp10 accumulator
# (n <= 2^20), an fp12 one wider than 64 bits, and fp10 sums read into fp16_e8m7 (contract v2,
# the core's default 59-bit accumulator)
CONFIGS = [(5, 4, 55, 5, 4), (6, 5, 70, 6, 5), (8, 7, 59, 5, 4)]

SPECIALS = {0: 0.0, 1: math.inf, 2: -math.inf, 3: math.nan}  # acc_inf_i -> model special


def scale_patterns(rng: np.random.Generator, fmt: FloatFormat, n_random: int) -> np.ndarray:
    vals = [1.0, 0.5, 2.0, 0.0, -0.0, -1.0, fmt.max_normal, fmt.min_subnormal, fmt.min_normal]
    vals += [
        float(quantize(1.0 / n, fmt))
        for n in (2, 3, 7, 48, 100, 1000, 4095, 4096, 1 << 20, 1 << 22)
    ]
    pats = encode(np.array(vals), fmt).astype(np.uint64)
    rand = random_patterns(rng, fmt, 4 * n_random)
    field = (rand >> np.uint64(fmt.man_bits)) & np.uint64((1 << fmt.exp_bits) - 1)
    rand = rand[field != (1 << fmt.exp_bits) - 1][:n_random]  # finite scales only
    return np.unique(np.concatenate([pats, rand]))


def acc_values(rng: np.random.Generator, width: int, n: int) -> list[int]:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    out = [0, 1, -1, hi, lo, hi - 1, lo + 1]
    for _ in range(n - len(out)):
        bits = int(rng.integers(0, width))
        mag = int(rng.integers(0, 1 << 62)) | (int(rng.integers(0, 1 << 62)) << 62)
        mag = (mag & ((1 << bits) - 1)) | (1 << bits >> 1)
        if rng.random() < 0.3:  # around a rounding boundary: few significant bits +- a little
            keep = int(rng.integers(1, 10))
            mag = (mag >> max(bits - keep, 0) << max(bits - keep, 0)) + int(rng.integers(-2, 3))
        v = -mag if rng.random() < 0.5 else mag
        out.append(min(max(v, lo), hi))
    return out


def model_round(
    acc: int,
    flags: tuple[int, int],
    scale: float,
    fmt: FloatFormat,
    r: str,
    o: str,
    acc_fmt: FloatFormat | None = None,
) -> float:
    nan_flag, inf_flags = flags
    special = math.nan if nan_flag else SPECIALS[inf_flags]
    if scale == 0.0:
        # the model's numpy path (an ndarray of totals): 0 * acc is an IEEE zero signed by acc
        # (its big-int path, taken for huge totals, would return +0: not the RTL's rule)
        totals: np.ndarray | list[int] = np.array([acc], dtype=object)
    elif abs(acc) < (1 << 62):
        totals = np.array([acc], dtype=np.int64)
    else:
        totals = [acc]  # exact big-int path
    af = acc_fmt or fmt
    es = ExactSum(totals, af.emin - af.man_bits, np.array([special]), (1,))
    with np.errstate(all="ignore"):
        return float(es.round(fmt, r, o, scale=scale)[0])


async def _acc_round_random(dut) -> None:
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    width = dut_param(dut, "AccWidth")
    acc_fmt = FloatFormat(
        dut_param(dut, "AccExpBits", fmt.exp_bits), dut_param(dut, "AccManBits", fmt.man_bits)
    )
    rng = rng_for(f"acc_round-{fmt.name}-{width}" + ("" if acc_fmt == fmt else acc_fmt.name))
    scales = scale_patterns(rng, fmt, 24)
    per_scale = env_int("LN_VECTORS", 1 << 13) // len(scales) + 1
    acc, scale, nan, inf = [], [], [], []
    for s in scales.tolist():
        vals = acc_values(rng, width, per_scale)
        acc += vals
        scale += [s] * len(vals)
        nan += [0] * len(vals)
        inf += [0] * len(vals)
        for flags in ((1, 0), (0, 1), (0, 2), (0, 3), (1, 3)):  # NaN, +Inf, -Inf, both, all
            acc.append(vals[int(rng.integers(0, len(vals)))])
            scale.append(s)
            nan.append(flags[0])
            inf.append(flags[1])
    n = len(acc)
    rnd = rng.integers(0, 2, n).tolist()
    sat = rng.integers(0, 2, n).tolist()
    svals = decode(np.array(scale, dtype=np.uint64), fmt).tolist()
    want_vals = np.array(
        [
            model_round(acc[i], (nan[i], inf[i]), svals[i], fmt, RND[rnd[i]], OVF[sat[i]], acc_fmt)
            for i in range(n)
        ]
    )
    want = encode(want_vals, fmt).tolist()
    acc_u = [a & ((1 << width) - 1) for a in acc]
    ins = {
        "acc_i": acc_u,
        "scale_i": scale,
        "acc_nan_i": nan,
        "acc_inf_i": inf,
        "rnd_i": rnd,
        "sat_i": sat,
    }
    got = await run_vectors_wide(dut, ins, ["res_o"], log=dut._log)
    bad = [i for i in range(n) if got["res_o"][i] != want[i]]
    if bad:
        lines = [
            f"acc_round {acc_fmt.name} sums -> {fmt.name} AccWidth={width}: "
            f"{len(bad)} of {n} differ"
        ]
        for i in bad[:8]:
            lines.append(
                f"  acc={acc[i]} scale={svals[i]!r} nan={nan[i]} inf={inf[i]} "
                f"rnd={rnd[i]} sat={sat[i]}: "
                f"dut 0x{got['res_o'][i]:x} ({decode(got['res_o'][i], fmt)!r}) "
                f"model 0x{want[i]:x} ({decode(want[i], fmt)!r})"
            )
        raise AssertionError("\n".join(lines))
    dut._log.info(
        "acc_round %s sums -> %s AccWidth=%d: %d vectors (%d scales), all bit-exact",
        acc_fmt.name,
        fmt.name,
        width,
        n,
        len(scales),
    )


try:
    import cocotb

    acc_round_random = cocotb.test()(_acc_round_random)
except ImportError:  # pragma: no cover
    pass


def _cfg_id(c: tuple[int, ...]) -> str:
    same = (c[3], c[4]) == (c[0], c[1])
    return f"e{c[0]}m{c[1]}w{c[2]}" + ("" if same else f"-acc-e{c[3]}m{c[4]}")


@pytest.mark.parametrize("cfg", CONFIGS, ids=[_cfg_id(c) for c in CONFIGS])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_acc_round(sim: str, cfg: tuple[int, int, int, int, int]) -> None:
    e, m, w, ae, am = cfg
    params = {"ExpBits": e, "ManBits": m, "AccWidth": w}
    if (ae, am) != (e, m):
        params.update({"AccExpBits": ae, "AccManBits": am})
    run_cocotb(
        "lightnorm_acc_round", "test_acc_round", params, sim=sim, extra_env=param_env(params)
    )
