"""DB head (spec section 2.7): probability (shrink) and threshold maps at full input resolution."""
from __future__ import annotations

import math
from typing import Dict, Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F


def _bn(channels: int) -> nn.BatchNorm2D:
    # Scale 1 and a tiny positive shift, as PaddleOCR initialises the head BNs.
    return nn.BatchNorm2D(
        channels,
        weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)),
        bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1e-4)),
    )


def _up_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2DTranspose:
    # x2 transposed conv: KaimingUniform weight, bias U(+-1/sqrt(fan)) with fan = the branch's C/4.
    bound = 1.0 / math.sqrt(in_channels)
    return nn.Conv2DTranspose(
        in_channels,
        out_channels,
        kernel_size,
        stride=2,
        weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
        bias_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound)),
    )


class DBHeadBranch(nn.Layer):
    """conv k1 (C->C/4) + BN + ReLU -> convT x2 + BN + ReLU -> convT x2 (->1) -> sigmoid."""

    def __init__(self, in_channels: int, kernel_list: Sequence[int] = (3, 2, 2)) -> None:
        super().__init__()
        mid = in_channels // 4
        k1, k2, k3 = kernel_list
        self.conv1 = nn.Conv2D(in_channels, mid, k1, padding=k1 // 2, bias_attr=False)
        self.conv_bn1 = _bn(mid)
        self.conv2 = _up_conv(mid, mid, k2)
        self.conv_bn2 = _bn(mid)
        self.conv3 = _up_conv(mid, 1, k3)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.relu(self.conv_bn1(self.conv1(x)))
        x = F.relu(self.conv_bn2(self.conv2(x)))
        return F.sigmoid(self.conv3(x))


class DBHead(nn.Layer):
    """Differentiable-binarization head.

    Training: {"maps": concat[P, T, B]} (N,3,H,W), B = 1/(1+exp(-k(P-T))). Eval: {"maps": P} (N,1,H,W); the
    threshold branch is skipped, which is also why inference checkpoints carry no `head.thresh.*` weights.
    """

    def __init__(self, in_channels: int, k: int = 50, kernel_list: Sequence[int] = (3, 2, 2)) -> None:
        super().__init__()
        if len(kernel_list) != 3:
            raise ValueError(f"kernel_list needs 3 kernel sizes, got {list(kernel_list)}")
        self.k = k
        self.binarize = DBHeadBranch(in_channels, kernel_list)
        self.thresh = DBHeadBranch(in_channels, kernel_list)

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        shrink = self.binarize(x)
        if not self.training:
            return {"maps": shrink}
        thresh = self.thresh(x)
        binary = paddle.reciprocal(1 + paddle.exp(-self.k * (shrink - thresh)))
        return {"maps": paddle.concat([shrink, thresh, binary], axis=1)}
