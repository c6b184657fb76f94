# SPDX-License-Identifier: Apache-2.0
"""Synthesis, timing and power of the RTL (issue 4 section 2): Yosys 0.23 + OSU018 + OpenSTA.

One function, :func:`synthesize`, takes a design (top module + parameters) through:

1. Yosys, hierarchical (no ``-flatten``: each parameterisation of a module is synthesized once,
   so the 16 lane datapaths of the core cost one datapath): ``synth -noabc``, saved; then
   - OSU018: ``dfflibmap`` + ``abc -liberty`` + ``stat -liberty`` (cell area, µm²) and the
     mapped netlist for OpenSTA;
   - technology-free: ``dfflegalize`` to plain D flip-flops (so they are counted) +
     ``abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`` + ``stat -tech cmos`` (transistors, exact: no "+").
   Per-module statistics are parsed from the log and summed over the instance tree here, so
   every block (statistics, datapath, BFP pack/unpack, recip/rsqrt, channel unit, glue) gets
   exact per-instance and per-design numbers; the design totals are checked against Yosys's own
   "design hierarchy" totals.
2. OpenSTA on the mapped netlist: critical path and fmax; vectorless power at a stated clock
   (every net ``ACTIVITY`` transitions per clock cycle, duty 0.5, ``set_power_activity
   -global``; the clock toggles every cycle), for the design and for each block linked on
   its own.

Results go to ``runs/synth/<label>/`` (logs, netlist, ``result.json``); a run whose Yosys
script, sources and tools are unchanged is reused (``force=True`` re-runs).

``python -m lightnorm.hw.synth`` synthesizes the default LightNorm core (and the FP32 baseline
when ``hdl/bn_fp32_core.sv`` exists); ``--ci`` runs only the quick generic check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# the clock gate's module name and the Liberty reader (lightnorm.hw.activity imports this
# module only inside its functions)
from lightnorm.hw.activity import ICG, liberty_cells

ROOT = Path(__file__).resolve().parents[3]
HDL = ROOT / "hdl"
RUNS = ROOT / "runs" / "synth"
LIB_NAME = "osu018_stdcells.lib"
GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
PERIOD_NS = 10.0  # clock for the power figures (100 MHz), also the STA reference clock
ACTIVITY = 0.2  # vectorless: transitions per clock cycle on every net, duty 0.5
NICE = ["nice", "-n", "5"]
FLOW_VERSION = "9"  # bump when the parsing or the OpenSTA part changes (invalidates results)
ABC_CONSTR = "set_driving_cell BUFX2\nset_load 0.02\n"  # pF: about two INVX1 inputs
# ABC's mapping, timing-driven: a delay target for the logic between two flip-flops (ps;
# the 150 MHz goal's 6.67 ns less the flip-flops' clock-to-Q and setup and ABC's optimism
# against OpenSTA's load-dependent delays), structural choices (dch) instead of Yosys's
# default area-recovery script, whose &fraig / scorr / dc2 / dretime rewrite every wide
# adder, negation and prefix-OR that Yosys built as a Brent-Kung tree into a ripple chain
# (0.1-0.2 ns per bit: a 59-bit negation took 6 ns); then ABC's buffering and gate sizing.
ABC_DELAY_PS = 5000
# The modules kept as blocks in the mapped netlist (per-block area, timing and energy); every
# other module (rounders, operators, converters, delay lines) is flattened into its parent
# before mapping, so that ABC sees the real load of a net that fans out into 16 rounders
# (at a module boundary it assumes abc.constr's set_load: a 4.6 ns gate in the BFP unpack)
# and optimizes across the boundary.
KEEP_MODULES = (
    "lightnorm_core",
    "lightnorm_stats",
    "lightnorm_datapath",
    "lightnorm_chan_unit",
    "lightnorm_bfp_unpack",
    "lightnorm_bfp_pack",
    "lightnorm_recip",
    "lightnorm_rsqrt",
    "lightnorm_recip_seq",
    "lightnorm_rsqrt_seq",
)
ABC_SCRIPT = (
    f"strash\ndch -f\nmap -D {ABC_DELAY_PS}\ntopo\nbuffer -p\n"
    f"upsize -D {ABC_DELAY_PS}\ndnsize -D {ABC_DELAY_PS}\n"
)


@dataclass(frozen=True)
class Design:
    """A synthesizable configuration: top module, parameter overrides, throughput."""

    label: str
    top: str
    params: dict[str, int] = field(default_factory=dict)
    values_per_cycle: int = 1  # values processed per clock (lanes) for energy per value
    extra_files: tuple[str, ...] = ()  # hdl/ files not in hdl/files.f (e.g. a baseline top)
    clock: str | None = "clk_i"
    static_ports: tuple[str, ...] = ()  # inputs held constant in the power run (configuration)
    # clock gating inserted by the flow: every flip-flop with an enable on a gated clock, one
    # clock gate (hdl/syn/clock_gate.v) per enable signal
    clock_gating: bool = False


def liberty() -> Path:
    hits = sorted((ROOT / ".tools").rglob(LIB_NAME))
    if not hits:
        raise FileNotFoundError(f"{LIB_NAME} not under .tools/: run `make tools`")
    return hits[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tool_versions() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except FileNotFoundError:
            return "not installed"

    return {
        "yosys": out(["yosys", "-V"]),
        "sta": "OpenSTA " + out(["sta", "-version"]),
        "python": sys.version.split()[0],
    }


def sources(design: Design) -> list[Path]:
    """The hdl/files.f sources (in order) that the design uses: the files without a module
    (the package) and those holding a module reachable from the top by instantiation. So an
    edit of an unrelated file neither re-runs nor changes a design's synthesis."""
    lines = (HDL / "files.f").read_text().splitlines()
    files = [HDL / ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("//")]
    files += [HDL / f for f in design.extra_files if HDL / f not in files]
    text = {f: re.sub(r"//.*", "", f.read_text()) for f in files}
    owner = {m: f for f in files for m in re.findall(r"^\s*module\s+(\w+)", text[f], re.M)}
    used, todo = set(), [design.top]
    while todo:
        m = todo.pop()
        if m in used or m not in owner:
            continue
        used.add(m)
        todo += re.findall(r"^\s*(\w+)\s*(?:#\s*\(|\w+\s*\()", text[owner[m]], re.M)
    keep = {owner[m] for m in used}
    return [f for f in files if f in keep or not re.search(r"^\s*module\s", text[f], re.M)]


