# SPDX-License-Identifier: Apache-2.0
"""Build and load the native kernels of lightnorm.torch (csrc/lightnorm_native.cpp).

The library is compiled at first use with the system C++ compiler (``CXX``, default ``g++``)
for this machine (``-march=native``) and cached under ``$LIGHTNORM_CACHE`` (default
``~/.cache/lightnorm``), keyed by the source, the flags, the compiler and the CPU, so a change of
any of them rebuilds it. Compiling takes about 15 s (one core of a 2-core AMD EPYC, idle; more
on a busy machine). No compiler, or a failed build: ``load()`` returns None and ``error()`` says
why; lightnorm.torch then runs its torch-op passes.

The flags keep IEEE semantics: ``-ffp-contract=off`` (no fused multiply-add, which would change
TwoSum and the products) and no ``-ffast-math``. ``-fopenmp``: the library needs libgomp.so.1,
which the dynamic loader resolves to the copy torch has already loaded (same soname), so the
passes run on torch's own OpenMP threads (load it only after importing torch).

The element-wise passes run on SIMD vectors as wide as the machine's (``isa()``: 64 bytes with
AVX-512, 32 with AVX/AVX2, 16 otherwise), chosen when the library is built for this CPU. The
tests build variants with other widths or a portable ``-march`` (``build_variant``) and run the
bit-identity checks through each of them (``using``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "csrc" / "lightnorm_native.cpp"
FLAGS = (
    "-std=c++17",
    "-O3",
    "-march=native",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-fPIC",
    "-shared",
    "-fopenmp",
)
ABI = 6  # lightnorm_native_abi() of the source this module matches

_lock = threading.Lock()
_state: dict[str, object] = {}
_UNSET = object()


class Fmt(ctypes.Structure):
    _fields_ = [
        ("man", ctypes.c_int32),
        ("emin", ctypes.c_int32),
        ("emax", ctypes.c_int32),
        ("rne", ctypes.c_int32),
        ("sat", ctypes.c_int32),
        ("pad", ctypes.c_int32),
        ("maxn", ctypes.c_double),
    ]


class Bfp(ctypes.Structure):
    _fields_ = [
        ("enabled", ctypes.c_int32),
        ("mb", ctypes.c_int32),
        ("g", ctypes.c_int32),
        ("e_lo", ctypes.c_int32),
        ("e_hi", ctypes.c_int32),
        ("second_max", ctypes.c_int32),
        ("rne", ctypes.c_int32),
        ("keeps", ctypes.c_int32),
    ]


class Args(ctypes.Structure):
    """struct LnArgs of the source (same field order)."""

    _fields_ = [
        ("pass_", ctypes.c_int32),
        ("arith", ctypes.c_int32),
        ("in0_half", ctypes.c_int32),
        ("in1_half", ctypes.c_int32),
        ("out_half", ctypes.c_int32),
        ("n", ctypes.c_int64),
        ("c", ctypes.c_int64),
        ("s", ctypes.c_int64),
        ("nthreads", ctypes.c_int32),
        ("mode", ctypes.c_int32),
        ("extrema", ctypes.c_int32),
        ("sum_kind", ctypes.c_int32),
        ("nlimbs", ctypes.c_int32),
        ("fc", Fmt),
        ("fg", Fmt),
        ("fs", Fmt),
        ("bfp", Bfp),
        ("in0", ctypes.c_void_p),
        ("in1", ctypes.c_void_p),
        ("v0", ctypes.c_void_p),
        ("v1", ctypes.c_void_p),
        ("v2", ctypes.c_void_p),
        ("v3", ctypes.c_void_p),
        ("v4", ctypes.c_void_p),
        ("v5", ctypes.c_void_p),
        ("out0", ctypes.c_void_p),
        ("sum0", ctypes.c_void_p),
        ("limb0", ctypes.c_void_p),
        ("sum1", ctypes.c_void_p),
        ("limb1", ctypes.c_void_p),
        ("ext_max", ctypes.c_void_p),
        ("ext_min", ctypes.c_void_p),
        ("chunks", ctypes.c_int64),
        ("chunk_len", ctypes.c_int64),
        ("arg_max", ctypes.c_void_p),
        ("arg_min", ctypes.c_void_p),
        ("arg_slots", ctypes.c_void_p),  # set by the library
        ("arg_nseg", ctypes.c_int64),
    ]


def _cxx() -> str:
    return os.environ.get("CXX", "g++")


def _cache_dir() -> Path:
    env = os.environ.get("LIGHTNORM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lightnorm"


def _cpu_key() -> str:
    """The CPU's model and feature flags (-march=native code is only valid on such a CPU)."""
    keep = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features")):
                    keep.append(line.strip())
                if len(keep) >= 2:
                    break
    except OSError:
        keep.append(platform.processor())
    return "\n".join(keep)


def _build(out: Path, flags: Sequence[str] = FLAGS) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        cmd = [_cxx(), *flags, str(SOURCE), "-o", tmp]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr.strip()[-2000:]}")
        os.replace(tmp, out)  # atomic: concurrent processes never load a partial file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _library_path(flags: Sequence[str] = FLAGS) -> Path:
    ver = subprocess.run([_cxx(), "--version"], capture_output=True, text=True, check=True)
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(flags).encode(), ver.stdout.encode()):
        h.update(part)
        h.update(b"\0")
    h.update(_cpu_key().encode())
    return _cache_dir() / f"lightnorm_native-{h.hexdigest()[:16]}.so"


