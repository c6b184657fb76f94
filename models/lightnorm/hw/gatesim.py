# SPDX-License-Identifier: Apache-2.0
"""A cycle-based, zero-delay simulation of a mapped OSU018 netlist, for switching activity.

Why not an HDL simulator: the cores' netlists hold 0.3–0.6 million cell instances once
flattened; Verilator turns the core's into ~400 MB of C++ with toggle coverage (hours of
compilation on this machine's two cores), and Icarus's event-driven gate-level run of the
`make sim` layer would take hours too. The netlist is synchronous (one clock, positive-edge
flip-flops, an asynchronous reset), so a cycle-based evaluation is exact at the cycle level:

1. :func:`flatten` reads the Yosys netlist (hierarchy, per-bit nets, assigns, port
   connections with ranges and concatenations) into one array of nets, the combinational
   cells as lookup tables of up to four inputs built from their Liberty functions (a
   two-output adder cell is two tables), and the flip-flops.
2. :meth:`Flat.simulate` replays the primary inputs of an RTL simulation cycle by cycle
   (recorded by ``verif/sim_main.py`` with ``LN_RECORD``): the combinational cells are
   evaluated level by level (numpy, one gather / table lookup / scatter per level), every
   net's value is compared with the previous cycle's (one transition at most per cycle: no
   glitches), the flip-flops load, and the outputs are compared with the RTL's outputs of
   the same cycle, so the netlist is checked against the RTL on the whole run.

The nets of the clock tree (the clock input and the buffers it drives) are not simulated; they
toggle twice per cycle. Clock gates (``lightnorm_icg``, hdl/syn/clock_gate.v: the enable
latched while the clock is low, ANDed with the clock) are taken whole: a flip-flop on a gated
clock loads at an edge when the gate's enable is 1 in that cycle, and the gated clock toggles
twice in such a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lightnorm.hw.activity import ICG, LibCell, liberty_expr

__all__ = ["Flat", "flatten", "cell_tables", "ICG"]

_MODULE = re.compile(r"^module\s+(\S+?)\s*\((.*?)\);(.*?)^endmodule", re.M | re.S)
_DECL = re.compile(
    r"^\s*(input|output|inout|wire|reg)\s+(?:\[(\d+):(\d+)\]\s+)?(\\\S+\s|\w+)\s*;", re.M
)
_INST = re.compile(r"^\s*(\w+)\s+(\\\S+\s|\w+)\s*\((.*?)\);", re.M | re.S)
_CONN = re.compile(r"\.(\w+)\s*\(\s*(.*?)\s*\)\s*(?=,\s*\.|\s*$)", re.S)
_ASSIGN = re.compile(r"^\s*assign\s+(.*?)\s*=\s*(.*?);\s*$", re.M)


def cell_tables(cells: list[LibCell]) -> dict[str, tuple[tuple[str, ...], list[int]]]:
    """{"CELL.PIN": (input pins, 16-entry truth table)} for every combinational output;
    table index = sum(input_i << i)."""
    out = {}
    for c in cells:
        if c.ff or c.latch or c.three_state:
            continue
        if len(c.inputs) > 4:
            raise ValueError(f"cell {c.name}: more than four inputs")
        for pin, func in c.outputs.items():
            # Verilog's operator precedence (~ & ^ |) is Python's; bit 0 carries the value
            expr = liberty_expr(func).replace("1'b0", "0").replace("1'b1", "1")
            code = compile(expr, f"<{c.name}.{pin}>", "eval")
            table = []
            for idx in range(16):
                env = {p: (idx >> i) & 1 for i, p in enumerate(c.inputs)}
                table.append(int(eval(code, {"__builtins__": {}}, env)) & 1)  # noqa: S307
            out[f"{c.name}.{pin}"] = (c.inputs, table)
    return out


@dataclass
class _Module:
    ports: list[str]
    widths: dict[str, tuple[int, int] | None]  # name -> (hi, lo) or None (scalar)
    directions: dict[str, str]
    insts: list[tuple[str, str, dict[str, str]]]  # (type, name, {pin: expression})
    assigns: list[tuple[str, str]]


def _clean(name: str) -> str:
    return name.strip().lstrip("\\").strip() if name.strip().startswith("\\") else name.strip()


def _parse(text: str) -> dict[str, _Module]:
    mods = {}
    for m in _MODULE.finditer(text):
        body = m.group(3)
        widths: dict[str, tuple[int, int] | None] = {}
        directions: dict[str, str] = {}
        for d in _DECL.finditer(body):
            name = _clean(d.group(4))
            widths[name] = (int(d.group(2)), int(d.group(3))) if d.group(2) else None
            if d.group(1) != "wire" and d.group(1) != "reg":
                directions[name] = d.group(1)
        insts = []
        for i in _INST.finditer(body):
            if i.group(1) in ("assign", "input", "output", "wire", "reg", "inout"):
                continue
            conns = {c.group(1): c.group(2) for c in _CONN.finditer(i.group(3).strip())}
            insts.append((i.group(1), _clean(i.group(2)), conns))
        assigns = [(a.group(1), a.group(2)) for a in _ASSIGN.finditer(body)]
        ports = [_clean(p) for p in m.group(2).replace("\n", " ").split(",")]
        mods[m.group(1)] = _Module(ports, widths, directions, insts, assigns)
    return mods


def _split_top(expr: str) -> list[str]:
    """`{ a, b[3:0], \\c , 2'b01 }` -> its items (MSB first); a plain expression -> [it]."""
    expr = expr.strip()
    if not expr.startswith("{"):
        return [expr]
    inner = expr[1:-1]
    items, buf = [], ""
    for tok in re.findall(r"\\\S+\s|[^,\\]+|,", inner):
        if tok == ",":
            items.append(buf.strip())
            buf = ""
        else:
            buf += tok
    items.append(buf.strip())
    return items


@dataclass
class Flat:
    """A flattened netlist: nets are indices; 0 and 1 are the constants."""

    n_nets: int
    inputs: dict[str, list[int]]  # port -> net per bit, LSB first
    outputs: dict[str, list[int]]
    gate_kind: np.ndarray  # table index per combinational output
    gate_in: np.ndarray  # [gates, 4] input nets (constant 0 padding)
    gate_out: np.ndarray  # output net per gate
    gate_inst: list[str]  # hierarchical instance path per gate
    tables: np.ndarray  # [kinds, 16]
    ff_d: np.ndarray
    ff_q: np.ndarray
    ff_clr: np.ndarray  # net of the active-low clear (R) or -1
    ff_pre: np.ndarray  # net of the active-low preset (S) or -1
    ff_inst: list[str]
    clock_nets: np.ndarray
    # flip-flop enables: the enable net of the clock gate on its clock, net 1 if ungated
    ff_en: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ff_icg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # or -1
    icg_en: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    icg_gclk: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    icg_inst: list[str] = field(default_factory=list)
    # every net of a gated clock (the gate's output and its buffer tree) and its gate
    gclk_nets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gclk_icg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gclk_tree: list[tuple[str, int]] = field(default_factory=list)  # (buffer, gate)
    levels: list[np.ndarray] = field(default_factory=list)  # gate indices per level

    def levelize(self) -> None:
        """Order the combinational gates by logic depth (sources: inputs, flops, constants)."""
        driver = np.full(self.n_nets, -1, dtype=np.int64)
        driver[self.gate_out] = np.arange(len(self.gate_out))
        level = np.full(len(self.gate_out), -1, dtype=np.int64)
        # a gate's level = 1 + max level of the gates driving its inputs (Kahn's order)
        indeg_src = driver[self.gate_in]  # [gates, 4] driving gate or -1
        users: dict[int, list[int]] = {}
        for g, srcs in enumerate(indeg_src.tolist()):
            for s in set(srcs):
                if s >= 0:
                    users.setdefault(s, []).append(g)
        missing = np.array([len({s for s in srcs if s >= 0}) for srcs in indeg_src.tolist()])
        ready = [g for g in range(len(self.gate_out)) if missing[g] == 0]
        for g in ready:
            level[g] = 0
        while ready:
            nxt = []
            for g in ready:
                for u in users.get(g, ()):
                    missing[u] -= 1
                    level[u] = max(level[u], level[g] + 1)
                    if missing[u] == 0:
                        nxt.append(u)
            ready = nxt
        if (level < 0).any():
            raise ValueError(f"combinational loop through {int((level < 0).sum())} cells")
        self.levels = [np.flatnonzero(level == k) for k in range(int(level.max()) + 1)]

    def simulate(
        self, stimulus: dict[str, np.ndarray], count: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the cycles of `stimulus` ({input port: [cycles, width] bits}); returns the
        transitions per net counted over the cycles where `count` is true (a net's change
        from the previous cycle's value; a gated clock: two per counted cycle with its gate
        enabled), and the outputs per cycle ({port: [cycles, width]})."""
        cycles = count.shape[0]
        v = np.zeros(self.n_nets, dtype=np.uint8)
        v[1] = 1
        prev = v.copy()
        trans = np.zeros(self.n_nets, dtype=np.uint32)
        outs = {p: np.zeros((cycles, len(n)), dtype=np.uint8) for p, n in self.outputs.items()}
        in_ids = {p: np.array(n) for p, n in self.inputs.items()}
        tables = self.tables.reshape(-1)
        lv = [
            (
                self.gate_in[g, 0],
                self.gate_in[g, 1],
                self.gate_in[g, 2],
                self.gate_in[g, 3],
                self.gate_kind[g] * 16,
                self.gate_out[g],
            )
            for g in self.levels
        ]
        clr_i = np.flatnonzero(self.ff_clr >= 0)  # flip-flops with an asynchronous clear
        pre_i = np.flatnonzero(self.ff_pre >= 0)  # ... with an asynchronous preset
        clr_q, clr_n = self.ff_q[clr_i], self.ff_clr[clr_i]
        ff_en = self.ff_en if len(self.ff_en) == len(self.ff_q) else np.ones_like(self.ff_q)
        gated = bool(len(self.icg_en))
        enabled = np.zeros(len(self.icg_en), dtype=np.int64)
        pre_q, pre_n = self.ff_q[pre_i], self.ff_pre[pre_i]

        def settle() -> None:
            for a, b, c, d, base, o in lv:
                v[o] = tables[base + (v[a] | (v[b] << 1) | (v[c] << 2) | (v[d] << 3))]

        def async_ctl() -> bool:
            """Active-low clear / preset: the preset first, the clear wins (clear_preset_var1
            L of the only such cell, DFFSR)."""
            clr, pre = v[clr_n] == 0, v[pre_n] == 0
            if not (clr.any() or pre.any()):
                return False
            v[pre_q[pre]] = 1
            v[clr_q[clr]] = 0
            return True

        for k in range(cycles):
            for p, ids in in_ids.items():
                v[ids] = stimulus[p][k]
            settle()
            if async_ctl():  # an asynchronous clear / preset acts within the cycle
                settle()
            if count[k]:
                trans += (prev != v).astype(np.uint32)
                if gated:
                    enabled += v[self.icg_en]
            np.copyto(prev, v)
            for p, out_nets in self.outputs.items():
                outs[p][k] = v[out_nets]
            # the clock edge: a gated flip-flop loads when its gate's enable is 1
            v[self.ff_q] = np.where(v[ff_en] != 0, v[self.ff_d], v[self.ff_q])
            async_ctl()
        trans[self.clock_nets] = 2 * int(count.sum())
        if gated:
            trans[self.gclk_nets] = 2 * enabled[self.gclk_icg]
        return trans, outs