# --------------------------------------------------------------------------- Yosys


def yosys_scripts(design: Design, lib: Path) -> dict[str, str]:
    """The three Yosys stages, each its own process so each is cached on its own:
    ``front`` (parse, elaborate, generic ``synth -noabc`` -> generic.il; also the CI check),
    ``lib`` (OSU018 mapping -> mapped.v) and ``cmos`` (technology-free gate count)."""
    files = " ".join(str(f) for f in sources(design))
    chparam = " ".join(f"-set {k} {v}" for k, v in design.params.items())
    front = [f"read_verilog -sv -D SYNTHESIS {files}"]
    if chparam:  # (hierarchy -chparam trips an assertion in Yosys 0.23; chparam does not)
        front.append(f"chparam {chparam} {design.top}")
    front += [
        f"hierarchy -check -top {design.top}",
        f"rename -top {design.top}",
        # the register files are flattened into their parent before the memories are mapped:
        # a read port with a partly constant address (the core's lane reads) then becomes a
        # multiplexer over the words it can reach, not over the whole file
        "proc",
        "setattr -mod -set keep_hierarchy 1 *",
        f"setattr -mod -unset keep_hierarchy {REGFILE} $paramod*{REGFILE}",
        "flatten",
        "setattr -mod -unset keep_hierarchy *",
        f"synth -top {design.top} -noabc",
        "write_rtlil generic.il",
        "stat",
    ]
    load = ["read_rtlil generic.il", f"hierarchy -top {design.top}"]
    keep = " ".join([design.top] + [p for m in KEEP_MODULES for p in (m, f"$paramod*{m}")])
    libmap = (
        [f"# abc.constr: {ABC_CONSTR!r}", f"# abc.script: {ABC_SCRIPT!r}"]
        + load
        + [
            f"setattr -mod -set keep_hierarchy 1 {keep}",
            "flatten",
        ]
        + (
            [
                # clock gating: an enabled flip-flop -> a clock gate + a plain flip-flop
                # (hdl/syn/clock_gate_map.v), then one gate per enable signal and module
                f"read_verilog {CLOCK_GATE}",
                f"techmap -map {CLOCK_GATE_MAP}",
                f"opt_merge -share_all t:{ICG}",
            ]
            if design.clock_gating
            else []
        )
        + [
            f"dfflibmap -liberty {lib}",
            # dfflibmap of Yosys 0.23 maps no latches: OSU018's LATCH (transparent while CLK
            # is high) by hand, an inverter in front of it for an active-low enable
            f"techmap -map {LATCH_MAP}",
            # -constr: the driver and load ABC's buffering and sizing (abc.script: buffer,
            # upsize, dnsize) assume; without them a select line of the flop arrays drives
            # thousands of pins unbuffered
            f"abc -liberty {lib} -constr abc.constr -script abc.script",
            "opt_clean",
            f"stat -liberty {lib}",
            "splitnets",  # OpenSTA's reader takes no concatenation on an assign's left side
            "opt_clean -purge",
            "write_verilog -noattr -noexpr -nohex -nodec mapped.v",
        ]
    )
    cmos = load + [
        # plain D flip-flops only, so that `stat -tech cmos` counts every cell: async resets
        # become synchronous logic (a few hundred control flops; the data arrays have none)
        "async2sync",
        "dfflegalize -cell $_DFF_P_ 01",
        f"abc -g {GATES}",
        "opt_clean",
        "stat -tech cmos",
    ]
    return {k: "\n".join(v) + "\n" for k, v in (("front", front), ("lib", libmap), ("cmos", cmos))}


_SECTION = re.compile(r"^\d+\. Printing statistics\.$", re.M)
_MODULE = re.compile(r"^=== (.+) ===$", re.M)
_CELL = re.compile(r"^\s{5}(\S+)\s+(\d+)$")


