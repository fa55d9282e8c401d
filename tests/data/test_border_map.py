from __future__ import annotations

import math

import numpy as np
import pytest

from ocrdet.data.transforms import MakeBorderMap
from ocrdet.data.transforms.make_border_map import edge_distances

SQUARE = [[20, 20], [40, 20], [40, 40], [20, 40]]
# 20x20 square: D = A(1 - r^2)/L = 400 * 0.84 / 80 = 4.2
D = 400 * (1 - 0.4**2) / 80


def run(polys, ignore):
    data = {
        "image": np.zeros((64, 64, 3), np.uint8),
        "polys": np.array(polys, np.float32),
        "ignore_tags": np.array(ignore, bool),
    }
    return MakeBorderMap(shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7)(data)


def value(distance: float) -> float:
    return 0.3 + 0.4 * (1 - min(distance / D, 1.0))


@pytest.fixture(scope="module")
def square():
    return run([SQUARE], [False])


def test_edges_are_07_and_far_pixels_03(square):
    tmap = square["threshold_map"]
    for edge in (tmap[20, 20:41], tmap[40, 20:41], tmap[20:41, 20], tmap[20:41, 40]):
        np.testing.assert_allclose(edge, 0.7, atol=1e-6)
    for y, x in [(0, 0), (63, 63), (30, 30), (5, 30), (30, 50)]:  # outside the band, including the square's centre
        assert tmap[y, x] == pytest.approx(0.3, abs=1e-6)
    assert tmap.min() == pytest.approx(0.3, abs=1e-6) and tmap.max() <= 0.7 + 1e-6


def test_values_from_the_distance_formula(square):
    tmap = square["threshold_map"]
    assert tmap[22, 30] == pytest.approx(value(2.0), abs=1e-6)  # 2 px inside the top edge
    assert tmap[30, 43] == pytest.approx(value(3.0), abs=1e-6)  # 3 px right of the right edge
    # Beyond the top-left corner c < 0 for both edges that meet there, so the distance is min(d1, d2) = sqrt(8).
    assert tmap[18, 18] == pytest.approx(value(math.sqrt(8)), abs=1e-6)


def test_mask_is_the_dilated_polygon(square):
    mask = square["threshold_mask"]
    assert set(np.unique(mask)) == {0.0, 1.0}
    ys, xs = np.nonzero(mask)
    # The offset polygon spans 20 - 4.2 .. 40 + 4.2, rounded to 16..44.
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (16, 44, 16, 44)
    yy, xx = np.mgrid[0:64, 0:64]
    outside = np.hypot(np.maximum(np.maximum(20 - xx, xx - 40), 0), np.maximum(np.maximum(20 - yy, yy - 40), 0))
    assert mask[outside <= D - 1].all()  # a pixel of slack for pyclipper's integer rounding
    assert not mask[outside >= D + 1].any()


def test_ignored_polygons_draw_nothing():
    out = run([SQUARE], [True])
    np.testing.assert_allclose(out["threshold_map"], 0.3, atol=1e-6)
    assert out["threshold_mask"].sum() == 0


def test_distance_uses_endpoint_distance_when_c_is_negative():
    start, end = np.array([[0.0, 0.0]]), np.array([[6.0, 0.0]])
    # (3, 2): d1^2 = d2^2 = 13, |e|^2 = 36, c = (36 - 26) / 26 > 0 -> perpendicular distance
    c = (36 - 26) / 26
    perpendicular = math.sqrt(13 * 13 * (1 - c**2) / 36)
    assert perpendicular == pytest.approx(2.0)
    # (5, 3): d1^2 = 34, d2^2 = 10, c = (36 - 44) / (2 sqrt(340)) < 0 -> min(d1, d2) = sqrt(10), not the true 3
    xs = np.array([[3.0, 5.0]])
    ys = np.array([[2.0, 3.0]])
    got = edge_distances(xs, ys, start, end)
    assert got.shape == (1, 1, 2)
    np.testing.assert_allclose(got[0, 0], [perpendicular, math.sqrt(10)])
