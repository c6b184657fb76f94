# SPDX-License-Identifier: Apache-2.0
"""The element-wise passes as fused C++ loops (csrc/lightnorm_native.cpp through
:mod:`lightnorm.torch._native`): same inputs, outputs and bits as :mod:`.passes`; the pool of
output buffers they reuse.

A pass runs in one of four arithmetics (``_arith``), each operator one correct rounding:
float32 emulation on SIMD vectors when every operator in it passes the float32 checks of
:mod:`.ops` (``_f32_fmt``, ``_add_f32``, ``_mul_f32``, and BFP grids that are normal float32
values); IEEE binary32 on SIMD vectors when every format of the pass is FP32 itself with
rounding to nearest (float32 add / sub / mul are then the operators; BFP of FP32 values is
integer work on the float32 bit patterns; the store pass, which has no add / mul, also under
truncation); float32 with
exact sums on SIMD vectors (mode 3) when the results are narrow formats and the operands any
float32 values, e.g. E8M7 statistics (``_add_f32x``: float32 TwoSum, the sum rounded to odd,
then once to the format; ``_mul_f32x``: exact float32 products, out-of-range ones decided by
their range; the kernel runs the pass in float64 if a per-channel scalar is no float32 value);
else float64 (products exact, sums by TwoSum and the breakpoint nudge). Exact sums: float64
rows ('f64' kinds) or 32-bit limbs (any width: 'i64' and 'wide' kinds), which :mod:`.channel`
rounds per channel in the same library (``_native.round_limbs``).
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightnorm.torch import _native
from lightnorm.torch.ops import (
    _F64,
    _I64,
    _NARROW,
    _add_f32,
    _add_f32x,
    _Bfp,
    _bfp_keeps,
    _f32_fmt,
    _Fmt,
    _mul_f32,
    _mul_f32x,
    _nfmt,
    _store_dtype,
    _sum_kind,
)
from lightnorm.torch.passes import _PBwd1, _PBwd2, _PNorm, _PStore, _PVar

_NATIVE_MIN_PAR = 1 << 15  # below this many elements a pass runs on one thread
_NATIVE_MAX_COUNT = 1 << 31  # limb sums stay below 2^63 for fewer values per channel


class _BufferPool:
    """Output buffers of the native passes (x_c, y, dy_c, dx), kept for reuse.

    glibc hands freed multi-megabyte blocks back to the kernel, so fresh output tensors of
    that size are page-faulted in again on every step (before this pool, ``perf stat -e
    page-faults`` counted about 6 400 faults per training step of a (32, 64, 32, 32) layer).
    A buffer here is a numpy array lent as ``torch.from_numpy(array)``: the tensor's storage
    holds a reference to the array, so the array is free again exactly when its reference
    count is back to the pool's own (every tensor and view of it, in Python or held by
    autograd, is gone). Small buffers, and requests beyond ``cap`` live buffers of one shape,
    get a plain torch.empty.
    """

    MIN_BYTES = 1 << 20

    def __init__(self, cap: int = 16) -> None:
        self.cap = cap
        self.lock = threading.Lock()
        self.arrays: dict[tuple[tuple[int, ...], torch.dtype], list[np.ndarray]] = {}

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.MIN_BYTES:
            return torch.empty(shape, dtype=dtype)
        key = (tuple(shape), dtype)
        with self.lock:
            arrays = self.arrays.setdefault(key, [])
            for i in range(len(arrays)):
                if sys.getrefcount(arrays[i]) == 2:  # the list's reference + the argument
                    return torch.from_numpy(arrays[i])
            if len(arrays) >= self.cap:
                return torch.empty(shape, dtype=dtype)
            arr = np.empty(shape, dtype=_NP_DTYPES[dtype])
            arrays.append(arr)
            return torch.from_numpy(arr)

    def clear(self) -> None:
        with self.lock:
            self.arrays.clear()


_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32}
_pool = _BufferPool()


def release_buffers() -> None:
    """Drop the native backend's pooled output buffers (memory in use stays valid; buffers
    still lent out are freed when their last tensor goes)."""
    _pool.clear()


def _native_ok(args: tuple[Any, ...]) -> bool:
    """The native passes take CPU tensors with float32, float16 or bfloat16 elements (widened
    to float32 exactly) and fewer than 2^31 values per channel."""
    t = args[0]
    return (
        t.device.type == "cpu"
        and t.dtype in _NARROW
        and t.shape[0] * t.shape[2] < _NATIVE_MAX_COUNT
    )


def _bfp_f32(b: _Bfp | None, f: _Fmt) -> bool:
    """BFP of values of f runs in float32 arithmetic (modes 0 and 3): every grid 2^sh, its
    rounding constant 1.5 * 2^(sh + 23) and the scalings 2^(+-k) it uses are normal float32
    values. (Mode 2, FP32 elements, rounds on the bit patterns and needs none of this.)"""
    if b is None:
        return True
    e_lo, e_hi = max(b.emin, f.lsb), min(b.emax, f.emax + 1)
    return (
        e_lo - b.mb + 1 >= -126
        and e_hi + 1 <= 127
        and b.mb - 1 - e_lo <= 127
        and e_hi - b.mb + 24 <= 127
    )


def _binary32(*fmts: _Fmt, rne: bool = True) -> bool:
    """Every format is FP32 (E8M23, IEEE binary32) rounding to nearest: IEEE float32 add / sub /
    mul round exactly like the spec's operators (subnormals included, Inf on overflow; the
    kernels map +-Inf to +-max_normal under saturation). BFP of FP32 values runs in integer
    operations on the float32 bit patterns (any grid; the kernel's round_wide). ``rne=False``:
    any rounding, for the store pass, which has no add / mul (quantize of a float32 value to FP32
    is the identity but for Inf under saturation)."""
    return all(
        f.man == 23 and f.emin == -126 and f.emax == 127 and (f.rne or not rne) for f in fmts
    )


def _arith(fits: Callable[[Any, Any], bool], b32: bool) -> int:
    """LnArgs.arith: 0 float32 emulation, 2 binary32, 3 float32 with exact sums, 1 float64.

    ``fits(add, mul)`` says whether every operator of the pass passes the given pair of
    checks; it is asked with the float32-emulation pair (``_add_f32``, ``_mul_f32``) and the
    exact-sums pair (``_add_f32x``, ``_mul_f32x``)."""
    if fits(_add_f32, _mul_f32):
        return 0
    if b32:
        return 2
    return 3 if fits(_add_f32x, _mul_f32x) else 1


def _nbfp(b: _Bfp | None, f: _Fmt) -> Any:
    if b is None:
        return _native.Bfp()
    e_lo, e_hi = max(b.emin, f.lsb), min(b.emax, f.emax + 1)
    return _native.Bfp(
        1, b.mb, b.g, e_lo, e_hi, int(b.second_max), int(b.rne), int(_bfp_keeps(f, b))
    )


def _f32_in(t: Tensor) -> Tensor:
    return (t if t.dtype == torch.float32 else t.to(torch.float32)).contiguous()


def _stored_in(t: Tensor) -> Tensor:
    return (t if t.dtype in (torch.float16, torch.float32) else t.to(torch.float32)).contiguous()


def _vec(t: Tensor) -> Tensor:
    return t.detach().to(_F64).contiguous()


def _nlimbs(f: _Fmt) -> int:
    return ((f.emax + 1 - f.man - f.lsb) >> 5) + 3


def _native_args(pass_id: int, arith: int, shape: torch.Size, **kw: Any) -> Any:
    n, c, s = shape
    a = _native.Args()
    a.pass_, a.arith, a.n, a.c, a.s = pass_id, arith, n, c, s
    a.nthreads = torch.get_num_threads() if n * c * s >= _NATIVE_MIN_PAR else 1
    for key, val in kw.items():
        setattr(a, key, val)
    # unused formats: the compute format (the kernels check one rounding/overflow per pass)
    if "fg" not in kw:
        a.fg = a.fc
    a.fs = a.fc
    return a


def _native_sums(
    a: Any, f: _Fmt, kind: str | None, n: int, c: int, slot: int
) -> tuple[Tensor, ...]:
    """Allocate the row sums of `kind` for slot 0/1 of a; the parts a torch pass returns."""
    if kind is None:
        return ()
    rows = torch.zeros((n, c), dtype=_F64)
    if kind == "f64":
        a.sum_kind = 1
        setattr(a, f"sum{slot}", rows.data_ptr())
        return (rows,)
    a.sum_kind, a.nlimbs, a.fs = 2, _nlimbs(f), _nfmt(f)
    limbs = torch.zeros((n, c, a.nlimbs), dtype=_I64)
    setattr(a, f"sum{slot}", rows.data_ptr())
    setattr(a, f"limb{slot}", limbs.data_ptr())
    return (limbs, rows)


def _native_store(v: Tensor, *, p: _PStore) -> tuple[Tensor, ...]:
    v = _f32_in(v)
    n, c, s = v.shape
    f32 = _f32_fmt(p.f) and _bfp_f32(p.bfp, p.f)  # no operators: the formats decide
    ar = _arith(lambda add, mul: f32, _binary32(p.f, rne=False))
    a = _native_args(0, ar, v.shape, fc=_nfmt(p.f), bfp=_nbfp(p.bfp, p.f), in0=v.data_ptr())
    out = _pool.empty((n, c, s), _store_dtype(p.f))
    a.out0, a.out_half = out.data_ptr(), int(out.dtype == torch.float16)
    sums = _native_sums(a, p.f, p.kind, n, c, 0)
    ext: tuple[Tensor, ...] = ()
    if p.extrema:
        ext = (torch.empty((n, c), dtype=_F64), torch.empty((n, c), dtype=_F64))
        a.extrema, a.ext_max, a.ext_min = 1, ext[0].data_ptr(), ext[1].data_ptr()
    args: tuple[Tensor, ...] = ()
    if p.chunks:  # chunk arg-max / arg-min, found while the stored rows are staged
        args = (torch.empty((c, p.chunks), dtype=_I64), torch.empty((c, p.chunks), dtype=_I64))
        a.chunks, a.chunk_len = p.chunks, (n * s) // p.chunks
        a.arg_max, a.arg_min = args[0].data_ptr(), args[1].data_ptr()
    _native.call(a)
    return (out, *sums, *ext, *args)


def _native_var(x_c: Tensor, mean: Tensor, *, p: _PVar) -> tuple[Tensor, ...]:
    x_c, mu = _stored_in(x_c), _vec(mean)
    n, c, _ = x_c.shape
    ar = _arith(
        lambda add, mul: add(p.cf, p.cf, p.st) and mul(p.cf, p.cf, p.cf),
        _binary32(p.cf, p.st),
    )
    a = _native_args(1, ar, x_c.shape, fc=_nfmt(p.cf), in0=x_c.data_ptr(), v0=mu.data_ptr())
    a.in0_half = int(x_c.dtype == torch.float16)
    sums = _native_sums(a, p.cf, p.kind, n, c, 0)
    _native.call(a)
    return sums


def _native_norm(x: Tensor, mean: Tensor, coeff: Tensor, beta: Tensor, *, p: _PNorm) -> Tensor:
    x = _f32_in(x) if p.store_input else _stored_in(x)
    vecs = [_vec(t) for t in (mean, coeff, beta)]
    ar = _arith(
        lambda add, mul: add(p.cf, p.cf, p.st) and mul(p.cf, p.cf, p.st) and _bfp_f32(p.bfp, p.cf),
        _binary32(p.cf, p.st),
    )
    a = _native_args(2, ar, x.shape, fc=_nfmt(p.cf), bfp=_nbfp(p.bfp, p.cf), in0=x.data_ptr())
    a.in0_half, a.mode = int(x.dtype == torch.float16), int(p.store_input)
    a.v0, a.v1, a.v2 = (t.data_ptr() for t in vecs)
    out = _pool.empty(tuple(x.shape), torch.float32)
    a.out0 = out.data_ptr()
    _native.call(a)
    return out


def _native_bwd1(
    dy: Tensor, x_c: Tensor, mean: Tensor, scale: Tensor, *, p: _PBwd1
) -> tuple[Tensor, ...]:
    dy, x_c = _f32_in(dy), _stored_in(x_c)
    n, c, s = dy.shape
    mu, sc = _vec(mean), _vec(scale)
    ar = _arith(
        lambda add, mul: (
            _f32_fmt(p.gf)
            and _bfp_f32(p.bfp, p.gf)
            and add(p.cf, p.cf, p.st)
            and mul(p.cf, p.cf, p.st)
            and mul(p.gf, p.gf, p.cf)
        ),
        _binary32(p.cf, p.gf, p.st),
    )
    a = _native_args(3, ar, dy.shape, fc=_nfmt(p.cf), fg=_nfmt(p.gf), bfp=_nbfp(p.bfp, p.gf))
    a.in0, a.in1, a.in1_half = dy.data_ptr(), x_c.data_ptr(), int(x_c.dtype == torch.float16)
    a.v0, a.v1 = mu.data_ptr(), sc.data_ptr()
    out = _pool.empty((n, c, s), _store_dtype(p.gf))
    a.out0, a.out_half = out.data_ptr(), int(out.dtype == torch.float16)
    sums = _native_sums(a, p.gf, p.kind, n, c, 0) + _native_sums(a, p.gf, p.kind, n, c, 1)
    _native.call(a)
    return (out, *sums)


def _native_bwd2(
    dy_c: Tensor,
    x_c: Tensor,
    mean: Tensor,
    scale: Tensor,
    k_beta: Tensor,
    k_gamma: Tensor,
    coeff: Tensor,
    corr: Tensor,
    marker: Tensor,
    amax: Tensor,
    amin: Tensor,
    *,
    p: _PBwd2,
) -> Tensor:
    """range_exact takes the chunk args amax / amin (C, K_n) stream indices (the native store
    pass's), not the marker of the torch pass: the kernel applies the correction at those
    elements of the blocks that hold them."""
    dy_c, x_c = _stored_in(dy_c), _stored_in(x_c)
    vecs = [_vec(t) for t in (mean, scale, corr, k_beta, k_gamma, coeff)]
    cf, gf, st = p.cf, p.gf, p.st

    def fits(add: Any, mul: Any) -> bool:
        ok = _f32_fmt(gf) and _bfp_f32(p.bfp, gf) and mul(gf, gf, st)
        if p.mode != "eval":
            ok = ok and add(gf, gf, st)
        if p.mode == "bn":
            ok = ok and add(cf, cf, st) and mul(cf, cf, st) and mul(gf, cf, st)
            ok = ok and add(gf, gf, gf)
        return bool(ok)

    mode = {"bn": 0, "range_exact": 1, "eval": 2}[p.mode]
    ar = _arith(fits, _binary32(cf, gf, st))
    a = _native_args(4, ar, dy_c.shape, fc=_nfmt(cf), fg=_nfmt(gf), bfp=_nbfp(p.bfp, gf))
    a.mode, a.in0, a.in1 = mode, dy_c.data_ptr(), x_c.data_ptr()
    a.in0_half, a.in1_half = int(dy_c.dtype == torch.float16), int(x_c.dtype == torch.float16)
    a.v0, a.v1, a.v2, a.v3, a.v4, a.v5 = (t.data_ptr() for t in vecs)
    args = None
    if p.mode == "range_exact":
        n, c, s = dy_c.shape
        args = (amax.to(_I64).contiguous(), amin.to(_I64).contiguous())
        assert args[0].shape == args[1].shape and args[0].shape[0] == c
        a.chunks = args[0].shape[1]
        a.chunk_len = (n * s) // a.chunks
        a.arg_max, a.arg_min = args[0].data_ptr(), args[1].data_ptr()
    out = _pool.empty(tuple(dy_c.shape), torch.float32)
    a.out0 = out.data_ptr()
    _native.call(a)
    return out


def _native_backend(backend: str, t: Tensor) -> str:
    """'native' stays 'native' only for tensors the native passes take (else 'eager')."""
    if backend == "native" and not _native_ok((t.reshape(t.shape[0], t.shape[1], -1),)):
        return "eager"
    return backend


def _pass_kind(f: _Fmt, count: int, backend: str) -> str:
    """The exact-sum kind of a pass: the native passes give limb rows ('i64' layout) for any
    width, so 'wide' becomes 'i64' there."""
    kind = _sum_kind(f, count)
    return "i64" if backend == "native" and kind == "wide" else kind


_NATIVE_PASSES: dict[str, Callable[..., Any]] = {
    "_pass_store": _native_store,
    "_pass_var": _native_var,
    "_pass_norm": _native_norm,
    "_pass_bwd1": _native_bwd1,
    "_pass_bwd2": _native_bwd2,
}
