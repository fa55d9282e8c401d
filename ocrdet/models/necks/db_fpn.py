"""DBFPN (spec section 2.6) and the FPN pieces shared by every DB neck (RSEFPN, LKPAN).

All DB necks take 4 backbone maps (strides 4..32), add them top-down after a lateral projection, smooth each level,
then upsample every level to stride 4 and concatenate [p5, p4, p3, p2]. No BN, no activation.
"""
from __future__ import annotations

from typing import List, Sequence

import paddle
from paddle import nn
import paddle.nn.functional as F

from ocrdet.engine import kernels
from ocrdet.engine.kernels import exporting, upsample_nearest


def kaiming_conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = False
) -> nn.Conv2D:
    """Conv with KaimingUniform weights and 'same' padding, as used throughout the necks (stride-1 K x K ones on
    ocrdet's CPU operator where it applies)."""
    return kernels.Conv2D(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingUniform()),
        bias_attr=None if bias else False,
    )


def upsample(x: paddle.Tensor, factor: int, for_export: bool = False) -> paddle.Tensor:
    """Nearest-neighbour upsampling by an integer factor (identity for 1).

    On the CPU in training and dygraph evaluation: ocrdet's operator (`ocrdet.engine.kernels.upsample_nearest`, a
    copy forward and a block sum backward, ~1.7x the transposed conv below at the student's 640/8 shapes). Elsewhere
    written as a depthwise transposed conv with an all-ones `factor` x `factor` kernel and stride `factor`: every
    output is exactly 1 * its source pixel, as with `F.interpolate(mode="nearest")`, and the input gradient sums each
    block as interpolate's does. Why: at training sizes (640 crop, batch 8) it is ~2x faster forward + backward on
    CPU; and Paddle 3's oneDNN inference executor cannot run interpolate ops (their float-array `scale` attribute,
    Paddle issue #79749), so an export without one runs fully on oneDNN (see ocrdet.det.graph.load_predictor).
    """
    if factor == 1:
        return x
    fast = upsample_nearest(x, factor, for_export)  # ocrdet's CPU operator (training and dygraph eval on CPU)
    if fast is not None:
        return fast
    channels = x.shape[1]
    if for_export and channels % 2 == 0:
        # Static graph (export): a depthwise transposed conv has no oneDNN kernel in the predictor, which then
        # reorders the data around a slow reference kernel. Groups of channels with an identity kernel (each output
        # is 1 * its source + 0 * the others: the same values for finite inputs) run as oneDNN deconvolutions.
        # Groups of 24 (RSE-FPN's level width) keep the surrounding convs' NHWC layout, so the adds and concat that
        # follow see one layout (predictor 1.21-1.31x onnxruntime's time vs 1.24-1.38x with groups of 2; groups of
        # 8 were 4x slower).
        size = 24 if channels % 24 == 0 else 2
        eye = paddle.eye(size, dtype=x.dtype).reshape([1, size, size, 1, 1])
        kernel = eye.expand([channels // size, size, size, factor, factor]).reshape([channels, size, factor, factor])
        return F.conv2d_transpose(x, kernel, stride=factor, groups=channels // size)
    ones = paddle.ones([channels, 1, factor, factor], dtype=x.dtype)
    return F.conv2d_transpose(x, ones, stride=factor, groups=channels)


def top_down(laterals: Sequence[paddle.Tensor], for_export: bool = False) -> List[paddle.Tensor]:
    """[in2, in3, in4, in5] -> [out2, out3, out4, in5]: each level plus the 2x-upsampled coarser one."""
    outs = [laterals[-1]]
    for lateral in reversed(laterals[:-1]):
        outs.insert(0, lateral + upsample(outs[0], 2, for_export))
    return outs


def fuse(levels: Sequence[paddle.Tensor], for_export: bool = False) -> paddle.Tensor:
    """[p2, p3, p4, p5] -> concat [p5, p4, p3, p2] after upsampling each to the stride-4 resolution."""
    ups = [upsample(p, 2**i, for_export) for i, p in enumerate(levels)]
    return paddle.concat(ups[::-1], axis=1)


class DBFPN(nn.Layer):
    """Plain FPN: 1x1 laterals to C, top-down add, 3x3 smoothing to C/4, fused to C channels at stride 4."""

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.out_channels = out_channels
        # Named per level (in2_conv..in5_conv, p2_conv..p5_conv) as in PaddleOCR checkpoints.
        for level, c in zip(range(2, 6), in_channels):
            setattr(self, f"in{level}_conv", kaiming_conv(c, out_channels, 1))
        for level in range(5, 1, -1):
            setattr(self, f"p{level}_conv", kaiming_conv(out_channels, out_channels // 4, 3))

    def forward(self, x: Sequence[paddle.Tensor]) -> paddle.Tensor:
        laterals = [getattr(self, f"in{level}_conv")(c) for level, c in zip(range(2, 6), x)]
        outs = top_down(laterals, exporting(self))
        return fuse([getattr(self, f"p{level}_conv")(o) for level, o in zip(range(2, 6), outs)], exporting(self))
