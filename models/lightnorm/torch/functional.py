# SPDX-License-Identifier: Apache-2.0
"""Tensor-level helpers: the module's element functions on a whole tensor."""

from __future__ import annotations

import torch
from torch import Tensor

from lightnorm.bfp import BFPFormat
from lightnorm.formats import FloatFormat, Overflow, Rounding, as_overflow, as_rounding
from lightnorm.torch.ops import _F64, _Bfp, _bfp_grouped, _Fmt, _quant
from lightnorm.torch.passes import _group, _Layout, _ungroup


def quantize(
    x: Tensor,
    fmt: FloatFormat | str,
    rounding: Rounding | str = "rne",
    overflow: Overflow | str = "inf",
) -> Tensor:
    """lightnorm.formats.quantize for torch tensors: round every element of x once to fmt.

    Returns a tensor of x's dtype (float32 or float64) holding values of fmt.
    """
    ff = FloatFormat.from_name(fmt) if isinstance(fmt, str) else fmt
    f = _Fmt.of(ff, as_rounding(rounding), as_overflow(overflow))
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    return _quant(x.to(_F64), f).to(x.dtype)


def bfp_quantize(
    x: Tensor, fmt: BFPFormat, axis: int = 1, rounding: Rounding | str = "rne"
) -> Tensor:
    """lightnorm.bfp.bfp_quantize for torch tensors: store x to BFP (groups along ``axis``)
    and load it back; float64 result of x's shape."""
    b = _Bfp.of(fmt, as_rounding(rounding))
    assert b is not None
    xm = x.to(_F64).movedim(axis, 1)
    shp = xm.shape
    x3 = xm.reshape(shp[0], shp[1], -1)
    lay = _Layout(b.g)
    out = _ungroup(_bfp_grouped(_group(x3, lay), b, None), shp[1]).reshape(shp)
    return out.movedim(1, axis)
