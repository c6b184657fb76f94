# SPDX-License-Identifier: Apache-2.0
"""Generator of the SystemVerilog package ``hdl/lightnorm_pkg.sv`` from the Python format table.

The package is the one place where the RTL learns the named formats of
:data:`lightnorm.formats.FORMATS` and the significand tables of the reciprocal and
reciprocal-square-root units (docs/spec.md, section 3). Adding a format touches the Python
table only: re-run ``python -m lightnorm.hw.hdlgen`` and commit the regenerated package
(``models/tests/hw/test_hdlgen.py`` fails when the committed file differs from a fresh run).

Tables (one set per fraction width ManBits = M <= :data:`TABLE_MAX_MAN_BITS` of the named
formats; a table depends on M only, not on the exponent width). With G = :data:`TABLE_GUARD_BITS`
and W = M + 1 + G, each entry is ``{q[W:0], sticky}`` (W + 2 bits):

- reciprocal, index f in [0, 2^M): significand s = 1 + f / 2^M, exact value
  1/s = (q + delta) * 2^-W with q = floor(2^(W+M) / (2^M + f)), 0 <= delta < 1 and
  sticky = (delta != 0). q has W significant bits (W + 1 for f = 0, where 1/s = 1).
- reciprocal square root, index {p, f} (p the parity of the unbiased exponent):
  1/sqrt(s * 2^p) = (q + delta) * 2^-W with q = floor(2^W / sqrt(s * 2^p)) =
  isqrt(floor(2^(2W+M) / ((2^M + f) * 2^p))) and sticky = (q^2 (2^M + f) 2^p != 2^(2W+M)).

q carries G bits below the M + 1 result bits; the result may be up to two binades below the
smallest normal (reciprocal of the largest values), so G = 4 leaves at least two bits below
the rounding position whenever sticky is set, as ``lightnorm_round`` requires. Every value is
an exact Python-integer computation (the same integer division / integer square root that
:func:`lightnorm.arith.recip` and :func:`lightnorm.arith.rsqrt` use); correct rounding of the
RTL built on them is verified exhaustively against those functions (verif/test_recip.py,
verif/test_rsqrt.py).

Usage::

    python -m lightnorm.hw.hdlgen            # (re)write hdl/lightnorm_pkg.sv of this repository
    python -m lightnorm.hw.hdlgen -o -       # print the package
    python -m lightnorm.hw.hdlgen --check    # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from lightnorm.formats import FORMATS

__all__ = [
    "PACKAGE_PATH",
    "TABLE_GUARD_BITS",
    "TABLE_MAX_MAN_BITS",
    "generate_package",
    "main",
    "recip_table",
    "rsqrt_table",
    "table_man_bits",
]

TABLE_GUARD_BITS = 4
"""G: bits of a table significand below the M + 1 bits of the result."""

TABLE_MAX_MAN_BITS = 10
"""Formats with more fraction bits than this get no table (FP32 recip/rsqrt is not tabled)."""

PACKAGE_PATH = Path(__file__).resolve().parents[3] / "hdl" / "lightnorm_pkg.sv"
"""Where the package lives in this repository (hdl/lightnorm_pkg.sv)."""

_ENTRIES_PER_LINE = 4


def _entry_width(man_bits: int) -> int:
    """Bits of one table entry {q[W:0], sticky}, W = M + 1 + G."""
    return man_bits + 1 + TABLE_GUARD_BITS + 2


def recip_table(man_bits: int) -> list[tuple[int, bool]]:
    """(q, sticky) for f in [0, 2^M): 1 / (1 + f/2^M) = (q + delta) * 2^-W, sticky = delta > 0."""
    w = man_bits + 1 + TABLE_GUARD_BITS
    out = []
    for f in range(1 << man_bits):
        q, r = divmod(1 << (w + man_bits), (1 << man_bits) + f)
        out.append((q, r != 0))
    return out


def rsqrt_table(man_bits: int) -> list[tuple[int, bool]]:
    """(q, sticky) for index {p, f}: 1 / sqrt((1 + f/2^M) * 2^p) = (q + delta) * 2^-W."""
    w = man_bits + 1 + TABLE_GUARD_BITS
    out = []
    for p in (0, 1):
        for f in range(1 << man_bits):
            den = ((1 << man_bits) + f) << p
            q = math.isqrt((1 << (2 * w + man_bits)) // den)
            out.append((q, q * q * den != 1 << (2 * w + man_bits)))
    return out


def table_man_bits() -> list[int]:
    """The fraction widths that get tables: those of the named formats, M <= TABLE_MAX_MAN_BITS."""
    return sorted({f.man_bits for f in FORMATS.values() if f.man_bits <= TABLE_MAX_MAN_BITS})


def _camel(name: str) -> str:
    """fp10_e5m4 -> Fp10E5m4 (UpperCamelCase prefix of a format's localparams)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _table_function(kind: str, man_bits: int, table: list[tuple[int, bool]]) -> list[str]:
    """A function ``<kind>_m<M>(idx)`` returning entry idx of the table as a case statement.

    (A case per entry rather than one packed constant: a packed constant of the M = 10 tables,
    ~52 kbit, makes Verilator's elaboration take seconds.)
    """
    ew = _entry_width(man_bits)
    n = len(table)
    ib = n.bit_length() - 1
    digits = (ew + 3) // 4
    idx_digits = (ib + 3) // 4
    fn = f"{kind.lower()}_m{man_bits}"
    lines = [
        f"  function automatic logic [{ew}-1:0] {fn}(input logic [{ib}-1:0] idx);",
        f"    logic [{ew}-1:0] entry;",
        "    unique case (idx)",
    ]
    items = [
        f"{ib}'h{i:0{idx_digits}x}: entry = {ew}'h{(q << 1) | int(st):0{digits}x};"
        for i, (q, st) in enumerate(table)
    ]
    for start in range(0, n, _ENTRIES_PER_LINE):
        lines.append("      " + "  ".join(items[start : start + _ENTRIES_PER_LINE]))
    lines += [
        "      default: entry = '0;",
        "    endcase",
        f"    {fn} = entry;",
        "  endfunction",
    ]
    return lines


def _lookup_function(kind: str, index_bits: str, doc: str) -> list[str]:
    max_w = "TableEntryWidth"
    fn = f"{kind.lower()}_entry"
    lines = [
        f"  // {doc}",
        "  // man_bits must be a constant (a module parameter): the case folds away in synthesis.",
        f"  function automatic logic [{max_w}-1:0] {fn}(",
        "    input int   man_bits,",
        f"    input logic [{index_bits}-1:0] idx",
        "  );",
        f"    logic [{max_w}-1:0] entry;",
        "    entry = '0;",
        "    unique case (man_bits)",
    ]
    for m in table_man_bits():
        ib = m if kind == "Recip" else m + 1
        lines.append(f"      {m}: entry = {max_w}'({kind.lower()}_m{m}(idx[{ib - 1}:0]));")
    lines += [
        "      default: entry = '0;  // no table for this width (the modules reject it)",
        "    endcase",
        f"    {fn} = entry;",
        "  endfunction",
    ]
    return lines


def generate_package() -> str:
    """The text of hdl/lightnorm_pkg.sv (deterministic: depends on FORMATS and this file only)."""
    g = TABLE_GUARD_BITS
    ms = table_man_bits()
    out = [
        "// SPDX-License-Identifier: Apache-2.0",
        "//",
        "// GENERATED FILE - do not edit. Regenerate with `python -m lightnorm.hw.hdlgen`",
        "// (models/lightnorm/hw/hdlgen.py) from lightnorm.formats.FORMATS; a test fails on drift.",
        "//",
        "// lightnorm_pkg: the named float formats FP(E, M) of the Python model, the encodings",
        "// of the rounding / overflow controls, and the correctly rounded significand tables of",
        "// the reciprocal (lightnorm_recip) and reciprocal square root (lightnorm_rsqrt) units.",
        f"// Table entries are {{q[W:0], sticky}} with W = M + 1 + TableGuardBits (G = {g}):",
        "//   recip, index f:      1 / (1 + f/2^M)           = (q + delta) * 2^-W",
        "//   rsqrt, index {p, f}: 1 / sqrt((1 + f/2^M) 2^p) = (q + delta) * 2^-W",
        "// with 0 <= delta < 1 and sticky = (delta != 0), computed with exact integer arithmetic.",
        "// A table depends on M only; there is one per fraction width M <= TableMaxManBits of the",
        "// named formats.",
        "",
        "package lightnorm_pkg;",
        "",
        "  // Rounding control rnd_i of every block (docs/spec.md section 2).",
        "  typedef enum logic {",
        "    RndRne = 1'b0,  // round to nearest, ties to even",
        "    RndRtz = 1'b1   // round toward zero (truncate)",
        "  } rounding_e;",
        "",
        "  // Overflow control sat_i of every block.",
        "  typedef enum logic {",
        "    OvfInf = 1'b0,  // IEEE: RNE overflows to +-Inf, RTZ to +-max_normal",
        "    OvfSat = 1'b1   // every result beyond max_normal (Inf included) -> +-max_normal",
        "  } overflow_e;",
        "",
        "  // Named formats FP(E, M): sign, E exponent bits (bias 2^(E-1) - 1), M fraction bits.",
    ]
    for fmt in FORMATS.values():
        c = _camel(fmt.name)
        out += [
            f"  // {fmt.name}",
            f"  localparam int {c}ExpBits = {fmt.exp_bits};",
            f"  localparam int {c}ManBits = {fmt.man_bits};",
        ]
    out += [
        "",
        f"  // Significand tables: fraction widths {', '.join(str(m) for m in ms)}.",
        f"  localparam int TableGuardBits = {g};",
        f"  localparam int TableMaxManBits = {TABLE_MAX_MAN_BITS};",
        "  // Width of a looked-up entry (the widest table's); entries are right-aligned in it.",
        "  localparam int TableEntryWidth = TableMaxManBits + TableGuardBits + 3;",
        "",
    ]
    for m in ms:
        w = m + 1 + g
        out.append(f"  // M = {m}: W = {w}, entries of {_entry_width(m)} bits.")
        out += _table_function("Recip", m, recip_table(m))
        out += _table_function("Rsqrt", m, rsqrt_table(m))
        out.append("")
    out += _lookup_function(
        "Recip",
        "TableMaxManBits",
        "recip_entry(M, f): {q, sticky} of 1 / (1 + f/2^M), right-aligned.",
    )
    out.append("")
    out += _lookup_function(
        "Rsqrt",
        "TableMaxManBits+1",
        "rsqrt_entry(M, {p, f}): {q, sticky} of 1 / sqrt((1 + f/2^M) 2^p), right-aligned.",
    )
    out += ["", "endpackage", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line: write (default), print (-o -) or check (--check) the package."""
    parser = argparse.ArgumentParser(
        prog="python -m lightnorm.hw.hdlgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "-o", "--output", default=str(PACKAGE_PATH), help="output file, '-' for stdout"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date"
    )
    args = parser.parse_args(argv)
    text = generate_package()
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if args.check:
        current = path.read_text() if path.exists() else None
        if current != text:
            print(f"{path} is stale: run python -m lightnorm.hw.hdlgen", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
