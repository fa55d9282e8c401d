"""DB head (spec section 2.7): probability (shrink) and threshold maps at full input resolution."""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import paddle
from paddle import nn
import paddle.nn.functional as F

from ocrdet.engine import kernels
from ocrdet.models.necks.db_fpn import exporting


def _bn(channels: int) -> nn.BatchNorm2D:
    # Scale 1 and a tiny positive shift, as PaddleOCR initialises the head BNs.
    return nn.BatchNorm2D(
        channels,
        weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)),
        bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1e-4)),
    )


def add_channel_bias(y: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """`y + bias.reshape([1, C, 1, 1])` computed as an [N*C, H*W] + [N*C, 1] broadcast (known shapes: dygraph, or a compiled step's fixed ones).

    Same sums, but Paddle's CPU kernels broadcast along a row ~3x faster forward + backward than over H and W,
    and the transposed convs' bias adds were the largest elementwise cost of a training step.
    """
    n, c, h, w = y.shape
    return (y.reshape([n * c, h * w]) + bias.tile([n]).reshape([n * c, 1])).reshape([n, c, h, w])


class UpConv2D(nn.Conv2DTranspose):
    """x2 transposed conv (kernel k, stride 2, no padding) whose dygraph bias add is `add_channel_bias`.

    KaimingUniform weight, bias U(+-1/sqrt(fan)) with fan = the branch's C/4, as PaddleOCR. The parameters stay
    `weight` [C_in, C_out, k, k] and `bias` [C_out], so PaddleOCR checkpoints load unchanged. A static graph
    (export) keeps the plain op, which the inference passes fuse with its bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        bound = 1.0 / math.sqrt(in_channels)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=2,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound)),
        )

    def forward(self, x: paddle.Tensor, output_size: Optional[Sequence[int]] = None) -> paddle.Tensor:
        if output_size is None and exporting(self) and self._out_channels == 1:
            # Export of the last layer: its one bias value added as a [1] tensor (a scalar broadcast) instead of
            # Paddle's [1,1,1,1] reshape, which the predictor's oneDNN add runs ~10x slower on the full-size map.
            return F.conv2d_transpose(x, self.weight, stride=2) + self.bias
        if output_size is not None or exporting(self):
            return super().forward(x, output_size)
        return add_channel_bias(F.conv2d_transpose(x, self.weight, stride=2), self.bias)


class DBHeadBranch(nn.Layer):
    """conv k1 (C->C/4) + BN + ReLU -> convT x2 + BN + ReLU -> convT x2 (->1) -> sigmoid."""

    def __init__(self, in_channels: int, kernel_list: Sequence[int] = (3, 2, 2)) -> None:
        super().__init__()
        mid = in_channels // 4
        k1, k2, k3 = kernel_list
        self.conv1 = kernels.Conv2D(in_channels, mid, k1, padding=k1 // 2, bias_attr=False)  # CPU operator
        self.conv_bn1 = _bn(mid)
        self.conv2 = UpConv2D(mid, mid, k2)
        self.conv_bn2 = _bn(mid)
        self.conv3 = UpConv2D(mid, 1, k3)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.tail(self.conv1(x))

    def tail(self, x: paddle.Tensor) -> paddle.Tensor:
        """Everything after `conv1`, given its output."""
        x = F.relu(self.conv_bn1(x))
        x = F.relu(self.conv_bn2(self.conv2(x)))
        return F.sigmoid(self.conv3(x))

    @paddle.no_grad()
    def fold_batch_norm(self) -> None:
        """Fold `conv_bn2` (its inference statistics) into `conv2`'s weight and bias and make it an identity: eval
        outputs equal to float rounding (~1e-7 relative). For inference copies only (`ocrdet.det.graph`): the
        predictor's passes leave a BN after a transposed conv unfused, a full-resolution pass of its own."""
        bn = self.conv_bn2
        if isinstance(bn, nn.Identity):
            return
        scale = bn.weight / paddle.sqrt(bn._variance + bn._epsilon)
        self.conv2.weight.set_value(self.conv2.weight * scale.reshape([1, -1, 1, 1]))
        self.conv2.bias.set_value((self.conv2.bias - bn._mean) * scale + bn.bias)
        self.conv_bn2 = nn.Identity()


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
        if not self.training:
            return {"maps": self.binarize(x)}
        shrink, thresh = self._both_branches(x)
        binary = paddle.reciprocal(1 + paddle.exp(-self.k * (shrink - thresh)))
        return {"maps": paddle.concat([shrink, thresh, binary], axis=1)}

    def _both_branches(self, x: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
        """(shrink, thresh). In dygraph both branches' first convs, which read the same input, run as one conv with
        the two weights concatenated (2*C/4 outputs): the same sums, ~1.4x faster forward + backward on CPU."""
        if exporting(self):
            return self.binarize(x), self.thresh(x)
        weight = paddle.concat([self.binarize.conv1.weight, self.thresh.conv1.weight])
        both = kernels.conv2d_same(x, weight, for_export=False)  # ocrdet's CPU operator, where it runs
        if both is None:
            both = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        first, second = paddle.split(both, 2, axis=1)
        return self.binarize.tail(first), self.thresh.tail(second)
