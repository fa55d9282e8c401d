"""IaaAugment: PaddleOCR's Fliplr(0.5) -> Affine(rotate) -> Resize(scale) (imgaug names, run by albumentations in
PaddleOCR), rewritten with OpenCV.

The polygons are moved as keypoints with PaddleOCR's conventions: a flip maps x to W - 1 - x (the pixel column's
mirror), rotation is about the pixel-grid centre ((W-1)/2, (H-1)/2) with the canvas kept (corners cut, 0 fill,
bilinear), and the resize draws one factor f for both sides, truncates the new size (int(W f)), resizes bilinearly and
multiplies the keypoints by f itself (not by the truncated size ratio).

The draws and the geometry live in `AugmentPlan`, which `AugmentCrop` shares to do the same in one resampling.
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from ocrdet.data.rng import resolve_rng


class AugmentPlan(NamedTuple):
    """One draw of the augmentation for a source image of `source_size` (w, h)."""

    flip: bool
    rotation: np.ndarray  # cv2 2x3 matrix, applied after the flip
    source_size: tuple[int, int]
    size: tuple[int, int]  # (w, h) of the augmented canvas

    factor: float  # the drawn scale factor: keypoints are multiplied by it

    def rotation_pixels(self) -> np.ndarray:
        """3x3 map from source pixel centres to the rotated canvas: the pixel flip (column x -> W-1-x), then the
        rotation."""
        width = self.source_size[0]
        flip = np.array([[-1.0, 0.0, width - 1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if self.flip else np.eye(3)
        return np.vstack([self.rotation, [0.0, 0.0, 1.0]]) @ flip

    def pixel_matrix(self) -> np.ndarray:
        """3x3 map from source pixel centres to augmented-canvas pixel centres: rotation_pixels, then cv2.resize's
        mapping x' = (x + 0.5) * new_w / w - 0.5."""
        (width, height), (new_w, new_h) = self.source_size, self.size
        sx, sy = new_w / width, new_h / height
        resize = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        return resize @ self.rotation_pixels()

    def move_polys(self, polys: np.ndarray) -> np.ndarray:
        """The polygons as keypoints on the augmented canvas (float32 [n, k, 2], a new array)."""
        width = self.source_size[0]
        polys = np.asarray(polys, dtype=np.float32).copy()
        if self.flip:
            polys[..., 0] = (width - 1) - polys[..., 0]
        polys = polys @ self.rotation[:, :2].T.astype(np.float32) + self.rotation[:, 2].astype(np.float32)
        return polys * np.float32(self.factor)


def plan_augment(
    source_size: tuple[int, int], flip_prob: float, rotate: tuple, scale: tuple, rng: np.random.Generator
) -> AugmentPlan:
    """Draws flip, angle and scale factor, in that order, from `rng`."""
    width, height = source_size
    flip = bool(rng.random() < flip_prob)
    # imgaug's positive angle turns the content clockwise on screen; cv2's turns it counter-clockwise.
    angle = rng.uniform(*rotate)
    rotation = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), -angle, 1.0)
    factor = rng.uniform(*scale)
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    return AugmentPlan(flip, rotation, (width, height), size, float(factor))


class IaaAugment:
    def __init__(self, flip_prob: float = 0.5, rotate: tuple = (-10, 10), scale: tuple = (0.5, 3.0)) -> None:
        self.flip_prob = flip_prob
        self.rotate = tuple(rotate)
        self.scale = tuple(scale)

    def plan(self, source_size: tuple[int, int], rng: np.random.Generator) -> AugmentPlan:
        return plan_augment(source_size, self.flip_prob, self.rotate, self.scale, rng)

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        image = data["image"]
        height, width = image.shape[:2]
        plan = self.plan((width, height), resolve_rng(rng))
        # The pixel flip is folded into the rotation's warp: one resampling pass instead of a flip copy plus the
        # warp; the output differs only by fixed-point rounding (1 grey level on ~0.01% of pixels).
        image = cv2.warpAffine(
            image,
            plan.rotation_pixels()[:2],
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        if plan.size != (width, height):
            image = cv2.resize(image, plan.size, interpolation=cv2.INTER_LINEAR)
        data["image"] = image
        data["polys"] = plan.move_polys(data["polys"])
        return data
