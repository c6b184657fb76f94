# SPDX-License-Identifier: Apache-2.0
"""Networks for the LightNorm training study, built with ``nn.BatchNorm2d`` norm layers.

The training harness swaps the BatchNorm layers for LightNorm ones with
``lightnorm.torch.convert_batchnorm`` when ``--norm`` is not ``bn``; the networks themselves
know nothing about LightNorm. Both families take 1 x 28 x 28 (Fashion-MNIST) or 3 x 32 x 32
(CIFAR) inputs: the stem keeps the resolution and the head is a global average pool, so any
size of at least 8 x 8 works.

- ResNet (He et al., "Deep Residual Learning", CIFAR variant, depth 6n+2): a 3x3 stem, three
  stages of n basic blocks with ``width``, 2*``width``, 4*``width`` channels (stride 1, 2, 2),
  a 1x1 conv + BN projection shortcut where the shape changes ("option B"). resnet8 (n=1),
  resnet14, resnet20 (n=3), resnet32, resnet44, resnet56. Default width 16.
- MobileNetV2 (Sandler et al. 2018), CIFAR-style strides: a 3x3 stride-1 stem, inverted
  residual blocks (1x1 expand + BN + ReLU6, 3x3 depthwise + BN + ReLU6, 1x1 project + BN,
  identity shortcut when stride 1 and widths match), a 1x1 head conv + BN + ReLU6. Channels are
  scaled by the width multiplier ``width`` and rounded to multiples of 8 (min 8).
  ``mobilenetv2`` has the paper's 17 blocks with the usual CIFAR strides 1,1,2,2,1,2,1 for the
  seven stages (32x32 -> 4x4); ``mobilenetv2s`` keeps every stage with one block each (7
  blocks) and the ImageNet strides 1,2,2,2,1,2,1 (32x32 -> 2x2, 28x28 -> 2x2): a member of
  the same family about 3x cheaper per image, for CPU studies.

Activations are not in-place: a converted norm layer's output may be a view of its storage
tensor, which autograd forbids to modify in place.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "MODELS",
    "BasicBlock",
    "InvertedResidual",
    "MobileNetV2",
    "ResNet",
    "build_model",
    "default_width",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (>= min_value, default divisor),
    never going below 90 % of ``value`` (the MobileNet rounding rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6*blocks_per_stage + 2."""

    def __init__(
        self, blocks_per_stage: int, width: int = 16, in_channels: int = 3, num_classes: int = 10
    ) -> None:
        super().__init__()
        if blocks_per_stage < 1 or width < 1:
            raise ValueError(
                f"blocks_per_stage and width must be >= 1, got {blocks_per_stage}, {width}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        in_ch = width
        for stage, out_ch in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(in_ch, out_ch, stride))
                in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand-BN-ReLU6] - 3x3 depthwise-BN-ReLU6 - 1x1 project-BN."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [
                nn.Conv2d(in_ch, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


# (expansion t, channels c, repeats n, stride s) of MobileNetV2, strides adapted to 32x32 inputs
MOBILENETV2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    """MobileNetV2 with a width multiplier; ``repeats`` / ``strides`` override the blocks per
    stage / the stride of each stage's first block (seven stages)."""

    def __init__(
        self,
        width: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 10,
        repeats: tuple[int, ...] | None = None,
        strides: tuple[int, ...] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width multiplier must be > 0, got {width}")
        stages: tuple[tuple[int, int, int, int], ...] = MOBILENETV2_STAGES
        if repeats is not None:
            if len(repeats) != len(stages) or min(repeats) < 1:
                raise ValueError(f"repeats must be {len(stages)} positive ints, got {repeats}")
            stages = tuple((t, c, r, s) for (t, c, _, s), r in zip(stages, repeats, strict=True))
        if strides is not None:
            if len(strides) != len(stages) or not set(strides) <= {1, 2}:
                raise ValueError(f"strides must be {len(stages)} values of 1 or 2, got {strides}")
            stages = tuple((t, c, n, s) for (t, c, n, _), s in zip(stages, strides, strict=True))
        stem_ch = make_divisible(32 * width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_ch),
            nn.ReLU6(),
        )
        blocks: list[nn.Module] = []
        in_ch = stem_ch
        for t, c, n, s in stages:
            out_ch = make_divisible(c * width)
            for i in range(n):
                blocks.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        head_ch = make_divisible(1280 * width)
        self.head = nn.Sequential(
            nn.Conv2d(in_ch, head_ch, 1, bias=False),
            nn.BatchNorm2d(head_ch),
            nn.ReLU6(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(head_ch, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (fan_out), BN gamma 1 / beta 0, small-normal linear layer."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def _resnet(n: int) -> Callable[..., nn.Module]:
    def build(width: float, in_channels: int, num_classes: int) -> nn.Module:
        if width != int(width):
            raise ValueError(f"ResNet width is a channel count, got {width}")
        return ResNet(n, int(width), in_channels, num_classes)

    return build


def _mobilenetv2(
    repeats: tuple[int, ...] | None, strides: tuple[int, ...] | None
) -> Callable[..., nn.Module]:
    def build(width: float, in_channels: int, num_classes: int) -> nn.Module:
        return MobileNetV2(width, in_channels, num_classes, repeats, strides)

    return build


# name -> (builder(width, in_channels, num_classes), default width)
MODELS: dict[str, tuple[Callable[..., nn.Module], float]] = {
    **{f"resnet{6 * n + 2}": (_resnet(n), 16) for n in (1, 2, 3, 5, 7, 9)},
    "mobilenetv2": (_mobilenetv2(None, None), 1.0),
    "mobilenetv2s": (_mobilenetv2((1,) * 7, (1, 2, 2, 2, 1, 2, 1)), 1.0),
}


def default_width(name: str) -> float:
    """The width a model gets when none is given (ResNet: 16 channels; MobileNetV2: 1.0)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name][1]


def build_model(
    name: str, in_channels: int = 3, num_classes: int = 10, width: float | None = None
) -> nn.Module:
    """Build model ``name`` (see :data:`MODELS`) with nn.BatchNorm2d norm layers.

    ``width``: ResNet - channels of the first stage (an integer, default 16); MobileNetV2 -
    the width multiplier (default 1.0).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    builder, default = MODELS[name]
    return builder(default if width is None else width, in_channels, num_classes)
