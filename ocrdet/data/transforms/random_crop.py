"""EastRandomCrop: a care-aware random crop, resized into the top-left of a fixed zero canvas (PaddleOCR
EastRandomCropData, spec 4.3.5).

Crop edges are drawn only from rows/columns that no cared-for polygon spans, so the crop never cuts through a
legible word; a crop is accepted once it contains at least one cared-for polygon, else the whole image is used.
"""
from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.rng import resolve_rng


def is_poly_outside_rect(poly: np.ndarray, x: float, y: float, w: float, h: float) -> bool:
    """True when the polygon's bounding box misses the rectangle [x, x+w] x [y, y+h] entirely."""
    xs, ys = poly[:, 0], poly[:, 1]
    return bool(xs.max() < x or xs.min() > x + w or ys.max() < y or ys.min() > y + h)


def _free_runs(free: np.ndarray) -> list[np.ndarray]:
    """Split sorted free coordinates into runs of consecutive values."""
    breaks = np.nonzero(np.diff(free) != 1)[0] + 1
    return np.split(free, breaks)


def _pick_span(free: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int]:
    runs = _free_runs(free)
    if len(runs) > 1:
        # One coordinate from each of two runs (drawn with replacement): crops tend to span whole text lines.
        chosen = [int(rng.choice(runs[i])) for i in rng.choice(len(runs), size=2)]
    else:
        chosen = [int(v) for v in rng.choice(free, size=2)]
    low, high = min(chosen), max(chosen)
    return int(np.clip(low, 0, size - 1)), int(np.clip(high, 0, size - 1))


def crop_area(
    shape: tuple[int, int],
    care_polys: list[np.ndarray],
    min_side_ratio: float,
    max_tries: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the crop inside an image of `shape` (h, w)."""
    height, width = shape
    occupied_x = np.zeros(width, dtype=bool)
    occupied_y = np.zeros(height, dtype=bool)
    for poly in care_polys:
        points = np.round(poly).astype(np.int64)
        # Clipped to the image: PaddleOCR slices with raw values, so a negative start wraps around and marks nothing.
        x0, x1 = np.clip([points[:, 0].min(), points[:, 0].max()], 0, width)
        y0, y1 = np.clip([points[:, 1].min(), points[:, 1].max()], 0, height)
        occupied_x[x0:x1] = True
        occupied_y[y0:y1] = True
    free_x, free_y = np.nonzero(~occupied_x)[0], np.nonzero(~occupied_y)[0]
    if len(free_x) == 0 or len(free_y) == 0:
        return 0, 0, width, height
    for _ in range(max_tries):
        x_min, x_max = _pick_span(free_x, width, rng)
        y_min, y_max = _pick_span(free_y, height, rng)
        if x_max - x_min < min_side_ratio * width or y_max - y_min < min_side_ratio * height:
            continue
        if any(not is_poly_outside_rect(p, x_min, y_min, x_max - x_min, y_max - y_min) for p in care_polys):
            return x_min, y_min, x_max - x_min, y_max - y_min
    return 0, 0, width, height


class EastRandomCrop:
    """`size` is (w, h). With keep_ratio the crop is scaled by one factor to fit and padded with zeros at the bottom
    and right; without it the crop is stretched to `size`. Polygons move by (p - crop origin) * scale, and those whose
    bounding box misses the resized crop are dropped (with their texts and tags); kept ones may extend outside it."""

    def __init__(
        self,
        size: tuple = (960, 960),
        max_tries: int = 50,
        min_crop_side_ratio: float = 0.1,
        keep_ratio: bool = True,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.max_tries = max_tries
        self.min_crop_side_ratio = min_crop_side_ratio
        self.keep_ratio = keep_ratio

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        rng = resolve_rng(rng)
        image, polys, tags = data["image"], np.asarray(data["polys"], dtype=np.float32), data["ignore_tags"]
        care = [p for p, ignored in zip(polys, tags) if not ignored]
        x, y, w, h = crop_area(image.shape[:2], care, self.min_crop_side_ratio, self.max_tries, rng)
        out_w, out_h = self.size
        crop = image[y : y + h, x : x + w]
        if self.keep_ratio:
            scale_x = scale_y = min(out_w / w, out_h / h)
            new_w, new_h = int(w * scale_x), int(h * scale_y)
            canvas = np.zeros((out_h, out_w) + image.shape[2:], dtype=image.dtype)
            canvas[:new_h, :new_w] = cv2.resize(crop, (new_w, new_h))
        else:
            scale_x, scale_y = out_w / w, out_h / h
            new_w, new_h = out_w, out_h
            canvas = cv2.resize(crop, (out_w, out_h))
        moved = (polys - np.array([x, y], np.float32)) * np.array([scale_x, scale_y], np.float32)
        keep = np.array([i for i, p in enumerate(moved) if not is_poly_outside_rect(p, 0, 0, new_w, new_h)], np.int64)
        data["image"] = canvas
        data["polys"] = moved[keep]
        data["texts"] = [data["texts"][i] for i in keep]
        data["ignore_tags"] = np.asarray(tags, dtype=bool)[keep]
        return data
