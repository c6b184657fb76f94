# SPDX-License-Identifier: Apache-2.0
"""Power from switching activity (issue 12 section 4): the `make sim` training step replayed on
the mapped netlist, every net's transitions counted, and OpenSTA's per-instance power turned
into the energy of that step.

The method, in four steps:

1. **RTL run, recorded.** ``verif/sim_main.py`` runs the `make sim` layer on the RTL under
   Verilator (scoreboarded bit for bit against the reference model as always) with
   ``LN_RECORD``: every top-level port's value at every falling clock edge.
2. **Gate-level replay.** :mod:`lightnorm.hw.gatesim` flattens the mapped OSU018 netlist
   (the cells as truth tables from their Liberty functions, :func:`liberty_cells`;
   :func:`cell_models` writes the same functions as Verilog, checked against the vendor's
   UDP models on Icarus) and replays the recorded inputs cycle by cycle, zero delay; every
   output port is compared with the RTL's in every cycle, so the netlist is checked against
   the RTL on the whole run. A net's transitions are its changes from one cycle's settled
   value to the next (no glitches), counted over the cycles of the commands (``busy_o``,
   from a command's acceptance to its done pulse): the parameter and statistics port
   traffic around the commands is left out.
3. **Energy per transition.** OpenSTA reports each leaf instance's power twice, with every
   net at activity 0 and at activity 1 (``set_power_global_activity``; the clock pins always
   toggle twice a cycle): ``P0`` is the instance's leakage plus its clock-pin power,
   ``P1 - P0`` the power of one output transition per cycle (internal power of the cell's
   arcs plus the switching power of the net it drives, both linear in the activity). The
   build's OpenSTA (2.0.17) reads no VCD or SAIF, its ``set_power_activity -pins`` fails (an
   undefined ``get_pins_error``), and the pin activities it takes are replaced by its own
   propagation for output pins: hence the two-point instance powers.
4. **Energy of the step.** ``E = sum over instances of P0 * cycles * T + (P1 - P0) * T * t``,
   ``t`` the transitions of the instance's output net (the mean of the two outputs of the
   adder cells), ``cycles`` the commands' cycles (a core idle between commands is taken as
   clock gated).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LibCell",
    "liberty_cells",
    "liberty_expr",
    "cell_models",
    "instance_powers",
    "run_energy",
    "module_paths",
    "activity_energy",
]

# --------------------------------------------------------------------------- cell models


@dataclass(frozen=True)
class LibCell:
    """What a functional model needs of one Liberty cell."""

    name: str
    inputs: tuple[str, ...]
    outputs: dict[str, str]  # output pin -> Liberty function
    three_state: dict[str, str]  # output pin -> Liberty three_state condition (high Z when true)
    ff: dict[str, str] | None  # iq, iqn, next_state, clocked_on, clear, preset
    latch: dict[str, str] | None  # iq, iqn, data_in, enable


def _group_body(text: str, start: int) -> tuple[str, int]:
    """The text between the brace that opens at or after `start` and its matching brace."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    raise ValueError("unbalanced braces in the Liberty file")


def _attr(body: str, name: str) -> str | None:
    m = re.search(rf"\b{name}\s*:\s*\"?([^\";]*)\"?\s*;", body)
    return m.group(1).strip() if m else None


