"""DB post-processing: probability map -> text boxes in source-image coordinates (spec 5.1).

numpy + OpenCV + pyclipper only, so it runs in data-loader workers and exported-model demos
without Paddle.

Behaviour follows PaddleOCR's ``DBPostProcess`` with its later fixes:
- boxes whose unclip offset returns anything but exactly one path are skipped (R2.5 merged all
  returned paths into one point set instead);
- points are returned as int32 (R2.5: int16) and the box scores are returned too.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import pyclipper

_SCORE_MODES = ("fast", "slow")
_BOX_TYPES = ("quad", "poly")
# PaddleOCR's fixed minimum box side (in map pixels); the unclipped box must reach MIN_SIZE + 2.
MIN_SIZE = 3


def order_min_area_box(points: np.ndarray) -> Tuple[np.ndarray, float]:
    """Minimum-area rectangle of a point set, ordered TL, TR, BR, BL, and its shorter side.

    The order comes from our own sort rather than ``minAreaRect``'s angle, whose convention
    changed between OpenCV versions: sort by x (ties by y), split the two left points by y into
    TL/BL and the two right points into TR/BR.

    Args:
        points: [K,2] (or [K,1,2]) points, K >= 1.

    Returns:
        ([4,2] float32 box, shorter side of the rectangle).
    """
    rect = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 1, 2))
    # boxPoints' float32 corners as they come (PaddleOCR truncates them downstream): rounding them towards integers
    # moved 22 of 500 ICDAR2015 test images' boxes away from PaddleOCR's (measured with its code, OpenCV 4.11)
    corners = cv2.boxPoints(rect)
    corners = corners[np.lexsort((corners[:, 1], corners[:, 0]))]
    left, right = corners[:2], corners[2:]
    # Strict comparison as in PaddleOCR: on a y tie the second point becomes the top one.
    tl, bl = (left[0], left[1]) if left[1, 1] > left[0, 1] else (left[1], left[0])
    tr, br = (right[0], right[1]) if right[1, 1] > right[0, 1] else (right[1], right[0])
    return np.stack([tl, tr, br, bl]).astype(np.float32), float(min(rect[1]))


def polygon_mean_score(prob: np.ndarray, polygon: np.ndarray) -> float:
    """Mean of ``prob`` over the pixels of ``polygon`` filled inside its clipped integer bbox.

    The fast score passes the (float) box corners, the slow score the raw contour. Corners are
    truncated toward zero after shifting to the bbox origin, as PaddleOCR's ``astype`` does.
    """
    h, w = prob.shape[:2]
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    xmin = int(np.clip(np.floor(poly[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(poly[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(poly[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(poly[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = (poly - np.array([xmin, ymin], dtype=np.float64)).astype(np.int32)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2), 1)
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def _area_and_perimeter(poly: np.ndarray) -> Tuple[float, float]:
    # Shoelace area and closed-ring length: the same numbers shapely's Polygon gives for a simple ring.
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    perimeter = float(np.linalg.norm(poly - np.roll(poly, -1, axis=0), axis=1).sum())
    return area, perimeter


def unclip(polygon: np.ndarray, unclip_ratio: float) -> Optional[np.ndarray]:
    """Expand a polygon by ``area·unclip_ratio/perimeter`` with a round-join pyclipper offset.

    Returns the [M,2] int64 expanded ring, or ``None`` when the offset does not give exactly one
    path (later PaddleOCR skips such boxes; R2.5 merged the paths) or the polygon is degenerate.
    """
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    area, perimeter = _area_and_perimeter(poly)
    if perimeter <= 0:
        return None
    distance = area * unclip_ratio / perimeter
    offset = pyclipper.PyclipperOffset()
    # pyclipper truncates float coordinates toward zero; do it explicitly so the result does not
    # depend on how a given pyclipper build converts floats.
    offset.AddPath(np.trunc(poly).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if len(paths) != 1 or len(paths[0]) == 0:
        return None
    return np.asarray(paths[0], dtype=np.int64).reshape(-1, 2)


def scale_to_source(points: np.ndarray, map_shape: Tuple[int, int], src_w: int, src_h: int) -> np.ndarray:
    """Map [K,2] map-pixel points to source pixels: ``clip(round(x / W_map · src_w), 0, src_w)``.

    The arithmetic keeps the points' dtype (float32 for quads from ``boxPoints``, float64 for
    integer polygons) as PaddleOCR does, so ``np.round``'s half-to-even ties fall the same way.
    """
    map_h, map_w = map_shape
    pts = np.asarray(points)
    if not np.issubdtype(pts.dtype, np.floating):
        pts = pts.astype(np.float64)
    x = np.clip(np.round(pts[:, 0] / map_w * src_w), 0, src_w)
    y = np.clip(np.round(pts[:, 1] / map_h * src_h), 0, src_h)
    return np.stack([x, y], axis=1).astype(np.int32)


def find_contours(bitmap: np.ndarray) -> List[np.ndarray]:
    """External and internal contours of a 0/1 bitmap (RETR_LIST, CHAIN_APPROX_SIMPLE)."""
    found = cv2.findContours((bitmap * 255).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    # OpenCV 3 returns (image, contours, hierarchy); OpenCV 4/5 return (contours, hierarchy).
    contours = found[1] if len(found) == 3 else found[0]
    return list(contours)


class DBPostProcess:
    """Turn DB probability maps into text boxes (quads or polygons) with scores.

    Args:
        thresh: probability threshold of the binary text mask.
        box_thresh: minimum mean probability of a kept box.
        max_candidates: only the first ``max_candidates`` contours are examined.
        unclip_ratio: expansion ratio of the shrunk text region (PP-OCRv3 eval uses 1.5).
        use_dilation: dilate the binary mask with a 2x2 kernel before finding contours.
        score_mode: "fast" scores the min-area quad, "slow" the raw contour.
        box_type: "quad" returns [K,4,2] boxes, "poly" returns a list of [Ki,2] polygons.
    """

    def __init__(
        self,
        thresh: float = 0.3,
        box_thresh: float = 0.7,
        max_candidates: int = 1000,
        unclip_ratio: float = 2.0,
        use_dilation: bool = False,
        score_mode: str = "fast",
        box_type: str = "quad",
    ) -> None:
        if score_mode not in _SCORE_MODES:
            raise ValueError(f"score_mode must be one of {_SCORE_MODES}, got {score_mode!r}")
        if box_type not in _BOX_TYPES:
            raise ValueError(f"box_type must be one of {_BOX_TYPES}, got {box_type!r}")
        if max_candidates < 0:
            raise ValueError(f"max_candidates must be >= 0, got {max_candidates}")
        # the maps are probabilities: a threshold outside [0, 1] keeps nothing (or everything) and scores 0 silently
        for name, value in (("thresh", thresh), ("box_thresh", box_thresh)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"postprocess.{name}={value}: a probability threshold must be in [0, 1]")
        if not float(unclip_ratio) > 0:
            raise ValueError(f"postprocess.unclip_ratio={unclip_ratio}: must be > 0")
        self.thresh = float(thresh)
        self.box_thresh = float(box_thresh)
        self.max_candidates = int(max_candidates)
        self.unclip_ratio = float(unclip_ratio)
        self.use_dilation = bool(use_dilation)
        self.score_mode = score_mode
        self.box_type = box_type
        self._dilation_kernel = np.ones((2, 2), dtype=np.uint8) if use_dilation else None

    def __call__(self, pred: np.ndarray, shape_list: np.ndarray) -> List[Dict[str, object]]:
        """Detect boxes in every image of a batch.

        Args:
            pred: [N,1,H,W] or [N,H,W] probability maps (channel 0 is used).
            shape_list: [N,4] rows (src_h, src_w, ratio_h, ratio_w); only src_h/src_w are used.

        Returns:
            Per image ``{"points": ..., "scores": float64 array [K]}``; points are an int32 array
            [K,4,2] for quads or a list of int32 [Ki,2] arrays for polygons, in source pixels.
        """
        pred = np.asarray(pred)
        if pred.ndim == 4:
            pred = pred[:, 0]
        if pred.ndim != 3:
            raise ValueError(f"pred must be [N,1,H,W] or [N,H,W], got shape {pred.shape}")
        shape_list = np.asarray(shape_list).reshape(-1, 4)
        if len(shape_list) != len(pred):
            raise ValueError(f"shape_list has {len(shape_list)} rows for {len(pred)} maps")

        results = []
        for prob, (src_h, src_w, _, _) in zip(pred, shape_list):
            bitmap = (prob > self.thresh).astype(np.uint8)
            if self._dilation_kernel is not None:
                bitmap = cv2.dilate(bitmap, self._dilation_kernel)
            results.append(self._detect(prob, bitmap, int(src_w), int(src_h)))
        return results

    def _candidate(self, prob: np.ndarray, contour: np.ndarray) -> Optional[Tuple[np.ndarray, float]]:
        """The outline to unclip and its score, or None when the contour is rejected up front."""
        if self.box_type == "quad":
            quad, sside = order_min_area_box(contour)
            if sside < MIN_SIZE:
                return None
            return quad, polygon_mean_score(prob, quad if self.score_mode == "fast" else contour)
        epsilon = 0.002 * cv2.arcLength(contour, True)
        approx = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2)
        if len(approx) < 4:
            return None
        # Polygons are always scored on their own outline (PaddleOCR ignores score_mode here).
        return approx, polygon_mean_score(prob, approx)

    def _detect(self, prob: np.ndarray, bitmap: np.ndarray, src_w: int, src_h: int) -> Dict[str, object]:
        kept, scores = [], []
        for contour in find_contours(bitmap)[: self.max_candidates]:
            candidate = self._candidate(prob, contour)
            if candidate is None or candidate[1] < self.box_thresh:
                continue
            outline, score = candidate
            expanded = unclip(outline, self.unclip_ratio)
            if expanded is None:
                continue
            box, sside = order_min_area_box(expanded)
            if sside < MIN_SIZE + 2:
                continue
            shape = box if self.box_type == "quad" else expanded
            kept.append(scale_to_source(shape, bitmap.shape, src_w, src_h))
            scores.append(score)
        score_array = np.asarray(scores, dtype=np.float64)
        if self.box_type == "poly":
            return {"points": kept, "scores": score_array}
        points = np.stack(kept) if kept else np.zeros((0, 4, 2), dtype=np.int32)
        return {"points": points, "scores": score_array}
