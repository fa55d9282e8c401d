"""MakeBorderMap: DB's threshold-map target (spec 4.3.6), vectorised over the pixels near each edge."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ocrdet.data.transforms.geometry import next_points, offset_distance, offset_polygon


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
        if not np.isfinite(distance).all():  # only on a vertex pixel: skip nan_to_num's six passes elsewhere
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
        # The map is drawn directly in threshold units, each polygon's box mapped by t(v) = v * (max - min) + min
        # (float32) before fmax: t and the float32 cast are non-decreasing and t(NaN) is NaN, so this equals the
        # reference's t applied to the whole [0, 1] canvas at the end, bit for bit, without two full-size passes.
        threshold_map = np.full((height, width), self._to_threshold(np.zeros((), np.float32)), dtype=np.float32)
        mask = np.zeros((height, width), dtype=np.float32)
        for poly, ignored in zip(data["polys"], data["ignore_tags"]):
            if not ignored:
                self._draw(np.asarray(poly, dtype=np.float32), threshold_map, mask)
        data["threshold_map"] = threshold_map
        data["threshold_mask"] = mask
        return data

    def _to_threshold(self, values: np.ndarray) -> np.ndarray:
        """t(v) in float32, in place."""
        values *= self.thresh_max - self.thresh_min
        values += self.thresh_min
        return values

    def _draw(self, poly: np.ndarray, threshold_map: np.ndarray, mask: np.ndarray) -> None:
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
        x0, x1 = max(x_min, 0), min(x_max, threshold_map.shape[1] - 1)
        y0, y1 = max(y_min, 0), min(y_max, threshold_map.shape[0] - 1)
        if x0 > x1 or y0 > y1:
            return
        # float32 as the reference's distance map: each edge's clipped float64 values are rounded to float32 before
        # the minimum (minimum and rounding commute) and `1 - d` is taken in float32, not rounded after.
        nearest = np.ones((y1 - y0 + 1, x1 - x0 + 1), dtype=np.float32)
        # A pixel farther than D from an edge gets a formula value >= D from it (min(d1, d2) or the line distance,
        # both >= the segment distance; the float32 |e|^2 errs by far less than the 1 px of slack), which clips to 1
        # and cannot lower the minimum. So each edge is evaluated only on its own box grown by D + 1 px: the same
        # map, at a fraction of the pixels. NaN pixels (on a vertex or the edge itself) lie inside that box too.
        reach = math.ceil(distance) + 1
        ends = next_points(poly)
        # The reference measures in the dilated box's own coordinates, the polygon shifted there and stored back in
        # float32: when the box starts left of or above the canvas the shift rounds, and on-edge pixels turn NaN or
        # not with it. The same shift here keeps the map bit for bit.
        origin = np.array([x_min, y_min])
        local = (poly - origin).astype(np.float32)
        local_ends = next_points(local)
        for i, ((sx, sy), (ex, ey)) in enumerate(zip(poly.tolist(), ends.tolist())):
            bx0, bx1 = max(x0, math.floor(min(sx, ex)) - reach), min(x1, math.ceil(max(sx, ex)) + reach)
            by0, by1 = max(y0, math.floor(min(sy, ey)) - reach), min(y1, math.ceil(max(sy, ey)) + reach)
            if bx0 > bx1 or by0 > by1:
                continue
            xs = np.arange(bx0 - x_min, bx1 - x_min + 1, dtype=np.float64)[None, :]
            ys = np.arange(by0 - y_min, by1 - y_min + 1, dtype=np.float64)[:, None]
            scaled = edge_distances(xs, ys, local[i : i + 1], local_ends[i : i + 1])[0]
            scaled /= distance
            np.clip(scaled, 0, 1, out=scaled)
            # minimum, not fmin: a NaN pixel stays NaN and then leaves the canvas unchanged through fmax, as in the
            # reference.
            box = nearest[by0 - y0 : by1 - y0 + 1, bx0 - x0 : bx1 - x0 + 1]
            np.minimum(box, scaled, out=box)
        region = threshold_map[y0 : y1 + 1, x0 : x1 + 1]
        np.fmax(self._to_threshold(np.subtract(np.float32(1), nearest, out=nearest)), region, out=region)
