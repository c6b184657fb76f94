# SPDX-License-Identifier: Apache-2.0
"""Backend dispatch: which implementation runs a pass (native, torch.compile, eager)."""

from __future__ import annotations

import os
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch

from lightnorm.torch import _native
from lightnorm.torch.native import _NATIVE_PASSES, _native_ok

_BACKENDS = ("auto", "native", "compile", "eager")
# Without the native kernels, "auto" compiles the passes of tensors with at least this many
# elements; smaller ones run eagerly (a few ms per step), which spares a short run or a test the
# compilation (tens of s).
AUTO_COMPILE_MIN_NUMEL = 1 << 16
_compile_lock = threading.Lock()
_compiled: dict[tuple[str, Any], Callable[..., Any]] = {}
_compile_broken: list[str] = []  # set once when "auto" had to fall back to eager


def _resolve_backend(backend: str, numel: int | None = None) -> str:
    """'compile', 'try-compile' (auto) or 'eager'; 'auto' itself when numel is None (validation)."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("LIGHTNORM_TORCH_BACKEND", "auto")
        if env not in _BACKENDS:
            raise ValueError(
                f"LIGHTNORM_TORCH_BACKEND must be one of {list(_BACKENDS)}, got {env!r}"
            )
        backend = env
    if backend == "auto" and numel is not None:
        if _native.load() is not None:
            return "native"
        # no native kernels (no C++ compiler): compile, falling back to eager on failure
        return "try-compile" if numel >= AUTO_COMPILE_MIN_NUMEL else "eager"
    if backend == "native" and numel is not None and _native.load() is None:
        raise RuntimeError(
            f"backend='native': the native kernels are unavailable: {_native.error()}"
        )
    return backend


def _compiled_pass(fn: Callable[..., Any], p: Any) -> Callable[..., Any]:
    """torch.compile(fn with p bound), dynamic shapes. Each (pass, p) gets its own code object so
    that dynamo's per-code recompile limit never mixes configurations."""
    key = (fn.__name__, p)
    with _compile_lock:
        cached = _compiled.get(key)
        if cached is None:

            def entry(*args: Any) -> Any:
                return fn(*args, p=p)

            code = entry.__code__.replace(co_name=f"lightnorm{fn.__name__}_{len(_compiled)}")
            bound = types.FunctionType(
                code, entry.__globals__, code.co_name, None, entry.__closure__
            )
            # Per-channel steps work on C values: one thread (an OpenMP team for 64 values only
            # costs a wake-up, milliseconds on a busy machine).
            options: dict[str, Any] | None = None
            if fn.__name__.startswith("_chan"):
                options = {"cpp.threads": 1}
            cached = torch.compile(bound, dynamic=None, options=options)
            _compiled[key] = cached
    return cached


def _run(backend: str, fn: Callable[..., Any], p: Any, *args: Any) -> Any:
    """Run pass fn(*args, p=p) on the resolved backend ('auto' may fall back to eager;
    'native' runs the element-wise passes it covers natively and the rest eagerly)."""
    if backend == "native":
        native = _NATIVE_PASSES.get(fn.__name__)
        if native is not None and _native_ok(args):
            return native(*args, p=p)
        return fn(*args, p=p)
    if (
        backend == "eager"
        or (backend == "try-compile" and _compile_broken)
        or torch.compiler.is_compiling()
    ):
        return fn(*args, p=p)
    try:
        return _compiled_pass(fn, p)(*args)
    except Exception as exc:  # e.g. no C++ compiler for inductor
        if backend == "compile":
            raise
        _compile_broken.append(repr(exc))
        warnings.warn(
            f"lightnorm.torch: torch.compile failed ({exc!r}); using the eager path", stacklevel=3
        )
        return fn(*args, p=p)
