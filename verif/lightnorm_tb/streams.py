# SPDX-License-Identifier: Apache-2.0
"""Typed valid/ready stream components of the LightNorm core testbench.

A beat is one BFP group (:class:`BfpBeat`): a shared exponent field and ``lanes`` (sign,
magnitude) pairs, the layout of ``lightnorm.bfp.BFPTensor`` for one (n, h, w) position and one
channel group. :class:`BeatDriver` presents beats on a valid/ready input with random idle
cycles between beats (valid, once raised, stays until the beat is taken, as AXI-Stream
requires); :class:`BeatMonitor` drives ready with random stalls and records every beat taken,
with the cycle it was taken in. Handshakes are sampled in the ReadOnly phase of a cycle and
complete at the next rising edge, which works the same under Icarus and Verilator.

The driver and the monitor are cocotb-bus (0.3.0) BusDriver / BusMonitor subclasses on
cocotb_bus Bus objects (the stream ports grouped by role, IN_SIGNALS / OUT_SIGNALS); the
monitor's ready stalls come from a cocotb-bus BitDriver. verif/test_cocotb_bus.py checks the
parts of cocotb-bus this relies on under cocotb 2.1, and shows the one that does not work
(its Scoreboard, kept by lightnorm_tb.scoreboard).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb_bus.drivers import BitDriver, BusDriver
from cocotb_bus.monitors import BusMonitor

__all__ = [
    "IN_SIGNALS",
    "OUT_SIGNALS",
    "STALL_PATTERNS",
    "BeatArray",
    "BeatDriver",
    "BeatMonitor",
    "BfpBeat",
    "StallGen",
    "ready_runs",
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


#: Stream ports of the cores as cocotb-bus buses: bus name -> {role: signal suffix}, e.g. the
#: input bus "in" has dut.in_valid_i, dut.in_ready_o, dut.in_exp_i, ...
IN_SIGNALS = {
    "valid": "valid_i",
    "ready": "ready_o",
    "exp": "exp_i",
    "sign": "sign_i",
    "mant": "mant_i",
    "dy_exp": "dy_exp_i",
    "dy_sign": "dy_sign_i",
    "dy_mant": "dy_mant_i",
}
OUT_SIGNALS = {
    "valid": "valid_o",
    "ready": "ready_i",
    "exp": "exp_o",
    "sign": "sign_o",
    "mant": "mant_o",
}


def ready_runs(stalls: StallGen) -> Iterator[tuple[int, int]]:
    """The (on, off) cycle runs of a ready signal that follows ``stalls`` (one decision per
    cycle, as cocotb-bus's BitDriver takes them)."""
    if stalls.p == 0.0:
        while True:
            yield (1 << 30, 0)
    while True:
        on = 0
        while not stalls.stall():
            on += 1
        off = 1
        while stalls.stall():
            off += 1
        yield (on, off)


class BeatDriver(BusDriver):
    """Drives beats on the input bus (valid, ready, exp, sign, mant, dy_exp, dy_sign, dy_mant)
    with random idle cycles between beats; valid, once raised, stays until the beat is taken
    (AXI-Stream). One beat (x group, dy group or None) is one cocotb-bus transaction."""

    _signals = IN_SIGNALS

    def __init__(self, entity: Any, clock: Any, name: str = "in") -> None:
        super().__init__(entity, name, clock, case_insensitive=False)
        self.sent = 0
        self.idle_cycles = 0

    def idle(self) -> None:
        self.bus.valid.value = 0

    async def send_beats(
        self,
        beats: Sequence[BfpBeat],
        stalls: StallGen,
        dy_beats: Sequence[BfpBeat] | None = None,
    ) -> None:
        """Send every beat in order; returns after the last one has been taken."""
        self.sent = 0
        for i, beat in enumerate(beats):
            await self.send((beat, dy_beats[i] if dy_beats is not None else None), stalls=stalls)
            self.sent = i + 1
        self.idle()

    async def _driver_send(
        self, transaction: Any, sync: bool = True, stalls: StallGen | None = None
    ) -> None:
        beat, dy = transaction
        bus = self.bus
        while stalls is not None and stalls.stall():
            bus.valid.value = 0
            self.idle_cycles += 1
            await RisingEdge(self.clock)
        bus.exp.value = beat.exp
        bus.sign.value = beat.sign
        bus.mant.value = beat.mant
        if dy is not None:
            bus.dy_exp.value = dy.exp
            bus.dy_sign.value = dy.sign
            bus.dy_mant.value = dy.mant
        bus.valid.value = 1
        while True:
            await ReadOnly()
            fired = sig_int(bus.ready) == 1
            await RisingEdge(self.clock)
            if fired:
                return


class BeatMonitor(BusMonitor):
    """Records every beat taken on the output bus (valid and ready high at a rising edge);
    ready is driven with random stalls by a cocotb-bus BitDriver (:meth:`start_ready`)."""

    _signals = OUT_SIGNALS

    def __init__(self, entity: Any, clock: Any, name: str = "out") -> None:
        super().__init__(entity, name, clock, case_insensitive=False)
        self.ready_driver = BitDriver(self.bus.ready, clock)
        self._ready_on = False

    @property
    def beats(self) -> list[BfpBeat]:
        return list(self._recvQ)

    def start_ready(self, stalls: StallGen) -> None:
        """Clear the recorded beats and drive ready with ``stalls``."""
        self._recvQ.clear()
        self.ready_driver.start(ready_runs(stalls))
        self._ready_on = True

    def stop_ready(self) -> None:
        if self._ready_on:
            self.ready_driver.stop()
            self._ready_on = False
        self.bus.ready.value = 0

    async def _monitor_recv(self) -> None:
        bus = self.bus
        while True:
            await ReadOnly()
            if sig_int_or_x(bus.valid) == 1 and sig_int_or_x(bus.ready) == 1:
                self._recv(
                    BfpBeat(sig_int_or_x(bus.exp), sig_int_or_x(bus.sign), sig_int_or_x(bus.mant))
                )
            await RisingEdge(self.clock)
