# SPDX-License-Identifier: Apache-2.0
"""LightNorm for PyTorch: drop-in replacements of nn.BatchNorm1d / nn.BatchNorm2d.

:class:`LightNorm1d` and :class:`LightNorm2d` compute exactly what docs/spec.md specifies: the
outputs, the input gradient, d_gamma / d_beta (``weight.grad`` / ``bias.grad``) and the running
statistics are bit-identical to :mod:`lightnorm.reference` (the numpy oracle) for every
configuration. They keep nn.BatchNorm's contract: constructor order and defaults, parameters,
buffers (running_mean, running_var, num_batches_tracked), state_dict keys, momentum convention
(momentum=None is a cumulative average), train/eval behaviour. LightNorm options are
keyword-only (``config=``, ``backend=``). :func:`convert_batchnorm` / :func:`revert_batchnorm`
swap modules explicitly; torch itself is never patched.

How the numerics are implemented in torch ops (device-agnostic; no numpy on the data path):

- Every value of a format FP(E <= 8, M <= 23) is an exact float32 value. Kept element tensors
  (x and dy as read back from storage) are float16 when the format fits it exactly (E <= 5,
  M <= 10: fp10_e5m4), else float32; outputs have the input's dtype.
- ``_quant`` is the one rounding step (spec section 2). float64 (and float32 with rtz): with
  e = floor(log2|x|) from the bit pattern, k = clamp(e, emin, emax + 1) - M, the result is
  2^k * R(x * 2^-k), R = round half even or trunc, both scalings exact. float32 with rne, for
  formats with E <= 7: Veltkamp's split rounds to M + 1 bits, ties to even (checked on all
  2^32 float32 inputs for fp10_e5m4, eager and compiled), an addition of 1.5 * 2^(lsb + 23)
  rounds on the subnormal grid. Then the overflow policy.
- mul(a, b): the product of two format values is exact in float64, and in float32 when the
  significands and exponent ranges fit; rounded once.
- add/sub(a, b): in float32 when rounding to nearest, both operands have at most the result's
  p = M + 1 <= 11 bits (double rounding through 24 >= 2p + 2 bits is innocuous, Figueroa
  1995; checked on every pair of fp10_e5m4 values); else in float64: exact when the operand
  formats span <= 53 bits (fp10_e5m4: 2^-18 ... 2^17), otherwise TwoSum and, where the error
  is nonzero and the float64 sum is a breakpoint of the result format (a value or a midpoint),
  a one-ulp nudge toward the exact sum before the one rounding (as lightnorm.arith does).
- recip(v): 1/v in float64 is correctly rounded and never lands on a breakpoint of a format
  with <= 24-bit significands unless it is exact (|1 - v*t| >= 2^-49 for such t): one
  ``_quant`` of it is correct. rsqrt(v): 1/sqrt(v) in float64 (error < 2 ulp); within 4 ulp of
  a breakpoint B the side of B is decided exactly by the sign of B^2 v - 1 (Dekker product),
  then the nudge.
- Exact accumulators (spec section 4): n values of a format f are integer multiples of
  2^(emin - M) below 2^(emax + 1). When (emax + 1 - (emin - M)) + ceil(log2 n) <= 53 their
  float64 sum is exact in any order (fp10_e5m4: n <= 2^19); when <= 63 the int64 sum of the
  scaled integers is (n <= 2^29); wider formats (fp32, fp10_e6m3) use the exact fallback: the
  values are split into windows of 53 - ceil(log2 n) bits between the tensor's highest and
  lowest set bit, each window summed exactly in float64, the windows recombined as Python
  integers (eager and compile); the native backend sums 32-bit limbs in C++ and rounds them
  per channel there. A sum is rounded once, round(c * sum): exact product (Dekker) and the
  breakpoint nudge, or lightnorm.arith.round_scaled_int for Python-integer sums.
- BFP (spec section 5): groups of ``group_size`` channels at one (n, h, w) position, rule max
  (with the carry of the largest element and NaN/Inf poisoning) and the authors' second_max.
- Per-channel results (stat_format, running_format) saturate (spec section 2).

Execution: each step is a plain torch function: the element-wise passes (store + statistics,
variance sums, normalize, backward pass 1, backward pass 2) and small per-channel steps (the C
values of F2/F3/F6/B3). ``backend="native"`` runs the element-wise passes as fused C++ loops
(lightnorm/torch/csrc/lightnorm_native.cpp, built at first use with the system compiler, see
lightnorm.torch._native; CPU tensors of float32/float16/bfloat16, other inputs take the eager path)
and the per-channel steps with the same library's primitives. ``"compile"`` runs every step
through ``torch.compile`` (inductor; one compilation per step and configuration, cached on disk
by inductor; the first call of a new configuration takes tens of seconds), ``"eager"`` runs
them op by op. ``"auto"`` (default) is "native" when the kernels build, else it compiles
inputs of at least AUTO_COMPILE_MIN_NUMEL elements (falling back to eager if compilation
fails) and runs smaller ones eagerly. LIGHTNORM_TORCH_BACKEND=native|eager|compile overrides
"auto". Every path gives the same bits.

Scope beyond the spec: in eval mode with running statistics the module also has a backward
(docs/spec.md defines none): with mu, s, a of section 8, dx = stored(mul(stored(dy), a, gf)),
d_gamma = round(sum(dy * x_hat)), d_beta = round(sum(dy)) (B1, B2, B5 of section 7).

Layout (one responsibility per file; the modules on top, the kernels below):

- :mod:`.modules` — LightNorm1d / LightNorm2d, convert_batchnorm / revert_batchnorm;
- :mod:`.function` — the autograd function; :mod:`.engine` — one engine per configuration,
  the spec's forward / backward / inference as passes and per-channel steps;
- :mod:`.passes` — the five element-wise passes; :mod:`.channel` — the per-channel steps;
- :mod:`.ops` — formats, the rounding step, operators and BFP storage as torch ops;
- :mod:`.backends` — native / compile / eager dispatch; :mod:`.native` and :mod:`._native`
  (with ``csrc/``) — the C++ kernels, their glue and their build;
- :mod:`.functional` — quantize / bfp_quantize on whole tensors; :mod:`.bench` — the speed
  benchmark against nn.BatchNorm2d (``python -m lightnorm.torch.bench``).
"""

from lightnorm.torch import _native  # noqa: F401 (the kernels' loader, a submodule)
from lightnorm.torch.functional import bfp_quantize, quantize
from lightnorm.torch.modules import LightNorm1d, LightNorm2d, convert_batchnorm, revert_batchnorm
from lightnorm.torch.native import release_buffers

__all__ = [
    "LightNorm1d",
    "LightNorm2d",
    "bfp_quantize",
    "convert_batchnorm",
    "quantize",
    "release_buffers",
    "revert_batchnorm",
]
