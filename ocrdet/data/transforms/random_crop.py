"""EastRandomCrop: a care-aware random crop, resized into the top-left of a fixed zero canvas (PaddleOCR
EastRandomCropData, spec 4.3.5).

Crop edges are drawn only from rows/columns that no cared-for polygon spans, so the crop never cuts through a
legible word; a crop is accepted once it contains at least one cared-for polygon, else the whole image is used.
The rule is PaddleOCR's to the letter, quirks included (the last text-free run is never a region of its own;
polygon bounds below 0 mark with Python's negative-index slice), as it decides how often the whole image is used.

The selection (`plan_crop`) is a function of the polygons, the canvas size and the rng only, and `crop_labels` moves
and filters the labels: `AugmentCrop` shares both to crop an image it has not resampled yet.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from ocrdet.data.rng import resolve_rng


def is_poly_outside_rect(poly: np.ndarray, x: float, y: float, w: float, h: float) -> bool:
    """True when the polygon's bounding box misses the rectangle [x, x+w] x [y, y+h] entirely."""
    xs, ys = poly[:, 0], poly[:, 1]
    return bool(xs.max() < x or xs.min() > x + w or ys.max() < y or ys.min() > y + h)


def _boxes_outside_rect(polys: np.ndarray, x: float, y: float, w: float, h: float) -> np.ndarray:
    """`is_poly_outside_rect` for every polygon of a [n, k, 2] array at once -> bool [n]."""
    low, high = polys.min(axis=1), polys.max(axis=1)
    return (high[:, 0] < x) | (low[:, 0] > x + w) | (high[:, 1] < y) | (low[:, 1] > y + h)


