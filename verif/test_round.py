# SPDX-License-Identifier: Apache-2.0
"""lightnorm_round vs lightnorm.arith.round_scaled_int / lightnorm.formats.quantize, bit-exact.

Vectors (all four rnd_i/sat_i modes mixed per vector): random raw values
(-1)^s * (sig + sticky) * 2^exp with significands of every length and exponents from far
below the smallest subnormal to beyond the overflow threshold, exact ties and near-ties,
zeros of both signs, NaN / Inf flags: 20000 vectors under Verilator, 8000 under Icarus
(LN_VECTORS overrides).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import OVF, RND, check_bits, dut_param, n_vectors, rng_for, run_vectors

from lightnorm.arith import round_scaled_int
from lightnorm.formats import FloatFormat, encode, quantize

# (ExpBits, ManBits, SigWidth, ExpWidth): the FP10 datapath, FP32, and the smallest format E2M1
# (a narrow significand, SigWidth < ManBits + 1, is covered by test_fp_convert: fp10 -> fp12).
CONFIGS = [(5, 4, 12, 8), (8, 23, 30, 10), (2, 1, 6, 5)]


def expected_round(fmt: FloatFormat, sign, sig, exp, sticky, nan, inf, rnd, sat) -> np.ndarray:
    out = np.zeros(len(sig), dtype=np.uint64)
    for i in range(len(sig)):
        r, o = RND[int(rnd[i])], OVF[int(sat[i])]
        if nan[i]:
            v = math.nan
        elif inf[i]:
            v = float(quantize(-math.inf if sign[i] else math.inf, fmt, r, o))
        elif sig[i] == 0:
            v = -0.0 if sign[i] else 0.0
        else:
            n = -int(sig[i]) if sign[i] else int(sig[i])
            v = round_scaled_int(n, int(exp[i]), fmt, r, o, sticky=bool(sticky[i]))
        out[i] = int(encode(v, fmt))
    return out


def make_vectors(rng: np.random.Generator, fmt: FloatFormat, sig_w: int, exp_w: int, n: int):
    m = fmt.man_bits
    # significands of a random length (so that short ones and leading zeros are common)
    length = rng.integers(0, sig_w + 1, n)
    sig = np.array(
        [int(rng.integers(0, 1 << int(k))) | ((1 << int(k)) >> 1) for k in length], dtype=object
    )
    # exponents: the value's binade spans [emin - m - 3, emax + 2] mostly, some anywhere
    lo_exp, hi_exp = -(1 << (exp_w - 1)), (1 << (exp_w - 1)) - 1
    top = np.array([max(int(s).bit_length() - 1, 0) for s in sig])
    binade = rng.integers(fmt.emin - m - 3, fmt.emax + 3, n)
    exp = np.clip(binade - top, lo_exp, hi_exp)
    wild = rng.random(n) < 0.1
    exp = np.where(wild, rng.integers(lo_exp, hi_exp + 1, n), exp)
    # exact ties and near ties: sig = q * 2^s + 2^(s-1) (+ sticky) with the rounding at bit s
    ties = rng.random(n) < 0.25
    for i in np.flatnonzero(ties):
        s = int(rng.integers(1, 5))
        subnormal = rng.random() < 0.3
        q_bits = int(rng.integers(1, m + 1)) if subnormal else m + 1
        if q_bits + s > sig_w:
            continue
        q = int(rng.integers(1 << (q_bits - 1), 1 << q_bits))
        sig[i] = (q << s) | (1 << (s - 1))
        # rounding position s bits above sig's LSB: normal results keep the top m + 1 bits,
        # subnormal ones the bits from 2^(emin - m) up
        e_val = int(rng.integers(fmt.emin, fmt.emax + 2))
        exp[i] = np.clip((fmt.emin if subnormal else e_val) - m - s, lo_exp, hi_exp)
    sig_u = np.array([int(s) for s in sig], dtype=np.uint64)
    sticky = (rng.random(n) < 0.3) & (sig_u != 0)
    sign = rng.integers(0, 2, n)
    special = rng.random(n)
    nan = special < 0.01
    inf = (special >= 0.01) & (special < 0.02)
    rnd = rng.integers(0, 2, n)
    sat = rng.integers(0, 2, n)
    return (
        sign,
        sig_u,
        exp.astype(np.int64),
        sticky.astype(np.int64),
        nan.astype(np.int64),
        inf.astype(np.int64),
        rnd,
        sat,
    )


async def _round_random(dut) -> None:
    e, m = dut_param(dut, "ExpBits"), dut_param(dut, "ManBits")
    sig_w, exp_w = dut_param(dut, "SigWidth"), dut_param(dut, "ExpWidth")
    fmt = FloatFormat(e, m)
    rng = rng_for(f"round-{e}-{m}-{sig_w}-{exp_w}")
    n = n_vectors(20000, 8000)
    sign, sig, exp, sticky, nan, inf, rnd, sat = make_vectors(rng, fmt, sig_w, exp_w, n)
    exp_u = np.where(exp < 0, exp + (1 << exp_w), exp).astype(np.uint64)
    ins = {
        "sign_i": sign,
        "sig_i": sig,
        "exp_i": exp_u,
        "sticky_i": sticky,
        "is_nan_i": nan,
        "is_inf_i": inf,
        "rnd_i": rnd,
        "sat_i": sat,
    }
    want = expected_round(fmt, sign, sig, exp, sticky, nan, inf, rnd, sat)
    got = await run_vectors(dut, ins, ["res_o"], log=dut._log)
    check_bits(f"round {fmt.name} sig{sig_w} exp{exp_w}", got["res_o"], want, ins, fmt, dut._log)


try:
    import cocotb

    round_random = cocotb.test()(_round_random)
except ImportError:  # pragma: no cover - pytest collection without cocotb
    pass


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"e{c[0]}m{c[1]}s{c[2]}x{c[3]}" for c in CONFIGS])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_round(sim: str, cfg: tuple[int, int, int, int]) -> None:
    e, m, sw, xw = cfg
    run_cocotb(
        "lightnorm_round",
        "test_round",
        {"ExpBits": e, "ManBits": m, "SigWidth": sw, "ExpWidth": xw},
        sim=sim,
    )
