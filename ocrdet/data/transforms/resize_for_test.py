"""DetResizeForTest: the eval resize (spec 4.4), recording `shape` = [src_h, src_w, ratio_h, ratio_w]."""
from __future__ import annotations

import logging
import math

import cv2
import numpy as np

log = logging.getLogger(__name__)

LIMIT_TYPES = ("min", "max", "resize_long")
STRIDE = 32  # the network downsamples by 32
LONG_STRIDE = 128  # the `resize_long` mode pads sides up to a multiple of 128


class DetResizeForTest:
    """Modes, first match wins: `image_shape` [h, w] (fixed size); `resize_long` (long side = L, each side rounded
    up to a multiple of 128); else `limit_type` with `limit_side_len`: 'min' enlarges so the short side reaches L,
    'max' shrinks so the long side is at most L, 'resize_long' scales the long side to L; those three round each side
    to the nearest multiple of 32 (at least 32). Images with h + w < 64 are first zero-padded to at least 32x32
    (the ratios then refer to the padded image, `shape` keeps the source size). Polygons are not touched: eval keeps
    them in source coordinates and the post-processing divides by the ratios."""

    def __init__(
        self,
        limit_side_len: int = 736,
        limit_type: str = "min",
        image_shape: list | None = None,
        resize_long: int | None = None,
        max_side_len: int | None = 4000,
    ) -> None:
        """`max_side_len` caps the long side of the network input (later PaddleOCR's `max_side_limit`, 4000): a
        huge image is scaled down to it, with a warning, rather than run out of memory in the forward."""
        if limit_type not in LIMIT_TYPES:
            raise ValueError(f"limit_type must be one of {LIMIT_TYPES}, got {limit_type!r}")
        self.limit_side_len = limit_side_len
        self.limit_type = limit_type
        self.image_shape = None if image_shape is None else (int(image_shape[0]), int(image_shape[1]))
        self.resize_long = resize_long
        self.max_side_len = max_side_len

    def __call__(self, data: dict) -> dict:
        image = data["image"]
        src_h, src_w = image.shape[:2]
        if src_h + src_w < 2 * STRIDE:
            padded = np.zeros((max(STRIDE, src_h), max(STRIDE, src_w)) + image.shape[2:], dtype=image.dtype)
            padded[:src_h, :src_w] = image
            image = padded
        height, width = image.shape[:2]
        new_h, new_w = self.target_size(height, width)
        if self.max_side_len and max(new_h, new_w) > self.max_side_len:
            scale = self.max_side_len / max(new_h, new_w)
            capped = tuple(max(STRIDE, int(side * scale) // STRIDE * STRIDE) for side in (new_h, new_w))
            log.warning("%s: %dx%d input capped to %dx%d (max_side_len=%d)", data.get("image_path", "image"),
                        new_w, new_h, capped[1], capped[0], self.max_side_len)
            new_h, new_w = capped
        data["image"] = cv2.resize(image, (new_w, new_h))
        data["shape"] = np.array([src_h, src_w, new_h / height, new_w / width], dtype=np.float32)
        return data

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        if self.image_shape is not None:
            return self.image_shape
        if self.resize_long is not None:
            ratio = self.resize_long / max(height, width)
            return tuple(math.ceil(int(side * ratio) / LONG_STRIDE) * LONG_STRIDE for side in (height, width))
        limit = self.limit_side_len
        if self.limit_type == "min":
            ratio = limit / min(height, width) if min(height, width) < limit else 1.0
        elif self.limit_type == "max":
            ratio = limit / max(height, width) if max(height, width) > limit else 1.0
        else:
            ratio = limit / max(height, width)
        # int() then round-half-to-even, as the reference does.
        return tuple(max(int(round(int(side * ratio) / STRIDE) * STRIDE), STRIDE) for side in (height, width))