def liberty_cells(lib: Path) -> list[LibCell]:
    """The cells of a Liberty file, with their pins and sequential groups."""
    text = re.sub(r"/\*.*?\*/", "", lib.read_text(), flags=re.S)
    cells = []
    for m in re.finditer(r"\bcell\s*\(\s*\"?(\w+)\"?\s*\)", text):
        body, _ = _group_body(text, m.end())
        inputs: list[str] = []
        outputs: dict[str, str] = {}
        tri: dict[str, str] = {}
        for p in re.finditer(r"\bpin\s*\(\s*\"?(\w+)\"?\s*\)", body):
            pin_body, _ = _group_body(body, p.end())
            # the pin's own attributes: drop nested groups (timing, internal_power)
            own = re.sub(r"\w+\s*\([^)]*\)\s*\{[^{}]*(\{[^{}]*\}[^{}]*)*\}", "", pin_body)
            direction = _attr(own, "direction")
            if direction == "input":
                inputs.append(p.group(1))
            elif direction == "output":
                func = _attr(own, "function")
                if func is None:
                    raise ValueError(
                        f"Liberty cell {m.group(1)}: output {p.group(1)} has no function"
                    )
                outputs[p.group(1)] = func
                ts = _attr(own, "three_state")
                if ts:
                    tri[p.group(1)] = ts
        seq: dict[str, dict[str, str] | None] = {"ff": None, "latch": None}
        for kind in seq:
            g = re.search(rf"\b{kind}\s*\(\s*\"?(\w+)\"?\s*,\s*\"?(\w+)\"?\s*\)", body)
            if g:
                gbody, _ = _group_body(body, g.end())
                keys = ("next_state", "clocked_on", "clear", "preset", "data_in", "enable")
                seq[kind] = {"iq": g.group(1), "iqn": g.group(2)} | {
                    k: v for k in keys if (v := _attr(gbody, k)) is not None
                }
        cells.append(LibCell(m.group(1), tuple(inputs), outputs, tri, seq["ff"], seq["latch"]))
    return cells


_TOKEN = re.compile(r"\s*([A-Za-z_]\w*|[()!'+|&*^01])")