def parse_stats(section: str) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """Per-module own cell counts ({module: {cell type: n}}) and the hierarchy-total lines."""
    mods: dict[str, dict[str, int]] = {}
    totals: dict[str, str] = {}
    last = ""
    parts = _MODULE.split(section)
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        cells = {}
        for line in body.splitlines():
            m = _CELL.match(line)
            if m:
                cells[m.group(1)] = int(m.group(2))
        if name == "design hierarchy":
            for key in (
                "Chip area for top module",
                "Estimated number of transistors",
                "Number of cells",
            ):
                m = re.search(re.escape(key) + r"[^:]*:\s+(\S+)", body)
                if m:
                    totals[key] = m.group(1)
            totals["cells_by_type"] = json.dumps(cells)
        else:
            mods[name] = cells
            last = body
    if not totals and len(mods) == 1:  # one module: Yosys prints no hierarchy section
        area = re.search(r"Chip area for (?:top )?module[^:]*:\s+(\S+)", last)
        tr = re.search(r"Estimated number of transistors:\s+(\S+)", last)
        if area:
            totals["Chip area for top module"] = area.group(1)
        if tr:
            totals["Estimated number of transistors"] = tr.group(1)
    return mods, totals


def base_name(module: str) -> str:
    """`$paramod$<hash>\\lightnorm_round` or `$paramod\\x\\P=1` -> `lightnorm_round` / `x`."""
    module = module.lstrip("\\")
    if module.startswith("$paramod"):
        return module.split("\\")[1]
    return module


def lef_areas(cells: tuple[str, ...]) -> dict[str, float]:
    """Placement area (µm², SIZE w BY h) of standard cells from the OSU018 LEF next to the
    Liberty; the Liberty gives the LATCH cell area 0, the LEF its real footprint."""
    lef = liberty().with_suffix(".lef")
    sizes = dict(
        (m[0], float(m[1]) * float(m[2]))
        for m in re.findall(
            r"MACRO\s+(\w+).*?SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", lef.read_text(), re.S
        )
    )
    return {c: sizes[c] for c in cells}


def liberty_areas(lib: Path) -> dict[str, float]:
    areas = {}
    for chunk in re.split(r"\bcell\s*\(", lib.read_text())[1:]:
        name = re.match(r"\s*\"?(\w+)", chunk)
        area = re.search(r"\barea\s*:\s*([\d.]+)", chunk)
        if name and area:
            areas[name.group(1)] = float(area.group(1))
    return areas


# Transistors per generic gate, as Yosys's `stat -tech cmos` counts them (kernel stat.cc).
CMOS_TRANSISTORS = {
    "$_NOT_": 2,
    "$_NAND_": 4,
    "$_NOR_": 4,
    "$_AND_": 6,
    "$_OR_": 6,
    "$_ANDNOT_": 6,
    "$_ORNOT_": 6,
    "$_AOI3_": 6,
    "$_OAI3_": 6,
    "$_AOI4_": 8,
    "$_OAI4_": 8,
    "$_NMUX_": 10,
    "$_MUX_": 12,
    "$_XOR_": 12,
    "$_XNOR_": 12,
    "$_DFF_P_": 16,
    "$_DFF_N_": 16,
}
# Latches: `async2sync` turns each into the 2:1 multiplexer with feedback that it is
# (Q = E ? D : Q, counted as a $_MUX_) through a zero-delay $_FF_, which `stat -tech cmos`
# does not count (its total ends in "+") and neither does the project
LATCH_TRANSISTORS = {"$_FF_": 0}
# the storage module whose memory is flattened into its parent in the front stage
REGFILE = "lightnorm_regfile"
LATCH_MAP = HDL / "syn" / "latch_map.v"
CLOCK_GATE = HDL / "syn" / "clock_gate.v"  # the clock gate (lightnorm_icg) in OSU018 cells
CLOCK_GATE_MAP = HDL / "syn" / "clock_gate_map.v"


def hier_sum(mods: dict[str, dict[str, int]], own: Mapping[str, float]) -> dict[str, float]:
    """Per module: own metric + instance counts x submodule totals (recursive)."""
    memo: dict[str, float] = {}

    def total(m: str) -> float:
        if m not in memo:
            memo[m] = own[m] + sum(n * total(c) for c, n in mods[m].items() if c in mods)
        return memo[m]

    return {m: total(m) for m in mods}


def instance_counts(mods: dict[str, dict[str, int]], top: str) -> dict[str, int]:
    """How many instances of each module the design under `top` holds."""
    counts = {m: 0 for m in mods}

    def walk(m: str, mult: int) -> None:
        counts[m] += mult
        for c, n in mods[m].items():
            if c in mods:
                walk(c, mult * n)

    walk(top, 1)
    return counts


