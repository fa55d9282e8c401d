"""DB text detector: backbone -> neck -> head (spec section 2.1)."""
from __future__ import annotations

from typing import Callable, Dict

import paddle
from paddle import nn


class DBDetector(nn.Layer):
    """Wires a built backbone to a neck and head given as partials (Hydra `_partial_: true`).

    The neck is completed with `in_channels=backbone.out_channels` and the head with `in_channels=neck.out_channels`,
    so configs never repeat channel counts. Sublayers are named `backbone`, `neck`, `head` so state-dict keys equal
    PaddleOCR's (`backbone.conv.conv.weight`, `neck.ins_conv.0.in_conv.weight`, `head.binarize.conv1.weight`).
    """

    def __init__(
        self, backbone: nn.Layer, neck: Callable[..., nn.Layer], head: Callable[..., nn.Layer]
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck(in_channels=backbone.out_channels)
        self.head = head(in_channels=self.neck.out_channels)

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        return self.head(self.neck(self.backbone(x)))
