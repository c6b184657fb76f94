"""lightnorm.hw.hdlgen: the committed hdl/lightnorm_pkg.sv is a fresh generation of the package,
and its reciprocal / rsqrt tables are the exact truncated significands with correct sticky bits
(checked against rational arithmetic, independently of the generator's integer formulas)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from lightnorm.formats import FORMATS
from lightnorm.hw import hdlgen


def test_committed_package_is_fresh() -> None:
    committed = hdlgen.PACKAGE_PATH.read_text()
    assert committed == hdlgen.generate_package(), (
        "hdl/lightnorm_pkg.sv is stale: run `python -m lightnorm.hw.hdlgen` and commit the result"
    )


def test_check_mode(tmp_path) -> None:
    out = tmp_path / "pkg.sv"
    assert hdlgen.main(["-o", str(out)]) == 0
    assert hdlgen.main(["-o", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "// edited\n")
    assert hdlgen.main(["-o", str(out), "--check"]) == 1


def test_every_named_format_is_in_the_package() -> None:
    text = hdlgen.generate_package()
    for fmt in FORMATS.values():
        assert f"// {fmt.name}\n" in text
        assert f"ExpBits = {fmt.exp_bits};" in text
    for m in hdlgen.table_man_bits():
        assert f"function automatic logic [{hdlgen._entry_width(m)}-1:0] recip_m{m}(" in text
        assert f"function automatic logic [{hdlgen._entry_width(m)}-1:0] rsqrt_m{m}(" in text
    assert hdlgen.table_man_bits() == sorted(
        {f.man_bits for f in FORMATS.values() if f.man_bits <= hdlgen.TABLE_MAX_MAN_BITS}
    )


@pytest.mark.parametrize("man_bits", hdlgen.table_man_bits())
def test_recip_table_exact(man_bits: int) -> None:
    w = man_bits + 1 + hdlgen.TABLE_GUARD_BITS
    for f, (q, sticky) in enumerate(hdlgen.recip_table(man_bits)):
        exact = Fraction(1) / (1 + Fraction(f, 1 << man_bits)) * (1 << w)
        assert q == math.floor(exact)
        assert sticky == (exact != q)
        # W significant bits (W + 1 for the exact 1.0), so G guard bits below the M + 1 kept ones
        assert q.bit_length() == (w + 1 if f == 0 else w)


@pytest.mark.parametrize("man_bits", hdlgen.table_man_bits())
def test_rsqrt_table_exact(man_bits: int) -> None:
    w = man_bits + 1 + hdlgen.TABLE_GUARD_BITS
    table = hdlgen.rsqrt_table(man_bits)
    assert len(table) == 2 << man_bits
    for idx, (q, sticky) in enumerate(table):
        p, f = divmod(idx, 1 << man_bits)
        s = (1 + Fraction(f, 1 << man_bits)) * (1 << p)
        # q = floor(2^W / sqrt(s))  <=>  q^2 * s <= 4^W < (q + 1)^2 * s
        assert q * q * s <= (1 << (2 * w)) < (q + 1) * (q + 1) * s
        assert sticky == (q * q * s != (1 << (2 * w)))
        assert q.bit_length() == (w + 1 if idx == 0 else w)