def liberty_expr(func: str) -> str:
    """A Liberty Boolean function as a Verilog expression: ``!`` not, ``+``/``|`` or,
    ``&``/``*``/juxtaposition and, ``^`` xor; constants 0/1."""
    tokens = []
    pos = 0
    func = func.strip()
    while pos < len(func):
        m = _TOKEN.match(func, pos)
        if not m:
            raise ValueError(f"Liberty function {func!r}: cannot parse at {func[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(func) and func[pos].isspace():
            pos += 1
    out: list[str] = []
    prev_operand = False
    for t in tokens:
        if t == "'":
            raise ValueError(f"Liberty function {func!r}: postfix ' is not supported")
        starts_operand = t in {"(", "!"} or t[0].isalnum() or t[0] == "_"
        if prev_operand and starts_operand:
            out.append("&")
        if t == "!":
            out.append("~")
        elif t in ("+", "|"):
            out.append("|")
        elif t in ("&", "*"):
            out.append("&")
        elif t in ("0", "1"):
            out.append(f"1'b{t}")
        else:
            out.append(t)
        prev_operand = t == ")" or t[0].isalnum() or t[0] == "_"
    return " ".join(out)


def cell_model(cell: LibCell) -> str:
    """Functional Verilog of one cell (zero delay; no timing checks)."""
    ports = list(cell.inputs) + list(cell.outputs)
    lines = [f"module {cell.name} ({', '.join(ports)});"]
    lines += [f"  input {p};" for p in cell.inputs]
    lines += [f"  output {p};" for p in cell.outputs]
    if cell.ff:
        ff = cell.ff
        lines += [f"  reg {ff['iq']};", f"  wire {ff['iqn']} = ~{ff['iq']};"]
        lines.append(f"  wire ln_clk = {liberty_expr(ff['clocked_on'])};")
        events, body = ["posedge ln_clk"], []
        if "clear" in ff:
            lines.append(f"  wire ln_clr = {liberty_expr(ff['clear'])};")
            events.append("posedge ln_clr")
            body.append(f"if (ln_clr) {ff['iq']} <= 1'b0;")
        if "preset" in ff:
            # clear wins while both are active (OSU018: clear_preset_var1 L); the preset is
            # masked by the clear, so that releasing the clear under an active preset is an
            # edge that sets the flop (level behaviour from an edge-triggered block)
            mask = " & ~ln_clr" if "clear" in ff else ""
            lines.append(f"  wire ln_pre = ({liberty_expr(ff['preset'])}){mask};")
            events.append("posedge ln_pre")
            body.append(f"{'else ' if body else ''}if (ln_pre) {ff['iq']} <= 1'b1;")
        nxt = f"{ff['iq']} <= {liberty_expr(ff['next_state'])};"
        body.append(f"else {nxt}" if body else nxt)
        lines.append(f"  always @({' or '.join(events)}) begin")
        lines += [f"    {b}" for b in body]
        lines.append("  end")
    if cell.latch:
        la = cell.latch
        lines += [f"  reg {la['iq']};", f"  wire {la['iqn']} = ~{la['iq']};"]
        lines.append(
            f"  always @* if ({liberty_expr(la['enable'])}) "
            f"{la['iq']} = {liberty_expr(la['data_in'])};"
        )
    for pin, func in cell.outputs.items():
        expr = liberty_expr(func)
        if pin in cell.three_state:
            expr = f"({liberty_expr(cell.three_state[pin])}) ? 1'bz : ({expr})"
        lines.append(f"  assign {pin} = {expr};")
    lines.append("endmodule")
    return "\n".join(lines)


def cell_models(lib: Path) -> str:
    """Functional models of every cell of `lib` (for simulators without UDP support)."""
    head = [
        f"// Functional models of the cells of {lib.name}, generated by lightnorm.hw.activity",
        "// from the Liberty functions: zero delay, no timing checks. Do not edit.",
        "`timescale 1ns/1ps",
        "/* verilator coverage_off */",
        "/* verilator lint_off LATCH */",
        "/* verilator lint_off COMBDLY */",
    ]
    return "\n".join(head + [cell_model(c) for c in liberty_cells(lib)]) + "\n"


# --------------------------------------------------------------------------- OpenSTA


def instance_powers(
    netlist: Path, top: str, lib: Path, clock: str, out: Path, period_ns: float
) -> dict[str, tuple[str, float, float]]:
    """{hierarchical leaf instance: (cell, P0 W, P1 W, leakage W)}: OpenSTA's instance power
    with every net at activity 0 and at activity 1 (clock pins: 2 transitions per cycle in
    both)."""
    dump = {a: out / f"instance_power_{a}.txt" for a in (0, 1)}
    tcl = [
        f"read_liberty {lib}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {period_ns} [get_ports {clock}]",
        "array set keys {}",
        "set corner [sta::parse_corner keys]",
        "set leaves {}",
        "foreach inst [get_cells -hierarchical *] {",
        "  if {[get_property $inst ref_name] ne {}} { lappend leaves $inst }",
        "}",
    ]
    for a, path in dump.items():
        tcl += [
            f"sta::set_power_global_activity {a}.0 0.5",
            f"set f [open {path} w]",
            "foreach inst $leaves {",
            "  set p [sta::instance_power $inst $corner]",
            '  puts $f "[get_property $inst ref_name] [get_full_name $inst] [lindex $p 3] '
            '[lindex $p 2]"',
            "}",
            "close $f",
        ]
    tcl.append("exit")
    script = out / "sta_instance_power.tcl"
    script.write_text("\n".join(tcl) + "\n")
    res = subprocess.run(
        ["sta", "-no_splash", str(script)], capture_output=True, text=True, cwd=out, check=False
    )
    (out / "sta_instance_power.log").write_text(res.stdout + res.stderr)
    if res.returncode != 0 or "Error" in res.stdout + res.stderr:
        raise RuntimeError(f"OpenSTA instance power failed: see {out / 'sta_instance_power.log'}")
    p: dict[int, dict[str, tuple[str, float, float]]] = {}
    for a, path in dump.items():
        p[a] = {}
        for line in path.read_text().splitlines():
            cell, name, total, leak = line.split()
            p[a][name] = (cell, float(total), float(leak))
    return {n: (c, p0, p[1][n][1], leak) for n, (c, p0, leak) in p[0].items()}


def run_energy(
    powers: dict[str, tuple[str, float, float]],
    transitions: dict[str, float],
    module_of: dict[str, str],
    cycles: int,
    period_ns: float,
    root: str = "",
    flops: set[str] | frozenset[str] = frozenset(),
    clocked: Mapping[str, float] | None = None,
) -> dict:
    """Energy (pJ) of a run of `cycles` cycles from per-instance powers ({leaf path: (cell,
    P0 W, P1 W)}) and per-instance output transitions ({leaf path: t}). `module_of`:
    hierarchical instance path ("" the top) -> its netlist module; `root`: the path of the
    core in the design ("" the top).

    Returns totals and a breakdown per block {block: {"dynamic_pj", "static_pj"}}, a block
    being the module (without its parameter hash) of the root's child that holds the cell,
    "(own cells)" for the cells of the root and of the wrappers around it.

    `flops`: the flip-flop instances (paths as in `transitions`). A second static figure per
    block, "per_block_ideal_clock_gating" (pJ), counts a flip-flop's P0 only in the cycles in
    which its output changes instead of in every cycle: a bound, ideal clock gating (every
    flip-flop clocked only when it takes a new value, the gates themselves free, its leakage
    dropped with its clock); the other cells' P0 is counted in full.

    `clocked`: the cells behind a clock gate (its flip-flops and its AND) -> the cycles in
    which the gate was enabled: their P0 less their leakage (a powers entry's optional fourth
    value, W) counts in those cycles only, the leakage in every cycle."""
    clocked = clocked or {}
    per_block: dict[str, dict[str, float]] = defaultdict(
        lambda: {"dynamic_pj": 0.0, "static_pj": 0.0}
    )
    gated: dict[str, float] = defaultdict(float)
    prefix = f"{root}/" if root else ""
    # OpenSTA escapes the brackets of generate names
    powers = {k.replace("\\", ""): v for k, v in powers.items()}
    missing = sorted(set(transitions) - set(powers))
    if missing:
        raise KeyError(f"instances without an OpenSTA power: {missing[:5]}")
    for path, (_cell, p0, p1, *leakage) in powers.items():
        if path not in transitions:
            raise KeyError(f"instance {path} was not simulated")
        parent = path.rpartition("/")[0]
        block = "(own cells)"
        if parent.startswith(prefix) and parent != root:
            child = parent[len(prefix) :].split("/", 1)[0]
            block = module_of[prefix + child].split("__", 1)[0]
            if block == ICG:  # a clock gate of the root: its own cell
                block = "(own cells)"
        leak = leakage[0] if leakage else 0.0
        static = leak * cycles + (p0 - leak) * clocked[path] if path in clocked else p0 * cycles
        bound = min(transitions[path], cycles) * p0 if path in flops else static
        per_block[block]["static_pj"] += static * period_ns * 1e3
        gated[block] += min(bound, static) * period_ns * 1e3
        per_block[block]["dynamic_pj"] += (p1 - p0) * transitions[path] * period_ns * 1e3
    dyn = sum(v["dynamic_pj"] for v in per_block.values())
    sta = sum(v["static_pj"] for v in per_block.values())
    return {
        "energy_pj": dyn + sta,
        "dynamic_pj": dyn,
        "clock_and_leakage_pj": sta,
        "energy_ideal_clock_gating_pj": dyn + sum(gated.values()),
        "cycles": cycles,
        "per_block": {k: dict(v) for k, v in per_block.items()},
        "per_block_ideal_clock_gating": dict(gated),
    }


_MOD = re.compile(r"^module\s+(\S+?)\s*\((.*?)^endmodule", re.M | re.S)
_SUBINST = re.compile(r"^\s*(\w+)\s+(\\\S+\s|\w+)\s*\(", re.M)


def module_paths(netlist: Path, top: str) -> dict[str, str]:
    """{hierarchical instance path: module} for the module instances of a Yosys netlist
    ("" is the top)."""
    text = netlist.read_text()
    bodies = {m.group(1): m.group(2) for m in _MOD.finditer(text)}
    children = {
        name: [
            (i.group(1), i.group(2).strip().lstrip("\\").strip())
            for i in _SUBINST.finditer(body)
            if i.group(1) in bodies
        ]
        for name, body in bodies.items()
    }
    out: dict[str, str] = {}

    def walk(mod: str, path: str) -> None:
        out[path] = mod
        for sub, inst in children[mod]:
            walk(sub, f"{path}/{inst}" if path else inst)

    walk(top, "")
    return out


# --------------------------------------------------------------------------- the flow

#: synthesis label -> `make sim` DESIGN of the same configuration
SIM_DESIGN = {
    "lightnorm_core": "lightnorm",
    "lightnorm_core_v1": "lightnorm-v1",
    "bn_fp32_core": "baseline",
}
#: synthesis label -> path of the core (lightnorm_core) in its netlist
ICG = "lightnorm_icg"  # the synthesis flow's clock gate (hdl/syn/clock_gate.v)
CORE_PATH = {"lightnorm_core": "", "lightnorm_core_v1": "", "bn_fp32_core": "u_core"}
ACTIVITY_VERSION = "3"  # bump when the method changes (invalidates cached results)
SEED = 1  # the `make sim` seed of the recorded run (the layer's data and the stimulus)


def _sha(*paths: Path) -> str:
    h = hashlib.sha256(ACTIVITY_VERSION.encode())
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def record_rtl(label: str, out: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Run the `make sim` step of `label`'s configuration on the RTL (Verilator), recording
    the ports: (the run's summary, {port: [cycles, width] bits, LSB first})."""
    from lightnorm.hw.synth import ROOT

    rec, summ = out / "rtl_ports.npz", out / "rtl_sim.json"
    env = dict(
        os.environ,
        SIM="verilator",
        SEED=str(SEED),  # the same layer and stimulus in every run
        DESIGN=SIM_DESIGN[label],
        LN_RECORD=str(rec),
        LN_SUMMARY=str(summ),
    )
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "models"), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, str(ROOT / "verif" / "sim_main.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    (out / "rtl_sim.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0 or not rec.exists() or not summ.exists():
        raise RuntimeError(f"RTL run of {label} failed: see {out / 'rtl_sim.log'}")
    data = np.load(rec)
    ports = {}
    for name in data.files:
        if name.endswith("__width"):
            continue
        width = int(data[f"{name}__width"])
        bits = np.unpackbits(data[name], axis=1, bitorder="little")
        ports[name] = bits[:, :width]
    return json.loads(summ.read_text()), ports


def activity_energy(label: str, top: str, clock: str = "clk_i", force: bool = False) -> dict:
    """The activity-based energy of the `make sim` training step on the mapped netlist of the
    synthesis run `label` (run `synth.synthesize` first). Cached in
    runs/synth/<label>/activity.json."""
    from lightnorm.hw import gatesim
    from lightnorm.hw.synth import PERIOD_NS, ROOT, RUNS, liberty

    out = RUNS / label
    netlist = out / "mapped_sta.v"
    if not netlist.exists():
        raise FileNotFoundError(f"{netlist} missing: synthesize {label} first")
    verif = ROOT / "verif"
    tb = sorted((verif / "lightnorm_tb").glob("*.py"))
    here = Path(__file__).parent
    key = _sha(netlist, verif / "sim_main.py", here / "activity.py", here / "gatesim.py", *tb)
    cached = out / "activity.json"
    if cached.exists() and not force:
        old = json.loads(cached.read_text())
        if old.get("key") == key:
            return old
    t0 = time.monotonic()
    summary, ports = record_rtl(label, out)
    t_rtl = time.monotonic() - t0
    lib = liberty()
    flat = gatesim.flatten(netlist, top, liberty_cells(lib), clock)
    stim = {p: ports[p] for p in flat.inputs}
    count = ports["busy_o"][:, 0].astype(bool)
    t1 = time.monotonic()
    trans, outs = flat.simulate(stim, count)
    t_gate = time.monotonic() - t1
    # the netlist against the RTL, every output bit of every cycle after the reset
    live = np.flatnonzero(ports["rst_ni"][:, 0])
    start = int(live[0]) if len(live) else len(count)
    mismatches = {
        p: int((outs[p][start:] != ports[p][start:]).any(axis=1).sum()) for p in flat.outputs
    }
    inst_t: dict[str, list[float]] = defaultdict(list)
    for path, net in zip(flat.gate_inst, flat.gate_out.tolist(), strict=True):
        inst_t[path].append(float(trans[net]))
    for path, net in zip(flat.ff_inst, flat.ff_q.tolist(), strict=True):
        inst_t[path].append(float(trans[net]))
    transitions = {k: sum(v) / len(v) for k, v in inst_t.items()}
    # clock gates (hdl/syn/clock_gate.v): the latch follows the enable; the inverter and the
    # AND are on the clock (their switching is in P0), the AND's and the gated flip-flops'
    # only in the cycles in which the gate was enabled
    enabled = trans[flat.icg_gclk] / 2 if len(flat.icg_en) else np.zeros(0)
    clocked: dict[str, float] = {}
    for i, path in enumerate(flat.icg_inst):
        transitions[f"{path}/u_lat"] = float(trans[flat.icg_en[i]])
        transitions[f"{path}/u_inv"] = transitions[f"{path}/u_and"] = 0.0
        clocked[f"{path}/u_and"] = float(enabled[i])
    for path, i in flat.gclk_tree:  # the buffers of a gated clock: like the gate's AND
        transitions[path] = 0.0
        clocked[path] = float(enabled[i])
    for path, i in zip(flat.ff_inst, flat.ff_icg.tolist(), strict=True):
        if i >= 0:
            clocked[path] = float(enabled[i])
    leaf_cells = {c.name for c in liberty_cells(lib)}
    powers = {  # the leaf cells (OpenSTA lists the module instances too, at 0 W)
        k: v
        for k, v in instance_powers(netlist, top, lib, clock, out, PERIOD_NS).items()
        if v[0] in leaf_cells
    }
    cycles = int(count.sum())
    energy = run_energy(
        powers,
        transitions,
        module_paths(netlist, top),
        cycles,
        PERIOD_NS,
        CORE_PATH[label],
        flops=set(flat.ff_inst),
        clocked=clocked,
    )
    # clock-tree buffers are not simulated: their instances have no entry (none in these
    # netlists: the clock input drives the flip-flops directly)
    shape = [int(d) for d in summary["shape"]]
    elements = int(np.prod(shape))
    result = {
        "key": key,
        "label": label,
        "layer": summary["layer"],
        "seed": summary["seed"],
        "shape": shape,
        "elements": elements,
        "channels": shape[1],
        "n_per_channel": elements // shape[1],
        "rtl_values_checked": summary["checked"],
        "rtl_mismatches": summary["mismatches"],
        "command_cycles_rtl": sum(ph["cycles"] for ph in summary["phases"]),
        "phases": summary["phases"],
        "cycles_simulated": len(count),
        "gate_output_mismatch_cycles": mismatches,
        "gate_cells": len(flat.gate_out),
        "gate_flops": len(flat.ff_q),
        "clock_gates": len(flat.icg_inst),
        "gated_flops": int((flat.ff_icg >= 0).sum()),
        # the gated flip-flops' clocked cycles over all their command cycles
        "gated_clock_duty": round(
            float(sum(clocked[p] for p in flat.ff_inst if p in clocked))
            / max(1, int((flat.ff_icg >= 0).sum()) * int(count.sum())),
            4,
        ),
        "period_ns": PERIOD_NS,
        **energy,
        "energy_pj_per_element": round(energy["energy_pj"] / elements, 3),
        "average_power_mw": round(energy["energy_pj"] / (cycles * PERIOD_NS), 3),
        "rtl_sim_s": round(t_rtl, 1),
        "gate_sim_s": round(t_gate, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    cached.write_text(json.dumps(result, indent=1) + "\n")
    return result