def _free_runs(free: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive values of the sorted free coordinates, *without the last run*: PaddleOCR's region split
    closes a run only at the next break, so the run reaching the far edge is never listed. (With one break there is
    one run and the draw falls back to the whole axis; with none, to the whole axis too.)"""
    breaks = np.nonzero(np.diff(free) != 1)[0] + 1
    return np.split(free, breaks)[:-1]


def _pick_span(free: np.ndarray, runs: list[np.ndarray], rng: np.random.Generator) -> tuple[int, int]:
    # rng.integers(0, n, dtype=int64) is the draw rng.choice makes (the same stream), without its ~15 us overhead.
    if len(runs) > 1:
        # One coordinate from each of two runs (drawn with replacement): crops tend to span whole text lines.
        picked = rng.integers(0, len(runs), size=2, dtype=np.int64)
        chosen = [int(runs[i][rng.integers(0, len(runs[i]), dtype=np.int64)]) for i in picked]
    else:
        chosen = [int(v) for v in free[rng.integers(0, len(free), size=2, dtype=np.int64)]]
    return min(chosen), max(chosen)  # free coordinates lie in [0, size): no clipping needed


def crop_area(
    shape: tuple[int, int],
    care_polys: Sequence[np.ndarray],
    min_side_ratio: float,
    max_tries: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the crop inside an image of `shape` (h, w)."""
    height, width = shape
    # Bounding boxes [n, 2 (min, max), 2 (x, y)]: polygons may differ in point count.
    boxes = np.array([[p.min(axis=0), p.max(axis=0)] for p in care_polys]).reshape(-1, 2, 2)
    occupied_x = np.zeros(width, dtype=bool)
    occupied_y = np.zeros(height, dtype=bool)
    # Rounded (= bounds of the rounded points) and *not* clipped: PaddleOCR marks with a plain slice, so a bound
    # below 0 counts from the far end (a start of -3 on a 1280 axis marks from 1277 on, usually nothing). Clipping
    # instead marks the text touching the edge and drops the text-free runs next to it: fewer fallbacks to the whole
    # image and other crops than PaddleOCR's (measured in tests/data/test_crop_statistics.py).
    spans = np.round(boxes).astype(np.int64)
    for (x0, y0), (x1, y1) in spans.tolist():
        occupied_x[x0:x1] = True
        occupied_y[y0:y1] = True
    free_x, free_y = np.flatnonzero(~occupied_x), np.flatnonzero(~occupied_y)
    if len(free_x) == 0 or len(free_y) == 0:
        return 0, 0, width, height
    runs_x, runs_y = _free_runs(free_x), _free_runs(free_y)  # once, not per try
    for _ in range(max_tries):
        x_min, x_max = _pick_span(free_x, runs_x, rng)
        y_min, y_max = _pick_span(free_y, runs_y, rng)
        if x_max - x_min < min_side_ratio * width or y_max - y_min < min_side_ratio * height:
            continue
        if not _boxes_outside_rect(boxes, x_min, y_min, x_max - x_min, y_max - y_min).all():
            return x_min, y_min, x_max - x_min, y_max - y_min
    return 0, 0, width, height


class CropPlan(NamedTuple):
    """The crop (x, y, w, h) of the input canvas, the polygons' scale, and the (new_w, new_h) it is resized to at the
    top-left of the output canvas."""

    x: int
    y: int
    w: int
    h: int
    scale_x: float
    scale_y: float
    new_w: int
    new_h: int

    def pixel_matrix(self) -> np.ndarray:
        """3x3 map from input pixel centres to output pixel centres, as cv2.resize maps the crop: the crop's own
        size ratio new_w / w (not scale_x, of which new_w is a truncation) with half-pixel centres."""
        sx, sy = self.new_w / self.w, self.new_h / self.h
        return np.array(
            [[sx, 0.0, (0.5 - self.x) * sx - 0.5], [0.0, sy, (0.5 - self.y) * sy - 0.5], [0.0, 0.0, 1.0]]
        )


def plan_crop(
    shape: tuple[int, int],
    polys: np.ndarray,
    ignore_tags: np.ndarray,
    size: tuple[int, int],
    keep_ratio: bool,
    min_side_ratio: float,
    max_tries: int,
    rng: np.random.Generator,
) -> CropPlan:
    """The crop of a canvas of `shape` (h, w) holding `polys`, resized to `size` (w, h)."""
    care = [p for p, ignored in zip(polys, ignore_tags) if not ignored]
    x, y, w, h = crop_area(shape, care, min_side_ratio, max_tries, rng)
    out_w, out_h = size
    if keep_ratio:
        scale_x = scale_y = min(out_w / w, out_h / h)
        return CropPlan(x, y, w, h, scale_x, scale_y, int(w * scale_x), int(h * scale_y))
    return CropPlan(x, y, w, h, out_w / w, out_h / h, out_w, out_h)


def crop_labels(data: dict, polys: np.ndarray, plan: CropPlan) -> None:
    """Moves `polys` (on the cropped canvas) into the output and writes them to `data` with their texts and tags,
    dropping those whose bounding box misses the resized crop."""
    moved = (polys - np.array([plan.x, plan.y], np.float32)) * np.array([plan.scale_x, plan.scale_y], np.float32)
    keep = np.flatnonzero(~_boxes_outside_rect(moved, 0, 0, plan.new_w, plan.new_h))
    data["polys"] = moved[keep]
    data["texts"] = [data["texts"][i] for i in keep]
    data["ignore_tags"] = np.asarray(data["ignore_tags"], dtype=bool)[keep]


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

    def plan(
        self, shape: tuple[int, int], polys: np.ndarray, ignore_tags: np.ndarray, rng: np.random.Generator
    ) -> CropPlan:
        return plan_crop(
            shape, polys, ignore_tags, self.size, self.keep_ratio, self.min_crop_side_ratio, self.max_tries, rng
        )

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        image, polys = data["image"], np.asarray(data["polys"], dtype=np.float32)
        plan = self.plan(image.shape[:2], polys, data["ignore_tags"], resolve_rng(rng))
        out_w, out_h = self.size
        resized = cv2.resize(image[plan.y : plan.y + plan.h, plan.x : plan.x + plan.w], (plan.new_w, plan.new_h))
        if (plan.new_w, plan.new_h) == (out_w, out_h):
            canvas = resized
        else:
            canvas = np.zeros((out_h, out_w) + image.shape[2:], dtype=image.dtype)
            canvas[: plan.new_h, : plan.new_w] = resized
        data["image"] = canvas
        crop_labels(data, polys, plan)
        return data
