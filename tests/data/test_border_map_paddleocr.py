"""MakeBorderMap equals PaddleOCR's own MakeBorderMap bit for bit, polygons inside and across the canvas edges
(GEOS area/length for D, float32 distance map and `1 - d`, the reference's box-local float32 coordinates)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ocrdet.data.transforms import MakeBorderMap
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def reference():
    path = shared_path("reference", "PaddleOCR", "ppocr", "data", "imaug", "make_border_map.py")
    spec = importlib.util.spec_from_file_location("paddleocr_make_border_map", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MakeBorderMap()


def rotated_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    boxes = []
    for _ in range(count):
        centre, (w, h), angle = rng.uniform(10, 90, 2), rng.uniform(8, 40, 2), rng.uniform(0, np.pi)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        boxes.append((np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2) @ rotation.T + centre)
    return np.array(boxes, dtype=np.float32)


@pytest.mark.parametrize("seed", range(20))
def test_border_map_equals_paddleocr_bit_for_bit(reference, seed):
    polys = rotated_boxes(np.random.default_rng(seed), 3)

    def data() -> dict:
        return {"image": np.zeros((100, 100, 3), np.uint8), "polys": polys.copy(), "ignore_tags": np.zeros(3, bool)}

    ours, theirs = MakeBorderMap()(data()), reference(data())
    np.testing.assert_array_equal(ours["threshold_map"], theirs["threshold_map"])
    np.testing.assert_array_equal(ours["threshold_mask"], theirs["threshold_mask"])
