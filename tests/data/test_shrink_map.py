from __future__ import annotations

import numpy as np

from ocrdet.data.transforms import MakeShrinkMap


def run(polys, ignore, size=64):
    data = {
        "image": np.zeros((size, size, 3), np.uint8),
        "polys": np.array(polys, np.float32),
        "ignore_tags": np.array(ignore, bool),
    }
    return MakeShrinkMap(shrink_ratio=0.4, min_text_size=8)(data)


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_rectangle_is_shrunk_by_the_vatti_distance():
    out = run([rect(10, 20, 50, 40)], [False])
    # 40x20 box: D = A(1 - r^2)/L = 800 * 0.84 / 120 = 5.6, so the sides move to 15.6 / 44.4 and 25.6 / 34.4,
    # rounded by pyclipper to 16..44 and 26..34; fillPoly includes both ends.
    distance = 800 * (1 - 0.4**2) / 120
    assert abs(distance - 5.6) < 1e-9
    expected = np.zeros((64, 64), np.float32)
    expected[round(20 + distance) : round(40 - distance) + 1, round(10 + distance) : round(50 - distance) + 1] = 1
    np.testing.assert_array_equal(out["shrink_map"], expected)
    assert out["shrink_map"][26:35, 16:45].all() and out["shrink_map"].sum() == 9 * 29
    np.testing.assert_array_equal(out["shrink_mask"], np.ones((64, 64), np.float32))
    assert out["ignore_tags"].tolist() == [False]


def test_small_box_is_masked_and_becomes_ignored():
    out = run([rect(10, 20, 50, 40), rect(5, 50, 40, 56)], [False, False])  # second box is 6 px tall < 8
    expected_mask = np.ones((64, 64), np.float32)
    expected_mask[50:57, 5:41] = 0
    np.testing.assert_array_equal(out["shrink_mask"], expected_mask)
    assert out["shrink_map"][48:].sum() == 0
    assert out["ignore_tags"].tolist() == [False, True]


def test_ignored_box_zeroes_the_mask_and_draws_nothing():
    out = run([rect(10, 10, 40, 30)], [True])
    expected_mask = np.ones((64, 64), np.float32)
    expected_mask[10:31, 10:41] = 0
    np.testing.assert_array_equal(out["shrink_mask"], expected_mask)
    assert out["shrink_map"].sum() == 0


def test_polygons_are_clipped_to_the_image():
    out = run([rect(-20, 10, 30, 40)], [False])
    np.testing.assert_array_equal(out["polys"][0], rect(0, 10, 30, 40))
    # clipped 30x30 box: D = 900 * 0.84 / 120 = 6.3 -> 6.3..23.7 on x, 16.3..33.7 on y
    expected = np.zeros((64, 64), np.float32)
    expected[16:35, 6:25] = 1
    np.testing.assert_array_equal(out["shrink_map"], expected)