def run_yosys(
    design: Design,
    out: Path,
    lib: Path,
    stages: tuple[str, ...] = ("front", "lib", "cmos"),
    force: bool = False,
) -> dict[str, tuple[str, float, bool]]:
    """Run (or reuse) the Yosys stages in `out`: {stage: (log text, wall seconds, reused)}.

    A stage is reused when its script, the sources (for ``front``) or the front end's key
    (for the mappings) and the Yosys version are unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    scripts = yosys_scripts(design, lib)
    front_key = hashlib.sha256(
        scripts["front"].encode()
        + b"".join(f.read_bytes() for f in sources(design))
        + tool_versions()["yosys"].encode()
    ).hexdigest()
    res: dict[str, tuple[str, float, bool]] = {}
    for stage in stages:
        key = (
            front_key
            if stage == "front"
            else hashlib.sha256((front_key + scripts[stage]).encode()).hexdigest()
        )
        log, stamp = out / f"yosys_{stage}.log", out / f"yosys_{stage}.key"
        if not force and stamp.exists() and log.exists() and stamp.read_text().split()[0] == key:
            res[stage] = (log.read_text(), float(stamp.read_text().split()[1]), True)
            continue
        (out / f"{stage}.ys").write_text(scripts[stage])
        (out / "abc.constr").write_text(ABC_CONSTR)
        (out / "abc.script").write_text(ABC_SCRIPT)
        stamp.unlink(missing_ok=True)
        t0 = time.monotonic()
        run = subprocess.run(
            NICE + ["yosys", "-q", "-l", log.name, f"{stage}.ys"],
            cwd=out,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - t0
        if run.returncode != 0:
            raise RuntimeError(
                f"yosys {stage} failed for {design.label} (see {log}):\n{run.stderr[-2000:]}"
            )
        stamp.write_text(f"{key} {wall:.1f}\n")
        res[stage] = (log.read_text(), wall, False)
        if stage == "front":
            force = True  # a new generic netlist invalidates the mappings
    return res


def clean_netlist(src: Path, dst: Path) -> dict[str, str]:
    """Rename Yosys's escaped `$paramod...` module names to plain identifiers for OpenSTA."""
    names: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        ident = m.group(0).strip()
        if ident not in names:
            base = re.sub(r"\W", "_", base_name(ident.lstrip("\\")))
            names[ident] = f"{base}__{hashlib.sha1(ident.encode()).hexdigest()[:8]}"
        return names[ident] + " "

    text = re.sub(r"\\\$paramod\S*\s", sub, src.read_text())
    dst.write_text(_VERILOG_MODULE.sub(_split_assigns_in_module, text))
    return {k.lstrip("\\"): v for k, v in names.items()}


MAX_FANOUT = 16  # buffer_fanout: loads per net (a BUFX4 per group of at most this many)
FANOUT_BUF = ("BUFX4", "A", "Y")
_INST_HEAD = re.compile(r"^\s*(\S+) (\\\S+ |\S+) \($")
_PIN = re.compile(r"^(\s*)\.(\w+)\((.*)\)(,?)$")


def buffer_fanout(
    src: Path, dst: Path, inputs: Mapping[str, frozenset[str]], max_fanout: int = MAX_FANOUT
) -> dict[str, int]:
    """Insert buffer trees on the nets of a Yosys netlist that drive more than `max_fanout`
    input pins (ABC buffers only the nets it maps: with clock gating, a write-data bit
    reaches the D pins of every word's flip-flops directly, 832 of them, outside ABC's view).
    `inputs`: cell or module -> its input pins (the Liberty's cells; the netlist's modules
    are read from it). The clock input (`clk_i`) is left alone: the primary clock is ideal
    in this flow (no clock tree, no power); a gated clock's net gets its buffer tree like
    any other net (its power counted, lightnorm.hw.activity). Returns the buffers inserted
    per module."""
    text = src.read_text()
    mods = {
        m: frozenset(re.findall(r"^\s*input\s+(?:\[\d+:\d+\]\s+)?(\S+)\s*;", b, re.M))
        for m, b in re.findall(r"^module\s+(\S+?)\s*\(.*?\);(.*?)^endmodule", text, re.M | re.S)
    }
    ins = {**inputs, **mods}
    out_lines: list[str] = []
    added: dict[str, int] = {}
    for block in re.split(r"(?m)^(?=module )", text):
        head = re.match(r"module\s+(\S+?)\s*\(", block)
        if not head:
            out_lines.append(block)
            continue
        lines = block.split("\n")
        loads: dict[str, list[int]] = {}  # net -> line indices of its input pins
        cell = None
        for i, ln in enumerate(lines):
            h = _INST_HEAD.match(ln)
            if h:
                cell = h.group(1)
                continue
            pm = _PIN.match(ln)
            if pm and cell is not None:
                pin, expr = pm.group(2), pm.group(3).strip()
                if expr == "clk_i":
                    continue  # the primary clock: ideal
                if pin in ins.get(cell, ()) and expr and not expr.startswith(("{", "1'", "0'")):
                    loads.setdefault(expr, []).append(i)
            elif ln.strip() == ");":
                cell = None
        new_decl, new_cells, n = [], [], 0
        for net, idx in loads.items():
            if len(idx) <= max_fanout:
                continue
            level = [(i, None) for i in idx]  # (line to rewire or None, buffer k)
            while len(level) > max_fanout:
                nxt = []
                for g in range(0, len(level), max_fanout):
                    b = f"_lnbuf{n}_"
                    n += 1
                    new_decl.append(f"  wire {b}y;")
                    for i, k in level[g : g + max_fanout]:
                        if i is not None:
                            pm = _PIN.match(lines[i])
                            assert pm is not None
                            lines[i] = f"{pm.group(1)}.{pm.group(2)}({b}y){pm.group(4)}"
                        else:
                            new_cells[k][1] = f"{b}y"
                    new_cells.append([b, None])
                    nxt.append((None, len(new_cells) - 1))
                level = nxt
            for _, k in level:
                new_cells[k][1] = net
        if not new_cells:
            out_lines.append(block)
            continue
        added[head.group(1).lstrip("\\")] = len(new_cells)
        cell_t, a, y = FANOUT_BUF
        body = [
            # an escaped identifier ends at a space
            f"  {cell_t} {b} (.{a}({src_net}{' ' if src_net.startswith(chr(92)) else ''}), "
            f".{y}({b}y));"
            for b, src_net in new_cells
        ]
        end = max(i for i, ln in enumerate(lines) if ln.startswith("endmodule"))
        lines[end:end] = body
        # the new wires after the module's header (its port list ends the first ");" line)
        hdr = next(i for i, ln in enumerate(lines) if ln.rstrip().endswith(");"))
        lines[hdr + 1 : hdr + 1] = new_decl
        out_lines.append("\n".join(lines))
    dst.write_text("".join(out_lines))
    return added


