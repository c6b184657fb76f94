"""lightnorm.study.nets: ResNet and MobileNetV2 on 1x28x28 and 3x32x32 inputs, forward and backward,
with plain BatchNorm2d and converted to LightNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnorm.study.nets import MODELS, build_model, default_width, make_divisible

SEED = 20251125
print(f"[test_nets] SEED={SEED}")

INPUTS = [(1, 28, 10), (3, 32, 100)]  # (channels, size, classes)
# small widths keep the test fast; the architecture is the same at any width
CASES = [("resnet8", 8), ("resnet20", 4), ("mobilenetv2s", 0.25), ("mobilenetv2", 0.25)]


def _count_bn(model: nn.Module) -> int:
    return sum(type(m) is nn.BatchNorm2d for m in model.modules())


@pytest.mark.parametrize(("name", "width"), CASES)
@pytest.mark.parametrize(("ch", "size", "classes"), INPUTS)
def test_forward_backward_shapes(name, width, ch, size, classes):
    torch.manual_seed(SEED)
    model = build_model(name, in_channels=ch, num_classes=classes, width=width)
    x = torch.randn(4, ch, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (4, classes)
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, classes)


def test_depths_and_norm_layers():
    def convs(m):
        return sum(isinstance(c, nn.Conv2d) and c.kernel_size == (3, 3) for c in m.modules())

    # 6n+2 weighted layers: 6n 3x3 convs in blocks + 1 stem conv (+ fc)
    assert convs(build_model("resnet8", width=4)) == 7
    assert convs(build_model("resnet20", width=4)) == 19
    # MobileNetV2: 17 inverted residual blocks, 7 in the short variant
    from lightnorm.study.nets import InvertedResidual

    def blocks(m):
        return sum(isinstance(b, InvertedResidual) for b in m.modules())

    assert blocks(build_model("mobilenetv2", width=0.25)) == 17
    assert blocks(build_model("mobilenetv2s", width=0.25)) == 7
    depthwise = [
        c
        for c in build_model("mobilenetv2s", width=0.5).modules()
        if isinstance(c, nn.Conv2d) and c.groups > 1
    ]
    assert len(depthwise) == 7 and all(
        c.groups == c.in_channels == c.out_channels for c in depthwise
    )
    assert _count_bn(build_model("resnet8", width=4)) == 9  # stem + 2 per block + 2 projections


def test_width_scales_channels():
    def params(m):
        return sum(p.numel() for p in m.parameters())

    assert params(build_model("resnet8", width=32)) > 3 * params(build_model("resnet8", width=16))
    assert params(build_model("mobilenetv2s", width=1.0)) > params(
        build_model("mobilenetv2s", width=0.5)
    )
    assert default_width("resnet20") == 16 and default_width("mobilenetv2") == 1.0
    assert make_divisible(32 * 0.25) == 8 and make_divisible(1280 * 0.5) == 640


def test_bad_names_and_widths():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg16")
    with pytest.raises(ValueError, match="width"):
        build_model("resnet8", width=12.5)
    with pytest.raises(ValueError, match="width"):
        build_model("mobilenetv2", width=0)
    assert set(MODELS) >= {"resnet8", "resnet20", "mobilenetv2", "mobilenetv2s"}


@pytest.mark.parametrize(("name", "width"), [("resnet8", 4), ("mobilenetv2s", 0.25)])
def test_convert_to_lightnorm(name, width):
    lt = pytest.importorskip(
        "lightnorm.torch", reason="lightnorm.torch (the torch module) not present"
    )
    torch.manual_seed(SEED)
    model = build_model(name, in_channels=1, num_classes=10, width=width)
    n_bn = _count_bn(model)
    # eager: no torch.compile in unit tests (the passes give the same bits either way)
    ret = lt.convert_batchnorm(model, "lightnorm", backend="eager")
    assert ret is model
    assert _count_bn(model) == 0
    assert sum(isinstance(m, lt.LightNorm2d) for m in model.modules()) == n_bn
    x = torch.randn(4, 1, 28, 28)  # mobilenetv2s ends at 2x2: n = 16 = 2K per channel
    out = model(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