def flatten(netlist: Path, top: str, cells: list[LibCell], clock: str = "clk_i") -> Flat:
    """The netlist under `top` as one flat array of nets (see the module docstring)."""
    mods = _parse(netlist.read_text())
    tabs = cell_tables(cells)
    kinds = {k: i for i, k in enumerate(tabs)}
    seq = {c.name: c for c in cells if c.ff}
    parent = list(range(2))  # union-find over net ids; 0 / 1 the constants

    def new() -> int:
        parent.append(len(parent))
        return len(parent) - 1

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < 2:  # keep the constants as roots
                ra, rb = rb, ra
            parent[rb] = ra

    gates: list[tuple[int, list[int], int, str]] = []
    flops: list[tuple[int, int, int, int, str, int]] = []
    icgs: list[tuple[int, int, int, str]] = []  # clock, enable, gated clock, path
    top_ports: dict[str, list[int]] = {}

    def instantiate(mname: str, path: str, port_bits: dict[str, list[int]] | None) -> None:
        mod = mods[mname]
        local: dict[str, list[int]] = {}  # name -> nets, index 0 = the declared LSB
        for name, w in mod.widths.items():
            n = abs(w[0] - w[1]) + 1 if w else 1
            local[name] = [new() for _ in range(n)]
        if port_bits is not None:
            for name, nets in port_bits.items():
                for a, b in zip(local[name], nets, strict=True):
                    union(a, b)
        else:
            top_ports.update({p: local[p] for p in mod.ports})

        def ref(item: str) -> list[int]:
            """Nets of one item, MSB first."""
            item = item.strip()
            c = re.fullmatch(r"(\d+)'b([01xz]+)", item)
            if c:
                return [1 if ch == "1" else 0 for ch in c.group(2).rjust(int(c.group(1)), "0")]
            if item.startswith("\\"):
                return [local[_clean(item)][0]]
            r = re.fullmatch(r"(\w+)\[(\d+):(\d+)\]", item)
            if r:
                hi, lo = int(r.group(2)), int(r.group(3))
                w = mod.widths[r.group(1)]
                base = w[1] if w else 0
                return [local[r.group(1)][i - base] for i in range(hi, lo - 1, -1)]
            r = re.fullmatch(r"(\w+)\[(\d+)\]", item)
            if r:
                w = mod.widths[r.group(1)]
                return [local[r.group(1)][int(r.group(2)) - (w[1] if w else 0)]]
            if item in local:
                return local[item][::-1]
            raise KeyError(f"{mname}: cannot resolve {item!r}")

        def bits(expr: str) -> list[int]:  # LSB first
            out: list[int] = []
            for it in _split_top(expr):
                out += ref(it)
            return out[::-1]

        for lhs, rhs in mod.assigns:
            for a, b in zip(bits(lhs), bits(rhs), strict=True):
                union(a, b)
        for ctype, iname, conns in mod.insts:
            ipath = f"{path}/{iname}" if path else iname
            if ctype == ICG:
                icgs.append(
                    (
                        bits(conns["clk_i"])[0],
                        bits(conns["en_i"])[0],
                        bits(conns["gclk_o"])[0],
                        ipath,
                    )
                )
            elif ctype in mods:
                sub = mods[ctype]
                pb: dict[str, list[int]] = {}
                for pin, expr in conns.items():
                    w = sub.widths[pin]
                    n = abs(w[0] - w[1]) + 1 if w else 1
                    got = bits(expr) if expr else [new() for _ in range(n)]
                    if len(got) != n:
                        raise ValueError(f"{ipath}.{pin}: {len(got)} bits for a {n}-bit port")
                    pb[pin] = got
                instantiate(ctype, ipath, pb)
            elif ctype in seq:
                ff = seq[ctype].ff
                assert ff is not None
                if ff["clocked_on"] != "CLK":
                    raise ValueError(f"{ipath}: only positive-edge flip-flops are simulated")
                q = [p for p, f in seq[ctype].outputs.items() if f == ff["iq"]]
                if not q or ff["next_state"] != "D":
                    raise ValueError(f"{ipath}: unexpected flip-flop cell {ctype}")
                clr = bits(conns["R"])[0] if "clear" in ff else -1
                pre = bits(conns["S"])[0] if "preset" in ff else -1
                if ("clear" in ff and ff["clear"] != "(!R)") or (
                    "preset" in ff and ff["preset"] != "(!S)"
                ):
                    raise ValueError(f"{ipath}: unexpected clear/preset of {ctype}")
                flops.append(
                    (
                        bits(conns["D"])[0],
                        bits(conns[q[0]])[0],
                        clr,
                        pre,
                        ipath,
                        bits(conns["CLK"])[0],
                    )
                )
            else:
                outs = [k for k in tabs if k.split(".")[0] == ctype]
                if not outs:
                    raise ValueError(f"{ipath}: cell {ctype} cannot be simulated")
                for key in outs:
                    pin = key.split(".")[1]
                    if not conns.get(pin):
                        continue
                    ins = [bits(conns[p])[0] for p in tabs[key][0]]
                    gates.append((kinds[key], ins, bits(conns[pin])[0], ipath))

    instantiate(top, "", None)
    mtop = mods[top]
    roots = np.array([find(i) for i in range(len(parent))], dtype=np.int64)
    # compact ids: 0 and 1 stay the constants
    uniq, idx = np.unique(roots, return_inverse=True)
    assert uniq[0] == 0 and uniq[1] == 1
    n_nets = len(uniq)

    def m(x: int) -> int:
        return int(idx[x])

    g_in = np.zeros((len(gates), 4), dtype=np.int64)
    for k, (_, ins, _, _) in enumerate(gates):
        g_in[k, : len(ins)] = [m(x) for x in ins]
    g_out = np.array([m(g[2]) for g in gates], dtype=np.int64)
    if len(np.unique(g_out)) != len(g_out) or np.isin(g_out, [0, 1]).any():
        raise ValueError("a net has several drivers (or a constant is driven)")
    clk_ids = {m(x) for x in top_ports[clock]}
    clock_nets = set(clk_ids)
    gclk = {m(g[2]): k for k, g in enumerate(icgs)}
    if len(gclk) != len(icgs) or any(m(g[0]) not in clk_ids for g in icgs):
        raise ValueError("a clock gate shares its output or is not on the clock input")
    # a gated clock's buffer tree (lightnorm.hw.synth.buffer_fanout): its buffers carry the
    # gate's clock, not simulated as logic
    g_kind = np.array([g[0] for g in gates], dtype=np.int64)
    keep = np.ones(len(gates), dtype=bool)
    kind_name = list(tabs)
    tree: list[tuple[str, int]] = []  # (buffer instance, gate)
    while True:
        on = np.flatnonzero(keep & np.isin(g_in, list(gclk)).any(axis=1))
        if not len(on):
            break
        for gi in on.tolist():
            name = kind_name[g_kind[gi]]
            if not name.startswith("BUF") or len(tabs[name][0]) != 1:
                raise ValueError(f"{gates[gi][3]}: {name} on a gated clock (buffers only)")
            gclk[int(g_out[gi])] = gclk[int(g_in[gi, 0])]
            keep[gi] = False
            tree.append((gates[gi][3], gclk[int(g_in[gi, 0])]))
    ff_icg = []
    for f in flops:
        c = m(f[5])
        if c not in clk_ids and c not in gclk:
            raise ValueError(f"{f[4]}: clocked by neither the clock nor a clock gate")
        ff_icg.append(gclk.get(c, -1))
    # the clock tree: gates whose input is a clock net (buffers / inverters)
    while True:
        driven = keep & np.isin(g_in, list(clock_nets)).any(axis=1)
        if not driven.any():
            break
        keep &= ~driven
        clock_nets.update(g_out[driven].tolist())
    flat = Flat(
        n_nets=n_nets,
        inputs={
            p: [m(x) for x in top_ports[p]]
            for p in mtop.ports
            if mtop.directions.get(p) == "input" and p != clock
        },
        outputs={
            p: [m(x) for x in top_ports[p]]
            for p in mtop.ports
            if mtop.directions.get(p) == "output"
        },
        gate_kind=g_kind[keep],
        gate_in=g_in[keep],
        gate_out=g_out[keep],
        gate_inst=[g[3] for g, k in zip(gates, keep, strict=True) if k],
        tables=np.array([t for _, t in tabs.values()], dtype=np.uint8),
        ff_d=np.array([m(f[0]) for f in flops], dtype=np.int64),
        ff_q=np.array([m(f[1]) for f in flops], dtype=np.int64),
        ff_clr=np.array([m(f[2]) if f[2] >= 0 else -1 for f in flops], dtype=np.int64),
        ff_pre=np.array([m(f[3]) if f[3] >= 0 else -1 for f in flops], dtype=np.int64),
        ff_inst=[f[4] for f in flops],
        clock_nets=np.array(sorted(clock_nets), dtype=np.int64),
        ff_en=np.array([m(icgs[i][1]) if i >= 0 else 1 for i in ff_icg], dtype=np.int64),
        ff_icg=np.array(ff_icg, dtype=np.int64),
        icg_en=np.array([m(g[1]) for g in icgs], dtype=np.int64),
        icg_gclk=np.array([m(g[2]) for g in icgs], dtype=np.int64),
        icg_inst=[g[3] for g in icgs],
        gclk_nets=np.array(list(gclk), dtype=np.int64),
        gclk_icg=np.array(list(gclk.values()), dtype=np.int64),
        gclk_tree=tree,
    )
    flat.levelize()
    return flat
