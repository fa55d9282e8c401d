"""ResNet-vd for detection (spec section 2.3): the PP-OCRv3 teacher backbone (depth 50).

"vd" = deep 3-conv stem and, on down-sampling shortcuts, a 2x2 average pool before a stride-1 1x1 conv, so the
shortcut sees every input pixel. Sublayer names (`conv1_1`, `bb_{stage}_{idx}`, `conv0..2`, `short`, `_conv`,
`_batch_norm`) match PaddleOCR so its checkpoints load by key.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import paddle
from paddle import nn
import paddle.nn.functional as F

from ocrdet.engine import kernels

# depth -> blocks per stage; BasicBlock below 50 layers, Bottleneck from 50.
_DEPTHS: Dict[int, Tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 12, 48, 3),
}
_WIDTHS = (64, 128, 256, 512)


class ConvBNLayer(nn.Layer):
    """[2x2 avg pool] + bias-free conv + BatchNorm + optional ReLU (sublayers `_conv`, `_batch_norm`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        is_vd_mode: bool = False,
        act: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.is_vd_mode = is_vd_mode
        self.act = act
        self._pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0, ceil_mode=True)
        self._conv = kernels.Conv2D(  # stride-1 KxK convs on ocrdet's CPU operator where it applies
            in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, bias_attr=False
        )
        self._batch_norm = nn.BatchNorm2D(out_channels)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.is_vd_mode:
            x = self._pool2d_avg(x)
        x = self._batch_norm(self._conv(x))
        return F.relu(x) if self.act == "relu" else x


def _shortcut(in_channels: int, out_channels: int, if_first: bool) -> ConvBNLayer:
    # Projection shortcut of a stage's first block; the network's very first block has stride 1, so no pooling.
    return ConvBNLayer(in_channels, out_channels, 1, is_vd_mode=not if_first)


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 (carries the stride) -> 1x1 (x4 channels), plus identity or vd projection shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: bool, if_first: bool) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv0 = ConvBNLayer(in_channels, channels, 1, act="relu")
        self.conv1 = ConvBNLayer(channels, channels, 3, stride=stride, act="relu")
        self.conv2 = ConvBNLayer(channels, channels * 4, 1)
        if not shortcut:
            self.short = _shortcut(in_channels, channels * 4, if_first)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv2(self.conv1(self.conv0(x)))
        return F.relu(y + (x if self.shortcut else self.short(x)))


class BasicBlock(nn.Layer):
    """3x3 (carries the stride) -> 3x3, plus identity or vd projection shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: bool, if_first: bool) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv0 = ConvBNLayer(in_channels, channels, 3, stride=stride, act="relu")
        self.conv1 = ConvBNLayer(channels, channels, 3)
        if not shortcut:
            self.short = _shortcut(in_channels, channels, if_first)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv1(self.conv0(x))
        return F.relu(y + (x if self.shortcut else self.short(x)))


class ResNetVd(nn.Layer):
    """ResNet-vd returning 4 feature maps at strides 4, 8, 16, 32 (no classifier).

    `out_channels` is [256, 512, 1024, 2048] for depth >= 50 and [64, 128, 256, 512] for 18/34.
    """

    def __init__(self, in_channels: int = 3, layers: int = 50) -> None:
        super().__init__()
        if layers not in _DEPTHS:
            raise ValueError(f"layers must be one of {sorted(_DEPTHS)}, got {layers}")
        block_cls = BottleneckBlock if layers >= 50 else BasicBlock

        self.conv1_1 = ConvBNLayer(in_channels, 32, 3, stride=2, act="relu")
        self.conv1_2 = ConvBNLayer(32, 32, 3, act="relu")
        self.conv1_3 = ConvBNLayer(32, 64, 3, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)

        self.out_channels: List[int] = []
        self.stages: List[List[nn.Layer]] = []
        channels = 64
        for stage, (depth, width) in enumerate(zip(_DEPTHS[layers], _WIDTHS)):
            blocks = []
            for idx in range(depth):
                block = block_cls(
                    channels,
                    width,
                    stride=2 if idx == 0 and stage != 0 else 1,
                    shortcut=idx != 0,  # every stage's first block projects, even 64->64 in ResNet18/34
                    if_first=stage == idx == 0,
                )
                # Flat `bb_{stage}_{idx}` names (no per-stage container) are what PaddleOCR checkpoints use.
                blocks.append(self.add_sublayer(f"bb_{stage}_{idx}", block))
                channels = width * block_cls.expansion
            self.stages.append(blocks)
            self.out_channels.append(channels)

    def forward(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        x = self.pool2d_max(self.conv1_3(self.conv1_2(self.conv1_1(x))))
        outs = []
        for blocks in self.stages:
            for block in blocks:
                x = block(x)
            outs.append(x)
        return outs
