"""MakeBorderMap: DB's threshold-map target (spec 4.3.6), vectorised over pixels and edges."""
from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.transforms.geometry import offset_distance, offset_polygon


def edge_distances(xs: np.ndarray, ys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance of every pixel (xs [h, w], ys [h, w]) to every edge (starts/ends [E, 2]) -> [E, h, w].

    The DB reference formula, reproduced exactly: with d1, d2 the distances to the edge's ends and
    c = (|e|^2 - d1^2 - d2^2) / (2 d1 d2), the perpendicular distance sqrt(d1^2 d2^2 (1 - c^2) / |e|^2), except where
    c < 0 (the pixel lies outside the circle on the edge as diameter), where min(d1, d2) is used. NaN in 1 - c^2
    becomes 0; other NaNs are left to propagate, as in the reference.
    """
    sx, sy = starts[:, 0, None, None], starts[:, 1, None, None]
    ex, ey = ends[:, 0, None, None], ends[:, 1, None, None]
    square_1 = np.square(xs - sx) + np.square(ys - sy)
    square_2 = np.square(xs - ex) + np.square(ys - ey)
    # float32 when the polygon is (as in the reference): it decides which on-edge pixels come out NaN.
    square_edge = np.square(sx - ex) + np.square(sy - ey)
    # The same operations in the same order as the formula, in place on three [E, h, w] buffers: ~2x faster.
    with np.errstate(divide="ignore", invalid="ignore"):
        product = square_1 * square_2
        cosine = np.subtract(square_edge, square_1)
        cosine -= square_2
        distance = np.sqrt(product)
        distance *= 2
        cosine /= distance
        np.square(cosine, out=distance)
        np.subtract(1, distance, out=distance)
        np.nan_to_num(distance, copy=False)
        distance *= product  # product * (1 - c^2): the same rounding as the formula's left-to-right product
        distance /= square_edge
        np.sqrt(distance, out=distance)
        near_end = np.fmin(square_1, square_2, out=product)
        np.sqrt(near_end, out=near_end)
    np.copyto(distance, near_end, where=cosine < 0)
    return distance


class MakeBorderMap:
    """`threshold_map` = thresh_min + (thresh_max - thresh_min) * (1 - distance/D) around each cared-for polygon edge,
    within the polygon dilated by D = A(1 - r^2)/L; `threshold_mask` = 1 inside those dilated polygons.

    Runs on the raw crop-space polygons (before MakeShrinkMap clips them), so parts outside the canvas still count.
    """

    def __init__(self, shrink_ratio: float = 0.4, thresh_min: float = 0.3, thresh_max: float = 0.7) -> None:
        self.shrink_ratio = shrink_ratio
        self.thresh_min = thresh_min
        self.thresh_max = thresh_max

    def __call__(self, data: dict) -> dict:
        height, width = data["image"].shape[:2]
        canvas = np.zeros((height, width), dtype=np.float32)
        mask = np.zeros((height, width), dtype=np.float32)
        for poly, ignored in zip(data["polys"], data["ignore_tags"]):
            if not ignored:
                self._draw(np.asarray(poly, dtype=np.float32), canvas, mask)
        data["threshold_map"] = canvas * (self.thresh_max - self.thresh_min) + self.thresh_min
        data["threshold_mask"] = mask
        return data

    def _draw(self, poly: np.ndarray, canvas: np.ndarray, mask: np.ndarray) -> None:
        distance = offset_distance(poly, self.shrink_ratio)
        if not distance > 0:
            return
        pieces = offset_polygon(poly, distance)
        if not pieces:
            return
        dilated = pieces[0]
        cv2.fillPoly(mask, [dilated.astype(np.int32)], 1.0)

        x_min, y_min = dilated.min(axis=0)
        x_max, y_max = dilated.max(axis=0)
        # Only the part of the dilated box inside the canvas is computed.
        x0, x1 = max(x_min, 0), min(x_max, canvas.shape[1] - 1)
        y0, y1 = max(y_min, 0), min(y_max, canvas.shape[0] - 1)
        if x0 > x1 or y0 > y1:
            return
        xs = np.arange(x0, x1 + 1, dtype=np.float64)[None, :]
        ys = np.arange(y0, y1 + 1, dtype=np.float64)[:, None]
        distances = edge_distances(xs, ys, poly, np.roll(poly, -1, axis=0))
        distances /= distance
        np.clip(distances, 0, 1, out=distances)
        # min, not nanmin: a NaN pixel leaves the canvas unchanged through fmax, as in the reference.
        nearest = distances.min(axis=0)
        region = canvas[y0 : y1 + 1, x0 : x1 + 1]
        np.fmax(np.subtract(1, nearest, out=nearest), region, out=region)