_VERILOG_MODULE = re.compile(r"^module .*?^endmodule", re.M | re.S)
# `wire [3:0] name;`, `output name;` (Yosys writes one declaration per line)
_DECL = re.compile(r"^\s*(?:wire|input|output|inout|reg)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+)\s*;", re.M)


def _split_assigns_in_module(m: re.Match[str]) -> str:
    """Split the left-concatenation assigns of one module; a bare identifier's width comes
    from its declaration in the module."""
    body = m.group(0)
    widths = {
        d.group(3): (int(d.group(1)), int(d.group(2))) if d.group(1) else None
        for d in _DECL.finditer(body)
    }
    return _ASSIGN_CONCAT.sub(lambda a: _split_assign(a, widths), body)


_ASSIGN_CONCAT = re.compile(r"^(\s*)assign \{ (.*) \} = \{ (.*) \};$", re.M)


def _bits(items: str, widths: dict[str, tuple[int, int] | None]) -> list[str] | None:
    """`a[3:1], b[0], 2'b01, \\c ` -> one entry per bit, MSB first (None if a width is unknown);
    ``widths``: the declared range of each identifier of the module (None: a scalar)."""
    out: list[str] = []
    for it in (x.strip() for x in items.split(",")):
        name = it + " " if it.startswith("\\") else it  # escaped names end at a space
        if it in widths:
            rng_decl = widths[it]
            if rng_decl is None:
                out.append(name)
            else:
                hi, lo = rng_decl
                step = -1 if hi >= lo else 1
                out += [f"{name}[{i}]" for i in range(hi, lo + step, step)]
            continue
        rng = re.fullmatch(r"(\S+)\[(\d+):(\d+)\]", it)
        const = re.fullmatch(r"(\d+)'b([01xz]+)", it)
        if rng:
            hi, lo = int(rng.group(2)), int(rng.group(3))
            step = -1 if hi >= lo else 1
            out += [f"{rng.group(1)}[{i}]" for i in range(hi, lo + step, step)]
        elif const:
            out += [f"1'b{c}" for c in const.group(2).rjust(int(const.group(1)), "0")]
        elif re.fullmatch(r"\S+\[\d+\]", it):
            out.append(it)
        else:
            return None
    return out


def _split_assign(m: re.Match[str], widths: dict[str, tuple[int, int] | None]) -> str:
    """OpenSTA's reader takes no concatenation on an assign's left side (Yosys writes one
    where output bits alias other bits): split it into one assign per bit."""
    lhs, rhs = _bits(m.group(2), widths), _bits(m.group(3), widths)
    if lhs is None or rhs is None or len(lhs) != len(rhs):
        return m.group(0)
    return "\n".join(f"{m.group(1)}assign {a} = {b};" for a, b in zip(lhs, rhs, strict=True))


# --------------------------------------------------------------------------- OpenSTA

