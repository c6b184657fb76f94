# SPDX-License-Identifier: Apache-2.0
"""Build and run a small Icarus simulation for the hardware-flow tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def run_icarus(work: Path, files: list[str]) -> str:
    """Compile `files` (in `work`) with iverilog -g2012 and return vvp's standard output;
    skips the test when Icarus is not installed, fails it when the build fails."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed: run `make tools`")
    build = subprocess.run(
        ["iverilog", "-g2012", "-o", "tb.vvp", *files],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(
        ["vvp", "-n", "tb.vvp"], cwd=work, capture_output=True, text=True, check=False
    )
    return run.stdout
