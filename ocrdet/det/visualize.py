"""Draw detection boxes on images: ground truth in green (don't-care regions in grey), predictions in red."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

# OpenCV colours are BGR.
GT_COLOR = (0, 200, 0)
IGNORE_COLOR = (160, 160, 160)
PRED_COLOR = (0, 0, 255)


def draw_polygons(
    image: np.ndarray, polygons: Sequence[np.ndarray] | np.ndarray, color: tuple[int, int, int], thickness: int = 2
) -> np.ndarray:
    """Closed outlines of `polygons` ([K,2] point arrays) drawn onto a copy of the HxWx3 BGR `image`."""
    canvas = np.ascontiguousarray(image).copy()
    outlines = [np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32) for p in polygons]
    if outlines:
        cv2.polylines(canvas, [o.reshape(-1, 1, 2) for o in outlines], isClosed=True, color=color, thickness=thickness)
    return canvas


def draw_detections(
    image: np.ndarray,
    predictions: Sequence[np.ndarray] | np.ndarray = (),
    ground_truth: Sequence[np.ndarray] | np.ndarray = (),
    ignore_tags: Sequence[bool] | np.ndarray | None = None,
    thickness: int = 2,
) -> np.ndarray:
    """Ground truth first (so predictions stay visible on top): cared-for regions green, `ignore_tags` ones grey;
    then predictions red."""
    tags = [False] * len(ground_truth) if ignore_tags is None else [bool(t) for t in ignore_tags]
    cared = [p for p, ignored in zip(ground_truth, tags) if not ignored]
    ignored = [p for p, ignored in zip(ground_truth, tags) if ignored]
    canvas = draw_polygons(image, ignored, IGNORE_COLOR, thickness)
    canvas = draw_polygons(canvas, cared, GT_COLOR, thickness)
    return draw_polygons(canvas, predictions, PRED_COLOR, thickness)


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write `image` (BGR) to `path` (format from the suffix), creating the folder; raise if OpenCV cannot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: OpenCV could not write the image")
    return path
