"""LK-PAN (spec section 2.5): the PP-OCRv3 teacher neck, an FPN + PAN with large (9x9) kernels."""
from __future__ import annotations

from typing import Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F

from ocrdet.engine.kernels import DepthwiseConv2D
from ocrdet.models.necks.db_fpn import exporting, fuse, kaiming_conv, top_down


class DSConv(nn.Layer):
    """'lite' replacement for a 9x9 conv: depthwise kxk + BN -> 1x1 (x4) + BN + ReLU -> 1x1, plus 1x1 residual
    when the channel count changes. Default (not Kaiming) init, as in PaddleOCR."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        hidden = in_channels * 4
        self.conv1 = DepthwiseConv2D(in_channels, kernel_size)  # ocrdet's CPU operator where it applies
        self.bn1 = nn.BatchNorm2D(in_channels)
        self.conv2 = nn.Conv2D(in_channels, hidden, 1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(hidden)
        self.conv3 = nn.Conv2D(hidden, out_channels, 1, bias_attr=False)
        self.has_residual = in_channels != out_channels
        if self.has_residual:
            self.conv_end = nn.Conv2D(in_channels, out_channels, 1, bias_attr=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv3(F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x))))))
        return y + self.conv_end(x) if self.has_residual else y


class LKPAN(nn.Layer):
    """1x1 laterals to C, top-down add, 9x9 to C/4, bottom-up PAN (3x3 stride-2), 9x9 again, fused to C channels.

    mode 'large' (the released teacher) uses plain 9x9 convs; 'lite' uses DSConv for them.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256, mode: str = "large") -> None:
        super().__init__()
        mode = mode.lower()
        if mode not in ("large", "lite"):
            raise ValueError(f"mode must be 'large' or 'lite', got {mode!r}")
        self.out_channels = out_channels
        c4 = out_channels // 4

        def large_kernel(cin: int, cout: int) -> nn.Layer:
            return kaiming_conv(cin, cout, 9) if mode == "large" else DSConv(cin, cout, 9)

        # Created level by level in PaddleOCR's order, so a seed draws the same start as tools/train.py.
        self.ins_conv, self.inp_conv = nn.LayerList(), nn.LayerList()
        self.pan_head_conv, self.pan_lat_conv = nn.LayerList(), nn.LayerList()
        for i, c in enumerate(in_channels):
            self.ins_conv.append(kaiming_conv(c, out_channels, 1))
            self.inp_conv.append(large_kernel(out_channels, c4))
            if i > 0:  # one stride-2 conv per PAN step (between consecutive levels)
                self.pan_head_conv.append(kaiming_conv(c4, c4, 3, stride=2))
            self.pan_lat_conv.append(large_kernel(c4, c4))

    def forward(self, x: Sequence[paddle.Tensor]) -> paddle.Tensor:
        outs = top_down([conv(c) for conv, c in zip(self.ins_conv, x)], exporting(self))
        feats = [conv(o) for conv, o in zip(self.inp_conv, outs)]
        # Bottom-up: each level adds the stride-2 projection of the previous (finer) PAN level.
        pan = [feats[0]]
        for down, f in zip(self.pan_head_conv, feats[1:]):
            pan.append(f + down(pan[-1]))
        return fuse([conv(p) for conv, p in zip(self.pan_lat_conv, pan)], exporting(self))
