# SPDX-License-Identifier: Apache-2.0
"""The autograd function that runs an engine step forward and backward."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lightnorm.torch.engine import _Engine
from lightnorm.torch.ops import _F64, _NativePrims


class _LightNormFunction(torch.autograd.Function):
    """y = LightNorm(x; gamma, beta). Forward: spec section 6 (batch statistics) or section 8
    (running statistics); backward: spec section 7 (never autograd through the quantizers).
    Extra outputs (non-differentiable): mu and v_b for the running statistics."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        eng: _Engine,
        eps: float,
        backend: str,
        running: tuple[Tensor, Tensor] | None,
        keep: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        shape, dtype = x.shape, x.dtype
        xs = x.detach().contiguous().reshape(shape[0], shape[1], -1)
        chans = shape[1]
        ones = torch.ones(chans, dtype=_F64, device=x.device)
        gamma = ones if weight is None else weight.detach()
        beta = torch.zeros_like(ones) if bias is None else bias.detach()
        if running is None:
            with _NativePrims(backend == "native"):
                out = eng.forward_train(xs, gamma, beta, eps, backend)
            x_c, state, y = out.x_c, out.state, out.y
            stats = (state.mean, out.batch_var)
        else:
            with _NativePrims(backend == "native"):
                y, x_in, state = eng.forward_infer(
                    xs, gamma, beta, *running, eps, backend, keep_input=keep
                )
            x_c = xs if x_in is None else x_in
            stats = (state.mean, state.mean)
        ctx.eng, ctx.state, ctx.backend = eng, state, backend
        ctx.meta = (shape, dtype)
        ctx.param_dtype = (
            weight.dtype if weight is not None else bias.dtype if bias is not None else dtype
        )
        ctx.save_for_backward(x_c)
        ctx.mark_non_differentiable(*stats)
        y = y.to(dtype).reshape(shape)
        if (
            x.dim() == 4
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            y = y.contiguous(memory_format=torch.channels_last)  # as nn.BatchNorm2d
        return y, stats[0], stats[1]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, *_: Any) -> tuple[Any, ...]:
        (x_c,) = ctx.saved_tensors
        shape, dtype = ctx.meta
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dys = dy.reshape(x_c.shape)
        with _NativePrims(ctx.backend == "native"):
            dx, d_gamma, d_beta = ctx.eng.backward(dys, x_c, ctx.state, ctx.backend, need_dx=need_x)
        gx = dx.to(dtype).reshape(shape) if dx is not None else None
        gw = d_gamma.to(ctx.param_dtype) if need_w else None
        gb = d_beta.to(ctx.param_dtype) if need_b else None
        return gx, gw, gb, None, None, None, None, None