_SLACK = re.compile(r"^\s*(-?[\d.]+)\s+slack", re.M)
_ARRIVAL = re.compile(r"^\s*([\d.]+)\s+data arrival time", re.M)
_BORROW = re.compile(r"^\s*(-?[\d.]+)\s+-?[\d.]+\s+time borrowed from endpoint", re.M)
_POINT = re.compile(r"^(Startpoint|Endpoint): (\S+)", re.M)
_POWER = re.compile(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", re.M)


def run_sta(
    netlist: Path,
    top: str,
    lib: Path,
    clock: str | None,
    out: Path,
    period_ns: float = PERIOD_NS,
    activity: float = ACTIVITY,
    static_ports: tuple[str, ...] = (),
    timeout_s: float = 300.0,
) -> dict:
    """Critical path, fmax and vectorless power of `top` in `netlist`; `static_ports`
    (port name patterns, e.g. the configuration) get activity 0, every other input
    `activity` transitions per clock cycle."""
    static = (
        (
            f"set_power_activity -input_ports [get_ports {{{' '.join(static_ports)}}}] "
            "-activity 0 -duty 0.5"
        )
        if static_ports
        else ""
    )
    clk = f"[get_ports {clock}]" if clock else ""
    inputs = f"[delete_from_list [all_inputs] [get_ports {clock}]]" if clock else "[all_inputs]"
    # Latches (a latch register file): the worst path into a latch reports slack 0 with the
    # time it borrows, which is handed on to the paths from that latch; those paths, the ones
    # into flip-flops and outputs, set fmax, so they are reported on their own. The clock
    # gates' checks (their enable latch opens at the falling edge) end the enable paths.
    latches = clock is not None and re.search(r"^\s*LATCH\s", netlist.read_text(), re.M)
    extra = (
        "report_checks -path_delay max -digits 3 -to [all_registers -edge_triggered -data_pins]\n"
        "report_checks -path_delay max -digits 3 -to [all_outputs]\n"
        if latches
        else ""
    )
    # Vectorless activity on every net ("-global"), not propagated from the inputs: the
    # propagation of this 2019 OpenSTA build returns NaN or crashes on the channel unit.
    tcl = f"""read_liberty {lib}
read_verilog {netlist}
link_design {top}
create_clock -name clk -period {period_ns} {clk}
set_input_delay 0 -clock clk {inputs}
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 3
{extra}set_power_activity -global -activity {activity} -duty 0.5
{static}
report_power
exit
"""
    script = out / f"sta_{top}.tcl"
    script.write_text(tcl)
    try:
        res = subprocess.run(
            ["sta", "-no_splash", str(script)],
            capture_output=True,
            text=True,
            check=False,
            cwd=out,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"OpenSTA did not finish in {timeout_s} s for {top}") from e
    text = res.stdout + res.stderr
    (out / f"sta_{top}.log").write_text(text)
    power = _POWER.search(text)
    paths = []  # (slack, path text) of each timing path group but the async (recovery) one
    borrow, gating = 0.0, None  # latches: the largest time borrowed, clock-gating slack
    for chunk in text.split("Startpoint: ")[1:]:
        slack = _SLACK.search(chunk)
        if not slack or "Path Group: **async_default**" in chunk:
            continue
        sl = float(slack.group(1))
        lent = _BORROW.search(chunk)
        if "Path Group: **clock_gating_default**" in chunk:
            # the gate's enable latch passes the time its input borrowed on to this check,
            # at the next rising edge: period - slack is the period the enable path needs
            # (at least half a period plus the latch: 5.2 ns at 10 ns, no limit here)
            gating = sl if gating is None else min(gating, sl)
            paths.append((sl, "Startpoint: " + chunk))
        elif lent and sl >= 0:
            borrow = max(borrow, float(lent.group(1)))
        else:
            paths.append((sl, "Startpoint: " + chunk))
    if not paths or power is None or "Error" in text:
        raise RuntimeError(f"OpenSTA failed for {top}: see {out / f'sta_{top}.log'}")
    worst, path = min(paths)
    min_period = period_ns - worst
    arrival = _ARRIVAL.search(path)
    points = dict(_POINT.findall(path))
    total_w = float(power.group(4))
    return {
        "critical_path_ns": round(min_period, 3),
        "data_arrival_ns": float(arrival.group(1)) if arrival else None,
        "startpoint": points.get("Startpoint"),
        "endpoint": points.get("Endpoint"),
        # None: no register or gate on any path (a block that is wiring only)
        "fmax_mhz": round(1000.0 / min_period, 2) if min_period > 0 else None,
        "power_clock_mhz": round(1000.0 / period_ns, 2),
        "activity": f"global {activity}",
        "power_mw": round(total_w * 1e3, 4),
        "power_internal_mw": round(float(power.group(1)) * 1e3, 4),
        "power_switching_mw": round(float(power.group(2)) * 1e3, 4),
        "power_leakage_mw": round(float(power.group(3)) * 1e3, 6),
        "energy_pj_per_cycle": round(total_w * period_ns * 1e3, 3),
    } | ({"latch_borrow_ns": borrow, "clock_gating_slack_ns": gating} if latches else {})


# --------------------------------------------------------------------------- the flow


def synthesize(design: Design, force: bool = False, sta_blocks: bool = True) -> dict:
    """Synthesize `design`, time it and write runs/synth/<label>/result.json."""
    lib = liberty()
    out = RUNS / design.label
    logs = run_yosys(design, out, lib, force=force)
    lib_mods, lib_tot = parse_stats(_SECTION.split(logs["lib"][0])[-1])
    cmos_mods, cmos_tot = parse_stats(_SECTION.split(logs["cmos"][0])[-1])
    wall = {k: round(v[1], 1) for k, v in logs.items()}
    reused = all(v[2] for v in logs.values())
    # the whole result (parsing + OpenSTA) is reused when Yosys was, for the same settings
    key = hashlib.sha256(
        "".join((out / f"yosys_{k}.key").read_text() for k in logs).encode()
        + repr((FLOW_VERSION, PERIOD_NS, ACTIVITY, design, sta_blocks)).encode()
    ).hexdigest()
    cached = out / "result.json"
    if reused and not force and cached.exists():
        old = json.loads(cached.read_text())
        if old.get("key") == key:
            old["yosys_reused"] = True
            return old
    own_latch = {m: cells.get("$_FF_", 0) for m, cells in cmos_mods.items()}
    tr_line = cmos_tot.get("Estimated number of transistors", "+")
    if "+" in tr_line and not any(own_latch.values()):
        raise RuntimeError("transistor count incomplete (a cell type was not counted)")
    areas = liberty_areas(lib)
    own_area = {
        m: sum(n * areas[c] for c, n in cells.items() if c in areas)
        for m, cells in lib_mods.items()
    }
    counts = CMOS_TRANSISTORS | LATCH_TRANSISTORS
    own_tr = {
        m: sum(n * counts.get(c, 0) for c, n in cells.items()) for m, cells in cmos_mods.items()
    }
    unknown = {c for cells in cmos_mods.values() for c in cells if c not in counts | cmos_mods}
    if unknown:
        raise RuntimeError(f"uncounted generic cells: {sorted(unknown)}")
    tot_area, tot_tr = hier_sum(lib_mods, own_area), hier_sum(cmos_mods, own_tr)
    own_ff = {
        m: sum(n for c, n in cells.items() if c.startswith("$_DFF"))
        for m, cells in cmos_mods.items()
    }
    tot_ff = hier_sum(cmos_mods, {m: float(v) for m, v in own_ff.items()})
    tot_latch = hier_sum(cmos_mods, {m: float(v) for m, v in own_latch.items()})
    top = design.top
    # cross-checks against Yosys's own hierarchy totals (a trailing "+" in its transistor
    # count: the latches' $_FF_)
    y_area = float(lib_tot.get("Chip area for top module", "nan"))
    y_tr = int(tr_line.rstrip("+"))
    if abs(tot_area[top] - y_area) > 1e-6 * max(1.0, y_area) or int(tot_tr[top]) != y_tr:
        raise RuntimeError(
            f"hierarchy sums {tot_area[top]}, {tot_tr[top]} != Yosys {y_area}, {y_tr}"
        )
    # OSU018's Liberty gives LATCH area 0: its footprint from the LEF
    if any("LATCH" in cells for cells in lib_mods.values()):
        latch_um2 = lef_areas(("LATCH",))["LATCH"]
        for m, cells in lib_mods.items():
            own_area[m] += cells.get("LATCH", 0) * latch_um2
        tot_area = hier_sum(lib_mods, own_area)
    buffers: dict[str, int] = {}
    if design.clock_gating:
        # the enables' hold multiplexers are gone: buffer the nets that now reach many D pins
        pins = {c.name: frozenset(c.inputs) for c in liberty_cells(lib)}
        buffers = buffer_fanout(out / "mapped.v", out / "mapped_buf.v", pins)
        buf_um2 = areas[FANOUT_BUF[0]]
        for m, k in buffers.items():
            own_area[m] += k * buf_um2
        tot_area = hier_sum(lib_mods, own_area)
    names = clean_netlist(
        out / ("mapped_buf.v" if design.clock_gating else "mapped.v"), out / "mapped_sta.v"
    )
    count = instance_counts(cmos_mods, top)
    blocks = {}
    for m in lib_mods:
        if m not in cmos_mods:  # the clock gate: mapped in the OSU018 stage only
            continue
        blocks[m] = {
            "module": base_name(m),
            "instances": count.get(m, 0),
            "area_um2": round(tot_area[m], 1),
            # the clock gates a module holds are its own cells
            "own_area_um2": round(own_area[m] + lib_mods[m].get(ICG, 0) * tot_area.get(ICG, 0), 1),
            "transistors": int(tot_tr[m]),
            "flops": int(tot_ff[m]),
            "latches": int(tot_latch[m]),
            "own_flops": own_ff[m],
            "own_transistors": own_tr[m],
            "parents": sorted(p for p, cells in cmos_mods.items() if m in cells),
            "sta_name": names.get(m, m),
        }
    result = {
        "label": design.label,
        "top": top,
        "params": design.params,
        "values_per_cycle": design.values_per_cycle,
        "area_um2": round(tot_area[top], 1),
        "transistors": y_tr,
        "flops": int(tot_ff[top]),
        "latches": int(tot_latch[top]),
        # clock gates inserted by the flow (Design.clock_gating); the technology-free stage
        # (transistors) counts the design without them, its enables as multiplexers
        "clock_gates": instance_counts(lib_mods, top).get(ICG, 0),
        # buffers inserted after ABC on nets with more than MAX_FANOUT loads (buffer_fanout)
        "fanout_buffers": sum(
            k * instance_counts(lib_mods, top).get(m, 0) for m, k in buffers.items()
        ),
        "yosys_wall_s": round(sum(wall.values()), 1),
        "yosys_stage_wall_s": wall,
        "yosys_reused": reused,
        "blocks": blocks,
    }
    t0 = time.monotonic()
    try:
        sta = run_sta(
            out / "mapped_sta.v", top, lib, design.clock, out, static_ports=design.static_ports
        )
        result.update(sta)
        result["energy_pj_per_value"] = round(
            sta["energy_pj_per_cycle"] / design.values_per_cycle, 4
        )
    except RuntimeError as e:  # area and transistors stand; timing/power not measured
        result["sta_error"] = str(e)
        for k in ("fmax_mhz", "critical_path_ns", "power_mw", "energy_pj_per_value"):
            result[k] = None
    if sta_blocks:
        for m, b in blocks.items():
            if m == top or b["instances"] == 0:
                continue
            try:
                b.update(
                    run_sta(
                        out / "mapped_sta.v",
                        str(b["sta_name"]),
                        lib,
                        design.clock if _has_port(out, str(b["sta_name"]), design.clock) else None,
                        out,
                        timeout_s=180.0,
                    )
                )
            except RuntimeError as e:
                b["sta_error"] = str(e)
    result["sta_wall_s"] = round(time.monotonic() - t0, 1)
    result["key"] = key
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _has_port(out: Path, module: str, port: str | None) -> bool:
    if port is None:
        return False
    text = (out / "mapped_sta.v").read_text()
    m = re.search(rf"^module {re.escape(module)}\s*\(([^)]*)\)", text, re.M)
    return m is not None and port in [p.strip() for p in m.group(1).split(",")]


def generic_check(design: Design, force: bool = False) -> dict:
    """CI check: parse + elaborate + generic synthesis (no cell mapping), timed."""
    out = RUNS / design.label  # the same front end as `synthesize` (shared cache)
    log, wall, reused = run_yosys(design, out, liberty(), ("front",), force=force)["front"]
    m = re.findall(r"Number of cells:\s+(\d+)", log.split("=== design hierarchy ===")[-1])
    return {
        "label": design.label,
        "yosys_wall_s": round(wall, 1),
        "reused": reused,
        "generic_cells": int(m[0]) if m else None,
    }


# --------------------------------------------------------------------------- designs

# The product: numeric contract v2 (docs/spec.md section 12), per-channel scalars in E8M7;
# the range-exact dx is a run-time mode of the same hardware.
STAT_V2 = {"StatExpBits": 8, "StatManBits": 7}
# The three cores are built with clock gating (Design.clock_gating), as a synthesis tool
# would insert it; the block sweeps without.
LIGHTNORM = Design(
    "lightnorm_core",
    "lightnorm_core",
    params=STAT_V2,
    values_per_cycle=16,
    clock_gating=True,
)
# Contract v1 (statistics in the element format), kept to show what contract v2 costs.
LIGHTNORM_V1 = Design("lightnorm_core_v1", "lightnorm_core", values_per_cycle=16, clock_gating=True)
BASELINE_FILE = "bn_fp32_core.sv"
BASELINE = Design(
    "bn_fp32_core",
    "bn_fp32_core",
    values_per_cycle=16,
    extra_files=(BASELINE_FILE,),
    clock_gating=True,
)


def default_designs() -> list[tuple[Design, bool]]:
    """(design, available): the baseline is listed even before its RTL exists."""
    return [(LIGHTNORM, True), (LIGHTNORM_V1, True), (BASELINE, (HDL / BASELINE_FILE).exists())]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lightnorm.hw.synth", description=__doc__)
    ap.add_argument("--ci", action="store_true", help="generic synthesis only (CI check)")
    ap.add_argument("--force", action="store_true", help="re-run even if cached")
    ap.add_argument("--design", action="append", help="label(s) to run (default: all)")
    ap.add_argument(
        "--summary",
        type=Path,
        help="write the runs' timing / area summary with the tool versions to this JSON file",
    )
    args = ap.parse_args(argv)
    summary: dict[str, dict] = {}
    for design, ok in default_designs():
        if args.design and design.label not in args.design:
            continue
        if not ok:
            print(f"{design.label}: not yet synthesized (hdl/{BASELINE_FILE} missing)")
            if args.ci:  # the CI check covers both cores
                return 1
            continue
        t0 = time.monotonic()
        if args.ci:
            r = generic_check(design, force=args.force)
            print(
                f"{r['label']}: generic synthesis OK, {r['generic_cells']} cells, "
                f"yosys {r['yosys_wall_s']} s{' (cached)' if r['reused'] else ''}"
            )
            continue
        r = synthesize(design, force=args.force)
        summary[r["label"]] = {
            k: r[k]
            for k in ("params", "area_um2", "flops", "fmax_mhz", "critical_path_ns")
            if k in r
        } | {
            "startpoint": r.get("startpoint"),
            "endpoint": r.get("endpoint"),
            "blocks_fmax_mhz": {
                base_name(m): b.get("fmax_mhz") for m, b in r.get("blocks", {}).items()
            },
        }
        print(
            f"{r['label']}: {r['area_um2']:.0f} um2, {r['transistors']} transistors, "
            f"{r['flops']} flops, fmax {r['fmax_mhz']} MHz, {r['power_mw']} mW @ "
            f"{PERIOD_NS} ns -> {r['energy_pj_per_value']} pJ/value; yosys "
            f"{r['yosys_wall_s']} s{' (cached)' if r['yosys_reused'] else ''}, "
            f"total {time.monotonic() - t0:.0f} s"
        )
    if args.summary and summary:
        out = {
            "what": "python -m lightnorm.hw.synth: pre-layout fmax (OpenSTA), cell area and "
            "flip-flops of each core (hdl/syn/README.md); ratios between designs of one run",
            "abc_script": ABC_SCRIPT,
            "tool_versions": tool_versions(),
            "designs": summary,
        }
        args.summary.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
