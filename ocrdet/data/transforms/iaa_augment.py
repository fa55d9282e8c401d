"""IaaAugment: PaddleOCR's imgaug pipeline Fliplr(0.5) -> Affine(rotate) -> Resize(scale), rewritten with OpenCV.

The polygons are moved as keypoints with the same geometry as the pixels, following imgaug's conventions: a flip maps
x to W - x, rotation is about the pixel-grid centre ((W-1)/2, (H-1)/2) with the canvas kept (corners cut, 0 fill,
bilinear), and the resize draws one factor for both sides, rounds the new size and uses cubic interpolation.
"""
from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.rng import resolve_rng


class IaaAugment:
    def __init__(self, flip_prob: float = 0.5, rotate: tuple = (-10, 10), scale: tuple = (0.5, 3.0)) -> None:
        self.flip_prob = flip_prob
        self.rotate = tuple(rotate)
        self.scale = tuple(scale)

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        rng = resolve_rng(rng)
        image = data["image"]
        polys = np.asarray(data["polys"], dtype=np.float32).copy()
        height, width = image.shape[:2]

        flip = rng.random() < self.flip_prob
        if flip:
            polys[..., 0] = width - polys[..., 0]

        # imgaug's positive angle turns the content clockwise on screen; cv2's turns it counter-clockwise.
        angle = rng.uniform(*self.rotate)
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), -angle, 1.0)
        # The pixel flip (column x -> W-1-x) is folded into the rotation's warp: one resampling pass instead of a flip
        # copy plus the warp; the output differs only by fixed-point rounding (1 grey level on ~0.01% of pixels).
        pixel_flip = np.array([[-1.0, 0.0, width - 1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if flip else np.eye(3)
        image = cv2.warpAffine(
            image,
            matrix @ pixel_flip,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        polys = polys @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)

        factor = rng.uniform(*self.scale)
        new_w, new_h = max(1, int(round(width * factor))), max(1, int(round(height * factor)))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
        polys = polys * np.array([new_w / width, new_h / height], dtype=np.float32)

        data["image"] = image
        data["polys"] = polys
        return data