def _open(path: Path) -> ctypes.CDLL:
    """Load a built library and declare its entry points (RuntimeError on an ABI mismatch)."""
    lib = ctypes.CDLL(str(path))
    if lib.lightnorm_native_abi() != ABI:
        raise RuntimeError(f"{path}: ABI {lib.lightnorm_native_abi()} != {ABI}")
    lib.lightnorm_native_pass.argtypes = [ctypes.POINTER(Args)]
    lib.lightnorm_native_pass.restype = ctypes.c_int
    lib.lightnorm_native_prim.argtypes = [
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(Fmt),
    ]
    lib.lightnorm_native_prim.restype = ctypes.c_int
    lib.lightnorm_native_round_limbs.argtypes = [
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.POINTER(Fmt),
        ctypes.c_void_p,
    ]
    lib.lightnorm_native_round_limbs.restype = ctypes.c_int
    lib.lightnorm_native_isa.argtypes = []
    lib.lightnorm_native_isa.restype = ctypes.c_char_p
    return lib


def load() -> ctypes.CDLL | None:
    """The loaded library (built first if needed), or None when it cannot be built/loaded."""
    lib = _state.get("lib", _UNSET)  # the common case, without the lock
    if lib is not _UNSET:
        return lib  # type: ignore[return-value]
    with _lock:
        if "lib" in _state:
            return _state["lib"]  # type: ignore[return-value]
        lib = None
        try:
            path = _library_path()
            if not path.exists():
                _build(path)
            lib = _open(path)
            _state["path"] = str(path)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            _state["error"] = repr(exc)
            lib = None
        _state["lib"] = lib
        return lib


def build_variant(extra_flags: Sequence[str]) -> ctypes.CDLL:
    """A library built with ``extra_flags`` after FLAGS (e.g. ``-DLN_VEC_BYTES=16`` or
    ``-march=x86-64``), cached like the default one; not installed (see ``using``)."""
    flags = (*FLAGS, *extra_flags)
    path = _library_path(flags)
    if not path.exists():
        _build(path, flags)
    return _open(path)


@contextlib.contextmanager
def using(lib: ctypes.CDLL) -> Iterator[None]:
    """Run the passes and primitives of this thread's process through ``lib`` meanwhile (tests:
    the bit-identity checks of a variant build)."""
    load()
    with _lock:
        saved = dict(_state)
        _state["lib"] = lib
    try:
        yield
    finally:
        with _lock:
            _state.clear()
            _state.update(saved)


def isa() -> str | None:
    """What the loaded library was built for (SIMD width, instruction sets), None without it."""
    lib = load()
    return None if lib is None else lib.lightnorm_native_isa().decode()


def error() -> str | None:
    """Why load() returned None (None if it did not)."""
    return _state.get("error")  # type: ignore[return-value]


def library_path() -> str | None:
    """Path of the library (built and loaded first if needed; None when that failed)."""
    load()
    return _state.get("path")  # type: ignore[return-value]


def call(args: Args) -> None:
    """Run one pass; the tensors behind the pointers must stay alive during the call (ctypes
    releases the GIL: other Python threads run meanwhile)."""
    lib = load()
    if lib is None:
        raise RuntimeError(f"lightnorm native kernels unavailable: {error()}")
    rc = lib.lightnorm_native_pass(ctypes.byref(args))
    if rc != 0:
        raise RuntimeError(f"lightnorm_native_pass failed with code {rc}")


# lightnorm_native_prim op codes
PRIM_QUANT, PRIM_ADD, PRIM_MUL, PRIM_ROUND_SUM, PRIM_RECIP, PRIM_RSQRT = range(6)


def prim(op: int, n: int, a: int, b: int | None, out: int, fmt: Fmt) -> None:
    """out[i] = op(a[i], b[i]) rounded to fmt on float64 arrays (pointers) of n values."""
    lib = load()
    if lib is None:
        raise RuntimeError(f"lightnorm native kernels unavailable: {error()}")
    rc = lib.lightnorm_native_prim(op, n, a, b, out, ctypes.byref(fmt))
    if rc != 0:
        raise RuntimeError(f"lightnorm_native_prim({op}) failed with code {rc}")


def round_limbs(
    limbs: int,
    special: int,
    rows: int,
    chans: int,
    nlimbs: int,
    lsb: int,
    scales: Sequence[float],
    fmts: Sequence[Fmt],
    out: int,
) -> None:
    """out[k, c] = round(scales[k] * sum of channel c) to fmts[k] (exact, once) from limb rows
    (rows, chans, nlimbs) int64 and their NaN/Inf sums (rows, chans) float64 (pointers)."""
    lib = load()
    if lib is None:
        raise RuntimeError(f"lightnorm native kernels unavailable: {error()}")
    k = len(scales)
    sc = (ctypes.c_double * k)(*scales)
    fm = (Fmt * k)(*fmts)
    rc = lib.lightnorm_native_round_limbs(rows, chans, nlimbs, limbs, special, lsb, k, sc, fm, out)
    if rc != 0:
        raise RuntimeError(f"lightnorm_native_round_limbs failed with code {rc}")
