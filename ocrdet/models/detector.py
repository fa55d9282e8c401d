"""DB text detector: backbone -> neck -> head (spec section 2.1)."""
from __future__ import annotations

from typing import Callable, Dict

import paddle
from paddle import nn


class DBDetector(nn.Layer):
    """Builds a backbone, neck and head given as partials (Hydra `_partial_: true`), in that order.

    A partial backbone lets one configured architecture build several detectors (the DML/CML students). The neck is
    completed with `in_channels=backbone.out_channels` and the head with `in_channels=neck.out_channels`,
    so configs never repeat channel counts. Sublayers are named `backbone`, `neck`, `head` so state-dict keys equal
    PaddleOCR's (`backbone.conv.conv.weight`, `neck.ins_conv.0.in_conv.weight`, `head.binarize.conv1.weight`).
    """

    def __init__(
        self, backbone: Callable[[], nn.Layer], neck: Callable[..., nn.Layer], head: Callable[..., nn.Layer]
    ) -> None:
        super().__init__()
        self.backbone = backbone()
        self.neck = neck(in_channels=self.backbone.out_channels)
        self.head = head(in_channels=self.neck.out_channels)

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        return self.head(self.neck(self.backbone(x)))
