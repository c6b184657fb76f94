# SPDX-License-Identifier: Apache-2.0
"""lightnorm_bfp_pack vs lightnorm.bfp.bfp_pack (rule max), bit-exact.

Random groups (LN_VECTORS, default 2^12, rnd_i drawn per group) of element-format values:
lanes clustered below a random group exponent (the alignment shifts of every lane), carries of
the largest element (1.111..1 patterns that round up), subnormals, +-0, uniform patterns,
groups holding NaN / +-Inf, all-zero groups, and padding lanes (lane_en_i = 0, which the model
sees as +0). Configurations: the default bfp_m5_g16 over fp10_e5m4; a 4-bit shared exponent
(clamping at both ends: fp10 exponents span -18..15, the group's -7..7) with 3-bit mantissas;
8-bit mantissas wider than fp12_e6m5's significand (exact left shifts).
"""

from __future__ import annotations

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import RND, dut_param, env_int, random_patterns, rng_for, run_vectors_wide
from test_bfp_unpack import pack_lanes

from lightnorm.bfp import BFPFormat, bfp_pack
from lightnorm.formats import FloatFormat, decode

# (Lanes, BfpManBits, BfpExpBits, ExpBits, ManBits)
CONFIGS = [(16, 5, 8, 5, 4), (4, 3, 4, 5, 4), (8, 8, 6, 6, 5)]


def make_groups(rng: np.random.Generator, fmt: FloatFormat, bfmt: BFPFormat, n: int):
    """(values (n, lanes) bit patterns uint64, lane_en (n, lanes) 0/1)."""
    lanes = bfmt.group_size
    e_bits, m = fmt.exp_bits, fmt.man_bits
    ones = (1 << e_bits) - 1
    kind = rng.integers(0, 6, n)
    # clustered: fields in [c - (Mb + 3), c]
    c = rng.integers(1, ones, n)[:, None]
    field = np.clip(c - rng.integers(0, bfmt.man_bits + 4, (n, lanes)), 0, ones - 1)
    frac = rng.integers(0, 1 << m, (n, lanes))
    # carries: fraction all ones on the top lane(s)
    carry = (kind == 1)[:, None] & (rng.random((n, lanes)) < 0.5)
    field = np.where(carry, c, field)
    frac = np.where(carry, (1 << m) - 1 - rng.integers(0, 2, (n, lanes)), frac)
    sign = rng.integers(0, 2, (n, lanes))
    pats = (sign << (e_bits + m)) | (field << m) | frac
    # zeros of both signs
    zero = rng.random((n, lanes)) < 0.1
    pats = np.where(zero, sign << (e_bits + m), pats)
    # uniform patterns (specials included)
    uni = random_patterns(rng, fmt, n * lanes).reshape(n, lanes).astype(np.int64)
    pats = np.where((kind == 2)[:, None], uni, pats)
    # specials: one or two lanes NaN / Inf
    spec = (kind == 3)[:, None] & (rng.random((n, lanes)) < 1.5 / lanes)
    inf_pat = (ones << m) | (sign << (e_bits + m))
    nan_pat = (ones << m) | rng.integers(1, 1 << m, (n, lanes)) | (sign << (e_bits + m))
    pats = np.where(spec, np.where(rng.random((n, lanes)) < 0.5, inf_pat, nan_pat), pats)
    # all-zero / tiny groups
    pats = np.where(
        (kind == 4)[:, None],
        np.where(rng.random((n, lanes)) < 0.7, sign << (e_bits + m), frac),
        pats,
    )
    # padding lanes
    en = np.where((rng.random(n) < 0.25)[:, None], rng.integers(0, 2, (n, lanes)), 1)
    return pats.astype(np.uint64), en


async def _bfp_pack_random(dut) -> None:
    lanes = dut_param(dut, "Lanes")
    bfmt = BFPFormat(dut_param(dut, "BfpManBits"), lanes, dut_param(dut, "BfpExpBits"))
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    rng = rng_for(f"bfp_pack-{bfmt.name}-{fmt.name}")
    n = env_int("LN_VECTORS", 1 << 12)
    pats, en = make_groups(rng, fmt, bfmt, n)
    rnd = rng.integers(0, 2, n)
    x = np.where(en == 1, decode(pats, fmt), 0.0)  # padding lanes are +0 to the model
    want_exp = np.zeros(n, dtype=np.int64)
    want_sign = np.zeros((n, lanes), dtype=np.int64)
    want_mant = np.zeros((n, lanes), dtype=np.int64)
    for r in (0, 1):
        sel = rnd == r
        if np.any(sel):
            with np.errstate(all="ignore"):
                p = bfp_pack(x[sel], bfmt, axis=1, rounding=RND[r])
            want_exp[sel] = p.exp_field[:, 0]
            want_sign[sel] = p.sign[:, 0, :]
            want_mant[sel] = p.mant[:, 0, :]
    ins = {
        "val_i": pack_lanes(pats, fmt.total_bits),
        "lane_en_i": pack_lanes(en, 1),
        "rnd_i": rnd,
    }
    got = await run_vectors_wide(dut, ins, ["exp_o", "sign_o", "mant_o"], log=dut._log)
    exp_w = want_exp.tolist()
    sign_w = pack_lanes(want_sign, 1)
    mant_w = pack_lanes(want_mant, bfmt.man_bits)
    bad = [
        i
        for i in range(n)
        if (got["exp_o"][i], got["sign_o"][i], got["mant_o"][i]) != (exp_w[i], sign_w[i], mant_w[i])
    ]
    if bad:
        i = bad[0]
        mb = bfmt.man_bits
        dut_m = [(got["mant_o"][i] >> (k * mb)) & ((1 << mb) - 1) for k in range(lanes)]
        dut_s = [(got["sign_o"][i] >> k) & 1 for k in range(lanes)]
        raise AssertionError(
            f"bfp_pack {fmt.name} -> {bfmt.name}: {len(bad)} of {n} groups differ; "
            f"first: rnd={RND[int(rnd[i])]} "
            f"values={x[i].tolist()} lane_en={en[i].tolist()}\n"
            f"  dut   exp 0x{got['exp_o'][i]:x} sign {dut_s} mant {dut_m}\n"
            f"  model exp 0x{exp_w[i]:x} sign {want_sign[i].tolist()} mant {want_mant[i].tolist()}"
        )
    dut._log.info("bfp_pack %s -> %s: %d groups, all bit-exact", fmt.name, bfmt.name, n)


try:
    import cocotb

    bfp_pack_random = cocotb.test()(_bfp_pack_random)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=[f"g{c[0]}m{c[1]}e{c[2]}-e{c[3]}m{c[4]}" for c in CONFIGS]
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_bfp_pack(sim: str, cfg: tuple[int, int, int, int, int]) -> None:
    lanes, bm, be, e, m = cfg
    params = {"Lanes": lanes, "BfpManBits": bm, "BfpExpBits": be, "ExpBits": e, "ManBits": m}
    run_cocotb("lightnorm_bfp_pack", "test_bfp_pack", params, sim=sim)
