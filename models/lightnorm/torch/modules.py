# SPDX-License-Identifier: Apache-2.0
"""The nn.Module layer: LightNorm1d / LightNorm2d (nn.BatchNorm's contract) and the explicit,
reversible conversion functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from lightnorm.config import LightNormConfig
from lightnorm.torch.backends import _resolve_backend
from lightnorm.torch.engine import _as_config, _engine
from lightnorm.torch.function import _LightNormFunction
from lightnorm.torch.ops import _NativePrims


class _LightNorm(_NormBase):
    """Common base of LightNorm1d / LightNorm2d (nn.BatchNorm's parameters, buffers and
    state_dict)."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
        config: LightNormConfig | str = "lightnorm",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.config = _as_config(config)
        _resolve_backend(backend)  # validate now
        self.backend = backend

    def extra_repr(self) -> str:
        name = next((k for k, v in _presets().items() if v == self.config), None)
        cfg = repr(name) if name is not None else repr(self.config)
        return f"{super().extra_repr()}, config={cfg}"

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not input.is_floating_point():
            raise ValueError(f"input must be a floating-point tensor, got dtype {input.dtype}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        for name in ("weight", "bias"):
            p = getattr(self, name)
            if p is not None and not bool(torch.isfinite(p).all()):
                raise ValueError(f"{name} (gamma/beta) must be finite")
        eng = _engine(self.config)
        backend = _resolve_backend(self.backend, input.numel())
        running = None
        if not use_batch:
            assert self.running_mean is not None and self.running_var is not None
            rm, rv = self.running_mean.detach(), self.running_var.detach()
            if not bool(torch.isfinite(rm).all() & torch.isfinite(rv).all()):
                raise ValueError("running_mean and running_var must be finite")
            if bool((rv < 0).any()):
                raise ValueError("running_var must be >= 0")
            running = (rm, rv)
        params = [p for p in (self.weight, self.bias) if p is not None]
        keep = torch.is_grad_enabled() and (
            input.requires_grad or any(p.requires_grad for p in params)
        )
        y, mean, batch_var = _LightNormFunction.apply(
            input, self.weight, self.bias, eng, self.eps, backend, running, keep
        )
        if use_batch and self.training and self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad(), _NativePrims(backend == "native"):
                eng.update_running(
                    self.running_mean, self.running_var, mean, batch_var, factor, backend
                )
        return y


class LightNorm1d(_LightNorm):
    """LightNorm over a 2D (N, C) or 3D (N, C, L) input: drop-in for nn.BatchNorm1d.

    Args (as nn.BatchNorm1d): num_features, eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True, track_running_stats=True, device=None, dtype=None; keyword-only: bias=True (as
    torch), config (a LightNormConfig or a preset name, default "lightnorm"), backend ("auto",
    "native", "compile" or "eager"). Numerics: docs/spec.md (n = N * L values per channel).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class LightNorm2d(_LightNorm):
    """LightNorm over a 4D (N, C, H, W) input: drop-in for nn.BatchNorm2d.

    Args (as nn.BatchNorm2d): num_features, eps=1e-5, momentum=0.1 (None: cumulative average),
    affine=True, track_running_stats=True, device=None, dtype=None; keyword-only: bias=True (as
    torch), config (a LightNormConfig or a preset name, default "lightnorm"), backend ("auto",
    "native", "compile" or "eager"). Numerics: docs/spec.md (n = N * H * W values per channel).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


def _presets() -> dict[str, LightNormConfig]:
    from lightnorm.config import PRESETS

    return PRESETS


_PAIRS: tuple[tuple[type[nn.Module], type[_LightNorm]], ...] = (
    (nn.BatchNorm1d, LightNorm1d),
    (nn.BatchNorm2d, LightNorm2d),
)


def _swap(
    model: nn.Module,
    pick: Callable[[str, nn.Module], type[nn.Module] | None],
    build: Callable[[nn.Module, type[nn.Module]], nn.Module],
) -> nn.Module:
    found = [(name, mod, pick(name, mod)) for name, mod in model.named_modules()]
    root = None
    for name, mod, target in found:
        if target is None:
            continue
        new = build(mod, target)
        new.train(mod.training)
        if name == "":
            root = new
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
    return model if root is None else root


def _move_state(src: nn.Module, dst: nn.Module) -> None:
    """dst takes src's parameters and buffers: the same tensor objects (no copy), so optimizers
    and references created before the swap stay valid."""
    for name in ("weight", "bias"):
        setattr(dst, name, getattr(src, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        dst.register_buffer(name, getattr(src, name))


def convert_batchnorm(
    model: nn.Module,
    config: LightNormConfig | str = "lightnorm",
    module_filter: Callable[[str, nn.Module], bool] | None = None,
    *,
    backend: str = "auto",
) -> nn.Module:
    """Replace every nn.BatchNorm1d / nn.BatchNorm2d of ``model`` by LightNorm1d / LightNorm2d.

    Only modules whose type is exactly nn.BatchNorm1d/2d are converted (subclasses such as
    fused norm+activation layers add behaviour LightNorm would drop); ``module_filter(name,
    module) -> bool`` further selects (name as in ``model.named_modules()``). The new modules
    take the old modules' parameters and buffers (the same tensor objects), hyper-parameters and
    train/eval mode. The conversion is in place: ``model`` is modified and returned; if
    ``model`` itself is a BatchNorm, the new module is returned. torch is not patched.
    """
    cfg = _as_config(config)
    _resolve_backend(backend)
    table = dict(_PAIRS)

    def pick(name: str, mod: nn.Module) -> type[nn.Module] | None:
        target = table.get(type(mod))
        if target is None or (module_filter is not None and not module_filter(name, mod)):
            return None
        return target

    def build(mod: nn.Module, target: type[nn.Module]) -> nn.Module:
        assert isinstance(mod, nn.modules.batchnorm._BatchNorm)
        new = target(
            mod.num_features,
            mod.eps,
            mod.momentum,
            mod.affine,
            mod.track_running_stats,
            device="meta",
            config=cfg,
            backend=backend,
        )
        _move_state(mod, new)
        return new

    return _swap(model, pick, build)


def revert_batchnorm(
    model: nn.Module, module_filter: Callable[[str, nn.Module], bool] | None = None
) -> nn.Module:
    """Replace every LightNorm1d / LightNorm2d of ``model`` by a plain nn.BatchNorm1d / 2d with
    the same parameters and buffers (the same tensor objects) and hyper-parameters; in place,
    like :func:`convert_batchnorm` (returns ``model``, or the new module if ``model`` is one)."""
    table = {light: bn for bn, light in _PAIRS}

    def pick(name: str, mod: nn.Module) -> type[nn.Module] | None:
        target = table.get(type(mod))  # type: ignore[arg-type]
        if target is None or (module_filter is not None and not module_filter(name, mod)):
            return None
        return target

    def build(mod: nn.Module, target: type[nn.Module]) -> nn.Module:
        assert isinstance(mod, _LightNorm)
        new = target(
            mod.num_features,
            mod.eps,
            mod.momentum,
            mod.affine,
            mod.track_running_stats,
            device="meta",
        )
        _move_state(mod, new)
        return new

    return _swap(model, pick, build)
