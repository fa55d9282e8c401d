"""ICDAR2015 IoU detection metric (spec 5.2): precision, recall and hmean, micro-averaged.

numpy + shapely only. The per-image evaluation is a pure function returning three counts, and the
metric keeps only their sums, so distributed ranks can all-gather ``state()`` and add it up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from shapely.geometry import Polygon


@dataclass(frozen=True)
class ImageCounts:
    """Counts of one image: cared-for GTs, cared-for detections and matched pairs."""

    gt_care: int
    det_care: int
    matched: int


def _valid_polygon(points: object) -> Optional[Polygon]:
    # Invalid or non-simple rings are dropped, as in the ICDAR/DB reference. Fewer than 3
    # points (or NaN) is treated the same way instead of raising inside shapely.
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return None
    poly = Polygon(pts)
    if not poly.is_valid or not poly.is_simple:
        return None
    return poly


def _keep_valid(polys: Sequence[object], flags: Sequence[bool]) -> Tuple[List[Polygon], List[bool]]:
    kept, kept_flags = [], []
    for points, flag in zip(polys, flags):
        poly = _valid_polygon(points)
        if poly is not None:
            kept.append(poly)
            kept_flags.append(bool(flag))
    return kept, kept_flags


def evaluate_image(
    gt_polys: Sequence[object],
    gt_ignore: Sequence[bool],
    det_polys: Sequence[object],
    iou_thresh: float = 0.5,
    area_precision_thresh: float = 0.5,
) -> ImageCounts:
    """Evaluate one image with the ICDAR2015 IoU protocol.

    Args:
        gt_polys: ground-truth polygons, each [Ki,2] in source-image pixels.
        gt_ignore: one flag per GT; True for don't-care (``###``) regions.
        det_polys: detected polygons, each [Kj,2].
        iou_thresh: a pair matches when IoU is strictly greater than this.
        area_precision_thresh: a detection is don't-care when its intersection with some ignore-GT
            covers strictly more than this fraction of its own area.

    Returns:
        ``ImageCounts(gt_care, det_care, matched)``.
    """
    if len(gt_polys) != len(gt_ignore):
        raise ValueError(f"{len(gt_polys)} GT polygons but {len(gt_ignore)} ignore flags")
    gts, gt_dont_care = _keep_valid(gt_polys, gt_ignore)
    dets, _ = _keep_valid(det_polys, [False] * len(det_polys))
    ignore_gts = [g for g, ignored in zip(gts, gt_dont_care) if ignored]

    det_dont_care = []
    for det in dets:
        area = det.area
        covered = any(
            area > 0 and det.intersection(g).area / area > area_precision_thresh for g in ignore_gts
        )
        det_dont_care.append(covered)

    # Greedy one-to-one matching, GT-major then detection order (the reference's loop order).
    gt_used = [False] * len(gts)
    det_used = [False] * len(dets)
    matched = 0
    for gi, gt in enumerate(gts):
        if gt_dont_care[gi]:
            continue
        for di, det in enumerate(dets):
            if gt_used[gi] or det_used[di] or det_dont_care[di]:
                continue
            inter = det.intersection(gt).area
            union = det.union(gt).area
            if union > 0 and inter / union > iou_thresh:
                gt_used[gi] = det_used[di] = True
                matched += 1
    return ImageCounts(
        gt_care=len(gts) - sum(gt_dont_care),
        det_care=len(dets) - sum(det_dont_care),
        matched=matched,
    )


class DetMetric:
    """Accumulates ``ImageCounts`` over images and reports micro-averaged P/R/H.

    Args:
        iou_thresh: IoU a match must exceed (0.5).
        area_precision_thresh: don't-care coverage a detection must exceed (0.5).
    """

    def __init__(self, iou_thresh: float = 0.5, area_precision_thresh: float = 0.5) -> None:
        self.iou_thresh = float(iou_thresh)
        self.area_precision_thresh = float(area_precision_thresh)
        self._counts = np.zeros(3, dtype=np.int64)  # gt_care, det_care, matched

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._counts = np.zeros(3, dtype=np.int64)

    def update(
        self,
        det_polys_per_image: List[Sequence[object]],
        gt_polys_per_image: List[Sequence[object]],
        gt_ignore_per_image: List[Sequence[bool]],
    ) -> None:
        """Add a batch of images; the three lists are aligned per image."""
        n = len(det_polys_per_image)
        if len(gt_polys_per_image) != n or len(gt_ignore_per_image) != n:
            raise ValueError(
                f"per-image lists differ in length: {n} detections, {len(gt_polys_per_image)} GT, "
                f"{len(gt_ignore_per_image)} ignore flags"
            )
        for dets, gts, ignore in zip(det_polys_per_image, gt_polys_per_image, gt_ignore_per_image):
            c = evaluate_image(gts, ignore, dets, self.iou_thresh, self.area_precision_thresh)
            self._counts += np.array([c.gt_care, c.det_care, c.matched], dtype=np.int64)

    def state(self) -> np.ndarray:
        """The summed counts [gt_care, det_care, matched] (int64), e.g. to all-gather across ranks."""
        return self._counts.copy()

    def merge_state(self, state: np.ndarray) -> None:
        """Add counts from other metrics: a [3] state or a stack [R,3] of them (summed over R)."""
        arr = np.asarray(state, dtype=np.int64)
        if arr.shape[-1:] != (3,) or arr.ndim > 2:
            raise ValueError(f"state must be [3] or [R,3], got shape {arr.shape}")
        self._counts += arr.reshape(-1, 3).sum(axis=0)

    def compute(self) -> Dict[str, float]:
        """``precision``, ``recall``, ``hmean`` from the summed counts (0 when undefined)."""
        gt_care, det_care, matched = (int(v) for v in self._counts)
        recall = matched / gt_care if gt_care > 0 else 0.0
        precision = matched / det_care if det_care > 0 else 0.0
        hmean = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {"precision": precision, "recall": recall, "hmean": hmean}
