"""MobileNetV3 as used by PaddleOCR's DB detectors (spec section 2.2), plus the SE block shared with RSE-FPN.

The detection variant differs from the classification net: every residual unit has an expand 1x1 conv (even when
exp == in), there is no classifier, and the blocks are split into 4 stages whose outputs feed the neck.
Sublayer names (`conv`, `stage{i}`, `expand_conv`, `bottleneck_conv`, `mid_se`, `linear_conv`, `conv1`/`conv2`) match
PaddleOCR so its checkpoints load by key.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import paddle
from paddle import nn
import paddle.nn.functional as F

from ocrdet.engine.kernels import DepthwiseConv2D

# (kernel, expand channels, out channels, use SE, activation, stride) at scale 1.0.
_BlockCfg = Tuple[int, int, int, bool, str, int]

_LARGE: List[_BlockCfg] = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
]
_SMALL: List[_BlockCfg] = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
]
# model_name -> (block table, channels of the final 1x1 conv, first block index allowed to open a new stage).
# 'large' keeps its first stride-2 block (index 1) in stage 0, so stage 0 ends at stride 4 for both variants.
_CONFIGS = {"large": (_LARGE, 960, 2), "small": (_SMALL, 576, 0)}


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a scaled channel count to a multiple of `divisor`, never dropping more than 10% below `v`."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def activation(x: paddle.Tensor, act: Optional[str]) -> paddle.Tensor:
    """Apply a named activation ('relu', 'hardswish' or None)."""
    if act is None:
        return x
    if act == "relu":
        return F.relu(x)
    if act == "hardswish":
        return F.hardswish(x)
    raise ValueError(f"unsupported activation {act!r}")


class ConvBNLayer(nn.Layer):
    """Bias-free conv + BatchNorm + optional activation (sublayers `conv`, `bn`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.act = act
        if groups == in_channels == out_channels > 1:  # depthwise: ocrdet's CPU operator where it applies
            self.conv = DepthwiseConv2D(in_channels, kernel_size, stride=stride)
        else:
            self.conv = nn.Conv2D(
                in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                groups=groups, bias_attr=False,
            )
        self.bn = nn.BatchNorm2D(out_channels)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return activation(self.bn(self.conv(x)), self.act)


class SEModule(nn.Layer):
    """Squeeze-excitation: global pool -> 1x1 (C->C/r) -> ReLU -> 1x1 (C/r->C) -> hardsigmoid -> scale input.

    The gate is PaddleOCR's hardsigmoid clip(0.2x + 0.5, 0, 1), not Paddle's default x/6 + 0.5: the released
    weights were trained with the former and outputs drift by up to 0.07 with the latter.
    """

    def __init__(self, in_channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(in_channels, in_channels // reduction, 1)
        self.conv2 = nn.Conv2D(in_channels // reduction, in_channels, 1)

    def gate(self, x: paddle.Tensor) -> paddle.Tensor:
        """The per-channel scale [N,C,1,1] that `forward` multiplies `x` by."""
        gate = F.relu(self.conv1(self.avg_pool(x)))
        return F.hardsigmoid(self.conv2(gate), slope=0.2, offset=0.5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.gate(x)


class ResidualUnit(nn.Layer):
    """Inverted residual: expand 1x1 -> depthwise kxk -> [SE] -> linear 1x1, with identity add when shapes allow."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        use_se: bool,
        act: str,
    ) -> None:
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.use_se = use_se
        self.expand_conv = ConvBNLayer(in_channels, mid_channels, 1, act=act)
        self.bottleneck_conv = ConvBNLayer(
            mid_channels, mid_channels, kernel_size, stride=stride, groups=mid_channels, act=act
        )
        if use_se:
            self.mid_se = SEModule(mid_channels)
        self.linear_conv = ConvBNLayer(mid_channels, out_channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.use_se:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.use_shortcut else y


class MobileNetV3(nn.Layer):
    """Detection MobileNetV3 returning 4 feature maps at strides 4, 8, 16, 32.

    `out_channels` lists their channel counts, e.g. [16, 24, 56, 480] for large x0.5.
    """

    def __init__(
        self, in_channels: int = 3, model_name: str = "large", scale: float = 0.5, disable_se: bool = False
    ) -> None:
        super().__init__()
        if model_name not in _CONFIGS:
            raise ValueError(f"model_name must be one of {sorted(_CONFIGS)}, got {model_name!r}")
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        cfg, last_channels, start_idx = _CONFIGS[model_name]

        channels = make_divisible(16 * scale)
        self.conv = ConvBNLayer(in_channels, channels, 3, stride=2, act="hardswish")

        self.out_channels: List[int] = []
        stages: List[List[nn.Layer]] = []
        blocks: List[nn.Layer] = []
        for i, (k, exp, c, se, act, s) in enumerate(cfg):
            # A stride-2 block opens a new stage, so each stage output is the last map at its resolution.
            if s == 2 and i > start_idx:
                self.out_channels.append(channels)
                stages.append(blocks)
                blocks = []
            out = make_divisible(scale * c)
            blocks.append(
                ResidualUnit(channels, make_divisible(scale * exp), out, k, s, use_se=se and not disable_se, act=act)
            )
            channels = out
        last = make_divisible(scale * last_channels)
        blocks.append(ConvBNLayer(channels, last, 1, act="hardswish"))
        stages.append(blocks)
        self.out_channels.append(last)

        self.stages = [self.add_sublayer(f"stage{i}", nn.Sequential(*b)) for i, b in enumerate(stages)]

    def forward(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        x = self.conv(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs
