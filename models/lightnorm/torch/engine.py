# SPDX-License-Identifier: Apache-2.0
"""The engine: one per configuration; forward, backward and inference of docs/spec.md as a
sequence of element-wise passes and per-channel steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lightnorm.config import Accumulation, GradMode, LightNormConfig, Statistics
from lightnorm.formats import Overflow
from lightnorm.reference import LayerConstants, layer_constants
from lightnorm.torch.backends import _run
from lightnorm.torch.channel import (
    _Acc,
    _chan_bwd,
    _chan_infer,
    _chan_mean,
    _chan_range,
    _chan_running,
    _chan_var,
    _exact_sum_wide,
    _PChan,
    _round_acc,
)
from lightnorm.torch.native import _native_backend, _pass_kind
from lightnorm.torch.ops import _F64, _Bfp, _Fmt, _sum_kind
from lightnorm.torch.passes import (
    _chunk_args,
    _Layout,
    _pass_bwd1,
    _pass_bwd2,
    _pass_norm,
    _pass_store,
    _pass_var,
    _PBwd1,
    _PBwd2,
    _PNorm,
    _PStore,
    _PVar,
    _stream_chunks,
)


@dataclass
class _FwdState:
    """What the backward keeps from the forward (spec section 7)."""

    mean: Tensor
    scale: Tensor
    coeff: Tensor
    consts: LayerConstants | None  # None: eval mode (running statistics)
    kc: Tensor | None  # the constants as a tensor
    argmax: Tensor | None = None  # (C, K_n) stream indices (range_exact)
    argmin: Tensor | None = None


@dataclass
class _FwdOut:
    y: Tensor
    x_c: Tensor
    state: _FwdState
    batch_var: Tensor  # F6 v_b, running_format (range: sigma^2; variance: unbiased)


class _Engine:
    """LightNorm numerics for one LightNormConfig, on torch tensors."""

    def __init__(self, cfg: LightNormConfig) -> None:
        self.cfg = cfg
        rnd, ovf = cfg.rounding, cfg.overflow
        self.cf = _Fmt.of(cfg.compute_format, rnd, ovf)
        self.gf = _Fmt.of(cfg.grad_format, rnd, ovf)
        # Spec section 2: per-channel results (stat_format, running_format) always saturate.
        self.st = _Fmt.of(cfg.stat_format, rnd, Overflow.SATURATE)
        self.rf = _Fmt.of(cfg.running_format, rnd, Overflow.SATURATE)
        self.bfp = _Bfp.of(cfg.bfp, rnd)
        self.range = cfg.statistics is Statistics.RANGE
        self.range_exact = cfg.grad_mode is GradMode.RANGE_EXACT
        self.g = 1 if cfg.bfp is None else cfg.bfp.group_size
        self._consts: dict[tuple[int, float, str], tuple[LayerConstants, Tensor]] = {}

    def constants(
        self, count: int, eps: float, device: torch.device
    ) -> tuple[LayerConstants, Tensor]:
        """The layer constants (lightnorm.reference.layer_constants, cached by n and eps) and
        the same as a float64 tensor for the per-channel steps."""
        key = (count, float(eps), str(device))
        c = self._consts.get(key)
        if c is None:
            k = layer_constants(count, self.cfg, eps)  # raises ValueError for a bad n / eps
            vals = [
                k.inv_count,
                k.inv_count_unbiased,
                k.range_const,
                k.range_const_per_chunk,
                k.eps,
            ]
            c = self._consts[key] = (k, torch.tensor(vals, dtype=_F64, device=device))
        return c

    def _pchan(self, pre: bool, aligned: bool = False, k: int | None = None) -> _PChan:
        """The per-channel steps' description; ``k``: the layer's chunk count K_n (range
        statistics; the other steps do not use it)."""
        kk = self.cfg.num_chunks if k is None else k
        return _PChan(self.cf, self.gf, self.st, self.rf, kk, pre, aligned)

    def _acc(
        self, outs: tuple[Tensor, ...], stored: Tensor, f: _Fmt, kind: str, count: int
    ) -> _Acc:
        """The exact accumulator of a pass's row sums (kind 'i64'), or of stored values ('wide')."""
        if kind == "wide":
            return _exact_sum_wide(stored, f)
        return _Acc.from_parts(outs, f)

    # ---- F1..F6 -----------------------------------------------------------------------------

    def forward_train(
        self, x: Tensor, gamma: Tensor, beta: Tensor, eps: float, backend: str
    ) -> _FwdOut:
        st, cf = self.st, self.cf
        n_, ch, s_ = x.shape
        count = n_ * s_
        k, kc = self.constants(count, eps, x.device)
        kn = k.num_chunks  # K_n: K, fewer for a small layer (n < 2K, spec section 4)
        backend = _native_backend(backend, x)
        kind = _pass_kind(cf, count, backend)
        aligned = self.range and n_ % kn == 0
        lay = _Layout(self.g)
        # range_exact on the native backend: the store pass also gives the chunk args (the
        # other backends find them below, torch.argmax / argmin over the stream)
        nargs = kn if self.range_exact and backend == "native" else 0
        outs = _run(backend, _pass_store, _PStore(cf, self.bfp, lay, kind, aligned, nargs), x)
        amax = amin = None
        if nargs:
            amax, amin = outs[-2], outs[-1]
            outs = outs[:-2]
        x_c = outs[0]
        nsum = {"f64": 1, "i64": 2, "wide": 0}[kind]
        if kind == "f64":
            mean = _run(backend, _chan_mean, self._pchan(False), outs[1], kc)
        else:
            acc_x = self._acc(outs[1 : 1 + nsum], x_c, cf, kind, count)
            mean = _round_acc(acc_x, k.inv_count, st)
        if self.range:
            if aligned:
                ext_max, ext_min = outs[-2], outs[-1]
            else:
                ext_max, ext_min = self.chunk_extrema(x_c, kn)
            if self.range_exact and not nargs:
                amax, amin = _chunk_args(x_c, kn)
            pre = _sum_kind(cf, 2 * kn) != "f64"
            rmean = mean
            if pre:
                if aligned:
                    ext_max = ext_max.reshape(kn, -1, ch).amax(dim=1).t()
                    ext_min = ext_min.reshape(kn, -1, ch).amin(dim=1).t()
                both = torch.cat([ext_max, -ext_min], dim=1).to(_F64)
                rmean = _round_acc(_Acc.of_rows(both, cf), 1.0 / kn, st)
            scale, coeff, b, batch_var = _run(
                backend,
                _chan_range,
                self._pchan(pre, aligned and not pre, kn),
                ext_max,
                ext_min,
                rmean,
                gamma,
                beta,
                kc,
            )
        else:
            vouts = _run(backend, _pass_var, _PVar(cf, st, lay, kind), x_c, mean)
            pre = kind != "f64"
            var = batch_var = mean
            if pre:
                acc_q = self._acc(vouts, vouts[0], cf, kind, count)
                var = _round_acc(acc_q, k.inv_count, st)
                batch_var = _round_acc(acc_q, k.inv_count_unbiased, self.rf)
            scale, coeff, b, batch_var = _run(
                backend, _chan_var, self._pchan(pre), vouts[0], var, batch_var, gamma, beta, kc
            )
        y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, False), x_c, mean, coeff, b)
        state = _FwdState(mean, scale, coeff, k, kc, amax, amin)
        return _FwdOut(y, x_c, state, batch_var)

    def chunk_extrema(self, x_c: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """F2 range: the max and min (C, K_n) of each chunk of the stream (any n), k = K_n."""
        head, tail = _stream_chunks(x_c, k)
        cmax = torch.cat([head.amax(dim=2), tail.amax(dim=1, keepdim=True)], dim=1)
        cmin = torch.cat([head.amin(dim=2), tail.amin(dim=1, keepdim=True)], dim=1)
        return cmax.to(_F64), cmin.to(_F64)

    def update_running(
        self,
        running_mean: Tensor,
        running_var: Tensor,
        mean: Tensor,
        batch_var: Tensor,
        momentum: float,
        backend: str,
    ) -> None:
        """F6, in place (momentum m as in torch; 1 - m in float64)."""
        mk = torch.tensor([momentum, 1.0 - momentum], dtype=_F64, device=mean.device)
        rm, rv = _run(
            backend,
            _chan_running,
            self._pchan(False),
            running_mean.detach(),
            running_var.detach(),
            mean,
            batch_var,
            mk,
        )
        running_mean.copy_(rm.to(running_mean.dtype))
        running_var.copy_(rv.to(running_var.dtype))

    # ---- I1..I3 -----------------------------------------------------------------------------

    def forward_infer(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: float,
        backend: str,
        keep_input: bool,
    ) -> tuple[Tensor, Tensor | None, _FwdState]:
        st, cf = self.st, self.cf
        backend = _native_backend(backend, x)
        eps_t = torch.tensor(float(eps), dtype=_F64, device=x.device)
        mean, scale, coeff, b = _run(
            backend, _chan_infer, self._pchan(False), running_mean, running_var, gamma, beta, eps_t
        )
        state = _FwdState(mean, scale, coeff, None, None)
        lay = _Layout(self.g)
        if not keep_input:
            y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, True), x, mean, coeff, b)
            return y, None, state
        x_c = _run(backend, _pass_store, _PStore(cf, self.bfp, lay, None, False), x)[0]
        y = _run(backend, _pass_norm, _PNorm(cf, st, self.bfp, lay, False), x_c, mean, coeff, b)
        return y, x_c, state

    # ---- B1..B5 -----------------------------------------------------------------------------

    def backward(
        self, dy: Tensor, x_c: Tensor, state: _FwdState, backend: str, need_dx: bool
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        st, cf, gf = self.st, self.cf, self.gf
        n_, ch, s_ = x_c.shape
        count = n_ * s_
        backend = _native_backend(backend, dy)
        kind = _pass_kind(gf, count, backend)
        lay = _Layout(self.g)
        outs = _run(
            backend,
            _pass_bwd1,
            _PBwd1(cf, gf, st, self.bfp, lay, kind),
            dy,
            x_c,
            state.mean,
            state.scale,
        )
        dy_c = outs[0]
        kc = state.kc if state.kc is not None else torch.zeros(5, dtype=_F64, device=x_c.device)
        if kind == "f64":
            d_beta, d_gamma, k_beta, k_gamma, corr = _run(
                backend, _chan_bwd, self._pchan(False), outs[1], outs[2], outs[1], state.coeff, kc
            )
        else:
            w = 0 if kind == "wide" else 2
            acc_dy = self._acc(outs[1 : 1 + w], dy_c, gf, kind, count)
            acc_p = self._acc(outs[1 + w : 1 + 2 * w], outs[-1], gf, kind, count)
            inv = state.consts.inv_count if state.consts is not None else 0.0
            rounded = torch.stack(
                [
                    _round_acc(acc_dy, 1.0, st),
                    _round_acc(acc_p, 1.0, st),
                    _round_acc(acc_dy, inv, st),
                    _round_acc(acc_p, inv, st),
                ]
            )
            d_beta, d_gamma, k_beta, k_gamma, corr = _run(
                backend, _chan_bwd, self._pchan(True), rounded, rounded, rounded, state.coeff, kc
            )
        if not need_dx:
            return None, d_gamma, d_beta
        # range_exact: the chunk args as they are (native pass), or as a marker tensor (torch)
        marker = torch.zeros((1,), dtype=torch.int8, device=x_c.device)
        amax = amin = torch.zeros((1, 1), dtype=torch.int64, device=x_c.device)
        if state.consts is None:
            mode = "eval"
        else:
            mode = "range_exact" if self.range_exact else "bn"
            if self.range_exact:
                assert state.argmax is not None and state.argmin is not None
                if backend == "native":
                    amax, amin = state.argmax, state.argmin
                else:
                    marker = self._marker(x_c.shape, state.argmax, state.argmin)
        dx = _run(
            backend,
            _pass_bwd2,
            _PBwd2(cf, gf, st, self.bfp, lay, mode),
            dy_c,
            x_c,
            state.mean,
            state.scale,
            k_beta,
            k_gamma,
            state.coeff,
            corr,
            marker,
            amax,
            amin,
        )
        return dx, d_gamma, d_beta

    @staticmethod
    def _marker(shape: torch.Size, amax: Tensor, amin: Tensor) -> Tensor:
        """int8 (N, C, S): 1 at each chunk's arg-max, 2 at its arg-min, where they differ (the
        torch pass's form of the chunk args; the native pass takes the args themselves)."""
        n_, ch, s_ = shape
        chan = torch.arange(ch, device=amax.device).view(ch, 1)
        distinct = amax != amin

        def flat(i: Tensor) -> Tensor:
            return (i // s_) * (ch * s_) + chan * s_ + i % s_

        marker = torch.zeros(n_ * ch * s_, dtype=torch.int8, device=amax.device)
        marker[flat(amax)[distinct]] = 1
        marker[flat(amin)[distinct]] = 2
        return marker.view(n_, ch, s_)


_engines: dict[LightNormConfig, _Engine] = {}


def _engine(cfg: LightNormConfig) -> _Engine:
    eng = _engines.get(cfg)
    if eng is None:
        eng = _engines.setdefault(cfg, _Engine(cfg))
    return eng


def _as_config(config: LightNormConfig | str) -> LightNormConfig:
    if isinstance(config, str):
        config = LightNormConfig.from_preset(config)  # ValueError naming an unknown preset
    if not isinstance(config, LightNormConfig):
        raise ValueError(f"config must be a LightNormConfig or a preset name, got {config!r}")
    if config.accumulation is not Accumulation.EXACT:
        raise ValueError(
            f"LightNormConfig.accumulation {config.accumulation.value!r} (the RTL baseline "
            "bn_fp32_core, preset 'fp32-bn-seq') is not implemented by the torch module: "
            "lightnorm.reference computes it"
        )
    return config
