"""NormalizeImage: uint8 HWC -> float32 (x*scale - mean) / std."""
from __future__ import annotations

import numpy as np


class NormalizeImage:
    """Applied in the image's own (BGR) channel order with the ImageNet RGB numbers, as PaddleOCR does; the crop's
    zero padding therefore becomes -mean/std."""

    def __init__(
        self,
        scale: float = 1.0 / 255.0,
        mean: tuple = (0.485, 0.456, 0.406),
        std: tuple = (0.229, 0.224, 0.225),
    ) -> None:
        self.scale = np.float32(scale)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        # uint8 images go through a per-channel lookup table: the same float32 values, ~3x faster than the arithmetic.
        self.table = (np.arange(256, dtype=np.float32)[:, None] * self.scale - self.mean) / self.std

    def __call__(self, data: dict) -> dict:
        image = data["image"]
        if image.dtype == np.uint8:
            data["image"] = np.stack([self.table[:, c][image[..., c]] for c in range(image.shape[2])], axis=-1)
        else:
            data["image"] = (image.astype(np.float32) * self.scale - self.mean) / self.std
        return data
