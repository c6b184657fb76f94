# SPDX-License-Identifier: Apache-2.0
"""Typed valid/ready stream components of the LightNorm core testbench.

A beat is one BFP group (:class:`BfpBeat`): a shared exponent field and ``lanes`` (sign,
magnitude) pairs, the layout of ``lightnorm.bfp.BFPTensor`` for one (n, h, w) position and one
channel group. :class:`BeatDriver` presents beats on a valid/ready input with random idle
cycles between beats (valid, once raised, stays until the beat is taken, as AXI-Stream
requires); :class:`BeatMonitor` drives ready with random stalls and records every beat taken,
with the cycle it was taken in. Handshakes are sampled in the ReadOnly phase of a cycle and
complete at the next rising edge, which works the same under Icarus and Verilator.

(cocotb-bus 0.3 targets the cocotb 1.x trigger API — Event.set(data), NextTimeStep
scheduling — so these small classes replace its drivers.)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = [
    "STALL_PATTERNS",
    "BeatArray",
    "BeatDriver",
    "BeatMonitor",
    "BfpBeat",
    "StallGen",
    "sig_int",
    "sig_int_or_x",
]


def sig_int(handle: Any) -> int:
    """Unsigned integer value of a signal (raises on X/Z)."""
    v = handle.value
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


def sig_int_or_x(handle: Any) -> int:
    """Like :func:`sig_int`, but -1 for a value holding X/Z bits (the scoreboard flags it)."""
    try:
        return sig_int(handle)
    except ValueError:
        return -1


@dataclass(frozen=True)
class BfpBeat:
    """One BFP group as the core's stream ports carry it (lane l at bit l / bits l*m...)."""

    exp: int
    sign: int  # lane l at bit l
    mant: int  # lane l at bits [l*man_bits +: man_bits]


@dataclass(frozen=True)
class BeatArray:
    """A whole stream of beats as arrays: exp (B,), sign (B, L), mant (B, L)."""

    exp: npt.NDArray[np.int64]
    sign: npt.NDArray[np.int64]
    mant: npt.NDArray[np.int64]
    man_bits: int

    def __len__(self) -> int:
        return int(self.exp.shape[0])

    @property
    def lanes(self) -> int:
        return int(self.sign.shape[1])

    def beat(self, i: int) -> BfpBeat:
        sign = 0
        mant = 0
        for lane in range(self.lanes):
            sign |= int(self.sign[i, lane]) << lane
            mant |= int(self.mant[i, lane]) << (lane * self.man_bits)
        return BfpBeat(int(self.exp[i]), sign, mant)

    def beats(self) -> list[BfpBeat]:
        return [self.beat(i) for i in range(len(self))]

    @classmethod
    def from_beats(cls, beats: Sequence[BfpBeat], lanes: int, man_bits: int) -> BeatArray:
        n = len(beats)
        exp = np.zeros(n, dtype=np.int64)
        sign = np.zeros((n, lanes), dtype=np.int64)
        mant = np.zeros((n, lanes), dtype=np.int64)
        mask = (1 << man_bits) - 1
        for i, b in enumerate(beats):
            exp[i] = b.exp
            for lane in range(lanes):  # X/Z (-1) stays -1: never equal to a model field
                sign[i, lane] = -1 if b.sign < 0 else (b.sign >> lane) & 1
                mant[i, lane] = -1 if b.mant < 0 else (b.mant >> (lane * man_bits)) & mask
        return cls(exp, sign, mant, man_bits)


#: Named stall patterns: (probability of an idle / not-ready cycle, maximum stall length).
STALL_PATTERNS: dict[str, tuple[float, int]] = {
    "none": (0.0, 0),
    "light": (0.1, 2),
    "heavy": (0.5, 3),
    "bursty": (0.05, 24),
}


class StallGen:
    """Random stall decisions: with probability p a stall of 1..max_len cycles starts."""

    def __init__(self, pattern: str, rng: random.Random) -> None:
        if pattern not in STALL_PATTERNS:
            raise ValueError(
                f"unknown stall pattern {pattern!r}; choose from {list(STALL_PATTERNS)}"
            )
        self.pattern = pattern
        self.p, self.max_len = STALL_PATTERNS[pattern]
        self.rng = rng
        self._left = 0

    def stall(self) -> bool:
        """True if this cycle is a stall cycle."""
        if self._left > 0:
            self._left -= 1
            return True
        if self.p > 0.0 and self.rng.random() < self.p:
            self._left = self.rng.randint(1, self.max_len) - 1
            return True
        return False


class BeatDriver:
    """Drives beats on (valid, ready, exp, sign, mant[, dy_exp, dy_sign, dy_mant]) with stalls.

    ``data`` maps role -> signal handle: exp, sign, mant and optionally dy_exp, dy_sign, dy_mant.
    """

    def __init__(self, clk: Any, valid: Any, ready: Any, data: dict[str, Any]) -> None:
        self.clk, self.valid, self.ready, self.data = clk, valid, ready, data
        self.sent = 0
        self.idle_cycles = 0

    def idle(self) -> None:
        self.valid.value = 0

    async def send(
        self,
        beats: Sequence[BfpBeat],
        stalls: StallGen,
        dy_beats: Sequence[BfpBeat] | None = None,
    ) -> None:
        """Send every beat in order; returns after the last one has been taken."""
        self.sent = 0
        i = 0
        presenting = False
        while i < len(beats):
            if not presenting:
                if stalls.stall():
                    self.valid.value = 0
                    self.idle_cycles += 1
                else:
                    b = beats[i]
                    self.data["exp"].value = b.exp
                    self.data["sign"].value = b.sign
                    self.data["mant"].value = b.mant
                    if dy_beats is not None:
                        d = dy_beats[i]
                        self.data["dy_exp"].value = d.exp
                        self.data["dy_sign"].value = d.sign
                        self.data["dy_mant"].value = d.mant
                    self.valid.value = 1
                    presenting = True
            await ReadOnly()
            fired = presenting and sig_int(self.ready) == 1
            await RisingEdge(self.clk)
            if fired:
                i += 1
                self.sent = i
                presenting = False
        self.valid.value = 0


class BeatMonitor:
    """Drives ready with stalls and records (beat, cycle) of every handshake until stopped."""

    def __init__(self, clk: Any, valid: Any, ready: Any, data: dict[str, Any]) -> None:
        self.clk, self.valid, self.ready, self.data = clk, valid, ready, data
        self.beats: list[BfpBeat] = []
        self.stall_cycles = 0
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    async def run(self, stalls: StallGen, cycle_ref: Any = None) -> None:
        self.beats = []
        self._stop = False
        while not self._stop:
            rdy = not stalls.stall()
            if not rdy:
                self.stall_cycles += 1
            self.ready.value = int(rdy)
            await ReadOnly()
            if rdy and sig_int(self.valid) == 1:
                self.beats.append(
                    BfpBeat(
                        sig_int_or_x(self.data["exp"]),
                        sig_int_or_x(self.data["sign"]),
                        sig_int_or_x(self.data["mant"]),
                    )
                )
            await RisingEdge(self.clk)
        self.ready.value = 0
