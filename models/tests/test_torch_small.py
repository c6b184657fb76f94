"""lightnorm.torch on small layers (n = N*H*W < 2K values per channel, docs/spec.md section 4):
range statistics over K_n = min(K, 2^(floor(log2 n) - 1)) chunks.

LightNorm1d / LightNorm2d train on such layers (e.g. LightNorm1d after global pooling with a
batch of 8) and match lightnorm.reference bit for bit (output, dx, d_gamma, d_beta, running
statistics, eval output), on the native and the eager backend; n = 1 in training raises a
ValueError naming n (as nn.BatchNorm raises), inference takes it.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from test_torch import VARIANT_IDS, VARIANTS, run_module_vs_reference

from lightnorm import reference as ref
from lightnorm.config import LightNormConfig
from lightnorm.torch import LightNorm1d, LightNorm2d

# (shape, n): N*L or N*H*W below 2K = 16 for the default K = 8, and the first n >= 2K
SMALL_SHAPES = [
    (8, 20),  # LightNorm1d after global pooling, batch 8: n = 8, K_n = 4 (chunks of 2 samples)
    (2, 20),  # n = 2, K_n = 1
    (3, 5),  # n = 3, K_n = 1, C < BFP group
    (5, 20, 1),  # n = 5, K_n = 2 (chunk 1 takes the remainder)
    (1, 20, 7),  # n = 7 in one sample
    (1, 20, 2, 2),  # n = 4, K_n = 2, not whole samples per chunk
    (2, 20, 1, 3),  # n = 6, K_n = 2, one sample per chunk
    (3, 33, 5, 1),  # n = 15, K_n = 4, C = 2 groups + 1
    (17, 20),  # n = 17 >= 2K: K chunks, as before
]
SMALL_IDS = [str(s) for s in SMALL_SHAPES]
VARIANT_SUBSET = [(p, o) for p, o in VARIANTS if p != "fp32-bn"][:8]
SUBSET_IDS = [VARIANT_IDS[VARIANTS.index(v)] for v in VARIANT_SUBSET]


def _tag(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


@pytest.mark.parametrize("backend", ["native", "eager"])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=SMALL_IDS)
def test_small_layer_matches_reference(shape, backend):
    """The default configuration (K = 8) and both grad modes."""
    for cfg in (
        LightNormConfig.from_preset("lightnorm"),
        LightNormConfig.from_preset("lightnorm", grad_mode="range_exact"),
    ):
        run_module_vs_reference(cfg, shape, backend, tag=_tag(shape, cfg.grad_mode.value))


@pytest.mark.parametrize("backend", ["native", "eager"])
@pytest.mark.parametrize(("preset", "overrides"), VARIANT_SUBSET, ids=SUBSET_IDS)
def test_small_layer_every_variant_matches_reference(preset, overrides, backend):
    cfg = LightNormConfig.from_preset(preset, **overrides)
    for shape in ((8, 20), (1, 20, 2, 2), (2, 20, 1, 3), (3, 7)):
        run_module_vs_reference(cfg, shape, backend, tag=_tag(preset, overrides, shape))


@pytest.mark.parametrize("k", [1, 2, 16, 64])
def test_small_layer_other_chunk_counts(k):
    cfg = LightNormConfig(num_chunks=k, grad_mode="range_exact")
    for shape in ((8, 20), (2, 20, 1, 3), (4, 20, 3, 3)):
        n = shape[0] * int(np.prod(shape[2:]))
        assert ref.layer_constants(n, cfg).num_chunks == min(k, 2 ** (n.bit_length() - 2))
        for backend in ("native", "eager"):
            run_module_vs_reference(cfg, shape, backend, tag=_tag(k, shape))


@pytest.mark.parametrize("backend", ["native", "eager"])
def test_variance_statistics_small_layer(backend):
    cfg = LightNormConfig.from_preset("fp10-bn")
    for shape in ((2, 20), (1, 20, 2, 2)):
        run_module_vs_reference(cfg, shape, backend, tag=_tag("var", shape))


@pytest.mark.parametrize(
    ("cls", "shape"), [(LightNorm1d, (1, 4)), (LightNorm1d, (1, 4, 1)), (LightNorm2d, (1, 4, 1, 1))]
)
def test_one_value_per_channel_raises_in_training_only(cls, shape):
    """As nn.BatchNorm ("Expected more than 1 value per channel when training"): n = 1 trains
    nothing; the error names n. Inference takes it."""
    m = cls(4)
    with pytest.raises(ValueError, match="n = 1"):
        m(torch.randn(shape))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.functional.batch_norm(
            torch.randn(shape), torch.zeros(4), torch.ones(4), training=True
        )
    m.eval()
    y = m(torch.randn(shape))
    assert y.shape == shape and bool(torch.isfinite(y).all())
