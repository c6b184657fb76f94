# SPDX-License-Identifier: Apache-2.0
"""Scoreboard of the LightNorm core: every output bit and every exposed statistic against
the reference model (lightnorm.reference), exact equality, never a tolerance.

Statistics are compared as bit patterns of their format (``lightnorm.formats.encode`` of the
model's value; NaN is the canonical NaN), except the chunk maximum / minimum, which are
compared as values: the model takes them with ``numpy.max``, whose choice between -0 and +0
is unspecified, while the range_exact dx (compared exactly) pins the arg-max / arg-min the
core recomputes from them. Stream beats
are compared field by field (shared exponent, every lane's sign and magnitude, padding lanes
included). Each mismatch records the spec step (F1..F6, B1..B5, I1..I3), the quantity, the
channel and the element (stream index, chunk); :meth:`Scoreboard.first` is the earliest one in
step order, which is where a bug shows first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightnorm.formats import FloatFormat, decode, encode

from .streams import BeatArray, BfpBeat

__all__ = ["STEP_ORDER", "Mismatch", "Scoreboard", "bfp_values", "plain_values"]

STEP_ORDER = ("F1", "F2", "F3", "F4", "F5", "F6", "B1", "B2", "B3", "B4", "B5", "I1", "I2", "I3")


@dataclass(frozen=True)
class Mismatch:
    layer: str
    step: str
    what: str
    channel: int | None
    element: str
    expected: str
    got: str

    def __str__(self) -> str:
        ch = "" if self.channel is None else f" channel {self.channel}"
        return (
            f"[{self.layer}] step {self.step} {self.what}{ch} {self.element}: "
            f"expected {self.expected}, got {self.got}"
        )

    def order(self) -> tuple[int, int, str]:
        return (
            STEP_ORDER.index(self.step),
            -1 if self.channel is None else self.channel,
            self.element,
        )


def bfp_values(b: BeatArray, exp_bits: int) -> np.ndarray:
    """Decoded values (B, L) of BFP beats, ``exp_bits`` shared-exponent bits (spec section 5)."""
    bias = (1 << (exp_bits - 1)) - 1
    special = b.exp == (1 << exp_bits) - 1
    e = np.where(special, 0, b.exp - bias)
    mag = (
        b.mant.astype(np.float64) * np.ldexp(1.0, (e - (b.man_bits - 1)).astype(np.int64))[:, None]
    )
    mag = np.where(special[:, None], np.where(b.mant == 0, np.inf, np.nan), mag)
    return np.where(b.sign.astype(bool), -mag, mag)


def plain_values(b: BeatArray, fmt: FloatFormat) -> np.ndarray:
    """Decoded values (B, L) of plain beats of ``fmt`` (X/Z lanes, -1, decode as NaN)."""
    bits = (b.sign << (fmt.exp_bits + fmt.man_bits)) | b.mant
    bad = (b.sign < 0) | (b.mant < 0)
    vals = decode(np.where(bad, 0, bits).astype(np.uint64), fmt).astype(np.float64)
    return np.where(bad, np.nan, vals)


def _field_str(value: float, a: BeatArray, b: int, lane: int) -> str:
    return f"{value!r} [E=0x{int(a.exp[b]):x} s={int(a.sign[b, lane])} m={int(a.mant[b, lane])}]"


class Scoreboard:
    """Collects comparisons of one run (several layers); counts values and mismatches."""

    def __init__(self, log: Any = None, max_report: int = 12) -> None:
        self.log = log
        self.checked = 0
        self.mismatches: list[Mismatch] = []
        self.max_report = max_report
        self.layer = ""

    # -- statistics ---------------------------------------------------------------------
    def _add(self, m: Mismatch) -> None:
        self.mismatches.append(m)
        per_layer = sum(1 for x in self.mismatches if x.layer == m.layer)
        if self.log is not None and per_layer <= self.max_report:
            self.log.error("MISMATCH %s", m)

    def record(self, step: str, what: str, expected: str, got: str) -> None:
        """A protocol-level mismatch (refused command, beat count, ...)."""
        self._add(Mismatch(self.layer, step, what, None, "", expected, got))

    def stat_bits(
        self,
        step: str,
        what: str,
        channel: int,
        got: int,
        model: float,
        fmt: FloatFormat,
        element: str = "",
    ) -> bool:
        """Bit-exact comparison of a statistic of format ``fmt``."""
        self.checked += 1
        want = int(encode(np.float64(model), fmt))
        if got == want:
            return True
        self._add(
            Mismatch(
                self.layer,
                step,
                what,
                channel,
                element,
                f"0x{want:x} ({model!r})",
                f"0x{got:x} ({float(decode(got, fmt))!r})",
            )
        )
        return False

    def stat_value(
        self,
        step: str,
        what: str,
        channel: int,
        got: int,
        model: float,
        fmt: FloatFormat,
        element: str = "",
    ) -> bool:
        """Value comparison (NaN == NaN, -0 == +0) of a statistic of format ``fmt``."""
        self.checked += 1
        v = float(decode(got, fmt))
        if (np.isnan(v) and np.isnan(model)) or v == model:
            return True
        self._add(Mismatch(self.layer, step, what, channel, element, repr(float(model)), repr(v)))
        return False

    # -- streams ------------------------------------------------------------------------
    def beats(
        self,
        step: str,
        what: str,
        got: Sequence[BfpBeat],
        want: BeatArray,
        channels: int,
        shape: tuple[int, ...],
        exp_bits: int,
        elem_fmt: FloatFormat | None = None,
    ) -> bool:
        """Compare a recorded output stream with the expected beats, in order.

        ``elem_fmt``: plain beats of this element format (the core's Bfp = 0: lane sign and
        {exponent field, fraction}); None: BFP groups with ``exp_bits`` shared-exponent bits.

        Counts one value per real channel lane of every expected beat. A missing or extra
        beat is a mismatch of its own (and shifts every later beat, which then differ too).
        """
        lanes = want.lanes
        groups = -(-channels // lanes)
        ok = True
        if len(got) != len(want):
            ok = False
            self._add(
                Mismatch(
                    self.layer, step, f"{what} beat count", None, "", str(len(want)), str(len(got))
                )
            )
        n = min(len(got), len(want))
        g = BeatArray.from_beats(got[:n], lanes, want.man_bits)
        w = BeatArray(want.exp[:n], want.sign[:n], want.mant[:n], want.man_bits)
        lane_ch = (np.arange(n) % groups)[:, None] * lanes + np.arange(lanes)[None, :]
        real = lane_ch < channels
        self.checked += int(real.sum())
        bad = (g.sign != w.sign) | (g.mant != w.mant) | (g.exp != w.exp)[:, None]
        if not np.any(bad):
            return ok
        gv = bfp_values(g, exp_bits) if elem_fmt is None else plain_values(g, elem_fmt)
        wv = bfp_values(w, exp_bits) if elem_fmt is None else plain_values(w, elem_fmt)
        hw = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        for b, lane in zip(*np.nonzero(bad), strict=True):
            pos = int(b) // groups
            ch = int(lane_ch[b, lane])
            where = (
                f"stream index {pos} (n={pos // hw}, hw={pos % hw}) beat {int(b)} lane {int(lane)}"
            )
            if ch >= channels:
                where += " (padding lane)"
            self._add(
                Mismatch(
                    self.layer,
                    step,
                    what,
                    ch,
                    where,
                    _field_str(wv[b, lane], w, b, lane),
                    _field_str(gv[b, lane], g, b, lane),
                )
            )
        return False

    # -- results ------------------------------------------------------------------------
    def first(self) -> Mismatch | None:
        return min(self.mismatches, key=Mismatch.order) if self.mismatches else None

    def summary(self) -> str:
        if not self.mismatches:
            return f"scoreboard: {self.checked} values checked, all bit-exact"
        first = self.first()
        steps = sorted({m.step for m in self.mismatches}, key=STEP_ORDER.index)
        return (
            f"scoreboard: {self.checked} values checked, {len(self.mismatches)} mismatches "
            f"(steps {', '.join(steps)}); first: {first}"
        )
