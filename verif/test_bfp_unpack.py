# SPDX-License-Identifier: Apache-2.0
"""lightnorm_bfp_unpack vs quantize(lightnorm.bfp.bfp_unpack(...)), bit-exact.

Every (shared exponent field, sign, mant) combination of one lane appears in some lane of the
driven groups (the lanes are independent): 2^BfpExpBits * 2^(1+BfpManBits) lane values packed
Lanes per group, under each of the four (rnd_i, sat_i) modes; the reserved all-ones exponent
(Inf / NaN groups), exponents far outside the element format (overflow, gradual underflow,
rounding of values finer than its subnormals) are all in the sweep. The expected value is what
the reference model's consumer reads: quantize(bfp_unpack(group), element format).
"""

from __future__ import annotations

import numpy as np
import pytest
from lightnorm_tb.runner import run_cocotb
from lightnorm_tb.vectors import MODES, OVF, RND, dut_param, rng_for, run_vectors_wide

from lightnorm.bfp import BFPFormat, BFPTensor, bfp_unpack
from lightnorm.formats import FloatFormat, encode, quantize

# (Lanes, BfpManBits, BfpExpBits, ExpBits, ManBits)
CONFIGS = [(16, 5, 8, 5, 4), (4, 8, 5, 6, 5)]


def pack_lanes(values: np.ndarray, width: int) -> list[int]:
    """Rows of lane values (n, Lanes) -> one int per row, lane k at bits [k*width +: width]."""
    out = []
    for row in values.tolist():
        word = 0
        for k, v in enumerate(row):
            word |= int(v) << (k * width)
        out.append(word)
    return out


async def _bfp_unpack_sweep(dut) -> None:
    lanes = dut_param(dut, "Lanes")
    bfmt = BFPFormat(dut_param(dut, "BfpManBits"), lanes, dut_param(dut, "BfpExpBits"))
    fmt = FloatFormat(dut_param(dut, "ExpBits"), dut_param(dut, "ManBits"))
    rng = rng_for(f"bfp_unpack-{bfmt.name}-{fmt.name}")
    # every (exp, sign, mant) lane value, shuffled into groups of `lanes`
    per_exp = 1 << (1 + bfmt.man_bits)
    exp_f = np.repeat(np.arange(1 << bfmt.exp_bits), per_exp)
    sm = np.tile(np.arange(per_exp), 1 << bfmt.exp_bits)
    order = rng.permutation(sm.size)
    exp_f, sm = exp_f[order], sm[order]
    # group lanes that share the exponent: sort by exponent, pad each exponent's lanes to a multiple
    rows_exp, rows_sm = [], []
    for e in range(1 << bfmt.exp_bits):
        vals = sm[exp_f == e]
        pad = (-vals.size) % lanes
        vals = np.concatenate([vals, rng.integers(0, per_exp, pad)])
        for start in range(0, vals.size, lanes):
            rows_exp.append(e)
            rows_sm.append(vals[start : start + lanes])
    g_exp = np.array(rows_exp, dtype=np.uint16)
    g_sm = np.array(rows_sm)
    g_sign = (g_sm >> bfmt.man_bits).astype(np.uint8)
    g_mant = (g_sm & ((1 << bfmt.man_bits) - 1)).astype(np.uint32)
    n = len(g_exp)
    packed = BFPTensor(bfmt, g_exp[:, None], g_sign[:, None, :], g_mant[:, None, :], (n, lanes), 1)
    values = bfp_unpack(packed)  # (n, lanes) float64
    sign_words = pack_lanes(g_sign, 1)
    mant_words = pack_lanes(g_mant, bfmt.man_bits)
    for rnd, sat in MODES:
        with np.errstate(all="ignore"):
            want_bits = encode(quantize(values, fmt, RND[rnd], OVF[sat]), fmt)
        want = pack_lanes(want_bits, fmt.total_bits)
        ins = {
            "rnd_i": rnd,
            "sat_i": sat,
            "exp_i": g_exp,
            "sign_i": sign_words,
            "mant_i": mant_words,
        }
        got = await run_vectors_wide(dut, ins, ["val_o"], log=dut._log)
        bad = [i for i in range(n) if got["val_o"][i] != want[i]]
        if bad:
            i = bad[0]
            w = fmt.total_bits
            lanes_bad = [
                k
                for k in range(lanes)
                if (got["val_o"][i] >> (k * w)) & ((1 << w) - 1) != want_bits[i, k]
            ]
            k = lanes_bad[0]
            raise AssertionError(
                f"bfp_unpack {bfmt.name} -> {fmt.name} {RND[rnd]}/{OVF[sat]}: "
                f"{len(bad)} of {n} groups "
                f"differ; first: group exp 0x{int(g_exp[i]):x} lane {k} sign {g_sign[i, k]} mant "
                f"{g_mant[i, k]}: dut 0x{(got['val_o'][i] >> (k * w)) & ((1 << w) - 1):x} "
                f"model 0x{int(want_bits[i, k]):x} ({values[i, k]!r})"
            )
        dut._log.info(
            "bfp_unpack %s -> %s %s/%s: %d groups (%d lane values), all bit-exact",
            bfmt.name,
            fmt.name,
            RND[rnd],
            OVF[sat],
            n,
            n * lanes,
        )


try:
    import cocotb

    bfp_unpack_sweep = cocotb.test()(_bfp_unpack_sweep)
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=[f"g{c[0]}m{c[1]}e{c[2]}-e{c[3]}m{c[4]}" for c in CONFIGS]
)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_bfp_unpack(sim: str, cfg: tuple[int, int, int, int, int]) -> None:
    lanes, bm, be, e, m = cfg
    params = {"Lanes": lanes, "BfpManBits": bm, "BfpExpBits": be, "ExpBits": e, "ManBits": m}
    run_cocotb("lightnorm_bfp_unpack", "test_bfp_unpack", params, sim=sim)
