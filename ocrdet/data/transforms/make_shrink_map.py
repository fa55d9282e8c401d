"""MakeShrinkMap: DB's probability-map target, the polygons shrunk by D = A(1 - r^2)/L (spec 4.3.7)."""
from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.transforms.geometry import offset_distance, offset_polygon, signed_area


class MakeShrinkMap:
    """`shrink_map` = 1 inside each shrunk cared-for polygon; `shrink_mask` = 0 inside ignored, tiny (bbox side <
    min_text_size) or unshrinkable polygons, 1 elsewhere. Polygons are first clipped to the image; the clipped
    polygons and the updated ignore tags are written back."""

    def __init__(self, shrink_ratio: float = 0.4, min_text_size: int = 8) -> None:
        self.shrink_ratio = shrink_ratio
        self.min_text_size = min_text_size
        # Ratios tried in turn until the offset gives a single piece; PaddleOCR's arange(r, 1, r) ([0.4, 0.8] for 0.4).
        self.ratios = np.arange(shrink_ratio, 1, shrink_ratio)

    def __call__(self, data: dict) -> dict:
        height, width = data["image"].shape[:2]
        polys = np.array(data["polys"], dtype=np.float32)
        tags = np.array(data["ignore_tags"], dtype=bool)
        if len(polys):
            polys[..., 0] = np.clip(polys[..., 0], 0, width - 1)
            polys[..., 1] = np.clip(polys[..., 1], 0, height - 1)
        shrink_map = np.zeros((height, width), dtype=np.float32)
        shrink_mask = np.ones((height, width), dtype=np.float32)
        for i, poly in enumerate(polys):
            area = signed_area(poly)
            if abs(area) < 1:
                tags[i] = True
            if area < 0:  # counter-clockwise on screen: reverse, as the reference does
                polys[i] = poly[::-1].copy()
            side = min(np.ptp(poly[:, 0]), np.ptp(poly[:, 1]))
            pieces = [] if tags[i] or side < self.min_text_size else self._shrink(poly)
            if not pieces:
                cv2.fillPoly(shrink_mask, [poly.astype(np.int32)], 0.0)
                tags[i] = True
                continue
            for piece in pieces:  # one call per piece: a single multi-contour fillPoly would not fill overlaps
                cv2.fillPoly(shrink_map, [piece.astype(np.int32)], 1.0)
        data["polys"] = polys
        data["ignore_tags"] = tags
        data["shrink_map"] = shrink_map
        data["shrink_mask"] = shrink_mask
        return data

    def _shrink(self, poly: np.ndarray) -> list[np.ndarray]:
        pieces: list[np.ndarray] = []
        for ratio in self.ratios:
            pieces = offset_polygon(poly, -offset_distance(poly, ratio))
            if len(pieces) == 1:
                break
        return pieces
