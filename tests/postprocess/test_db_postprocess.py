"""DBPostProcess on synthetic probability maps with hand-placed rectangles."""
from __future__ import annotations

import numpy as np
import pytest

from ocrdet.postprocess.db_postprocess import DBPostProcess, order_min_area_box

SAME_SIZE = np.array([[64, 64, 1.0, 1.0]])


def _map(*regions, size: int = 64) -> np.ndarray:
    """[1,1,size,size] map that is 0 except the given (rows, cols, value) regions."""
    prob = np.zeros((1, 1, size, size), dtype=np.float32)
    for rows, cols, value in regions:
        prob[0, 0, rows, cols] = value
    return prob


# 0.9 inside columns 10..29 and rows 20..29: a 20x10 pixel rectangle.
RECT = (slice(20, 30), slice(10, 30), 0.9)


def test_single_rectangle_gives_the_hand_unclipped_box():
    out = DBPostProcess()(_map(RECT), SAME_SIZE)
    assert len(out) == 1
    # The contour runs through pixel centres (10,20)-(29,29): a 19 x 9 rectangle, so sside 9 >= 3.
    # Unclip distance = area·ratio/perimeter = 171·2.0/56 = 6.107; the offset edges land at
    # x = 10-6.107 -> 4 and 29+6.107 -> 35, y = 20-6.107 -> 14 and 29+6.107 -> 35 (clipper rounds);
    # the round corners stay inside that box, so the second minAreaRect is axis-aligned.
    expected = [[4, 14], [35, 14], [35, 35], [4, 35]]  # TL, TR, BR, BL
    assert out[0]["points"].dtype == np.int32
    np.testing.assert_array_equal(out[0]["points"], [expected])
    np.testing.assert_allclose(out[0]["scores"], [0.9], atol=1e-6)


def test_points_are_scaled_to_the_source_size_and_clipped():
    # Source 128 high x 256 wide for a 64x64 map: x·4, y·2.
    shape = np.array([[128, 256, 0.5, 0.25]])
    out = DBPostProcess()(_map(RECT), shape)
    np.testing.assert_array_equal(out[0]["points"], [[[16, 28], [140, 28], [140, 70], [16, 70]]])

    # A region touching the right border: x = 63 + 6.107 -> 69 lies outside the map and is clipped
    # to the source width (64 here), never beyond it.
    edge = (slice(20, 30), slice(44, 64), 0.9)
    out = DBPostProcess()(_map(edge), SAME_SIZE)
    assert out[0]["points"][0][:, 0].max() == 64


def test_box_thresh_filters_a_low_score_region():
    low = (slice(40, 50), slice(10, 30), 0.5)  # above thresh 0.3, below box_thresh 0.7
    out = DBPostProcess()(_map(RECT, low), SAME_SIZE)
    assert len(out[0]["points"]) == 1
    assert out[0]["points"][0][:, 1].max() == 35  # the kept one is the upper (0.9) rectangle
    # Keep when box_thresh <= score (scores are compared with >=).
    out = DBPostProcess(box_thresh=0.5)(_map(RECT, low), SAME_SIZE)
    np.testing.assert_allclose(sorted(out[0]["scores"]), [0.5, 0.9], atol=1e-6)


def test_tiny_regions_are_filtered_by_min_size():
    # Two rows: the contour rectangle is 19 x 1, sside 1 < 3.
    thin = (slice(20, 22), slice(10, 30), 0.9)
    assert len(DBPostProcess()(_map(thin), SAME_SIZE)[0]["points"]) == 0
    # Four rows: sside 3 passes the first test. With unclip_ratio 0.1 the distance is
    # 57·0.1/44 = 0.13, the rounded offset keeps the 19 x 3 box and 3 < 5 drops it after unclip.
    four_rows = (slice(20, 24), slice(10, 30), 0.9)
    assert len(DBPostProcess(unclip_ratio=0.1)(_map(four_rows), SAME_SIZE)[0]["points"]) == 0
    assert len(DBPostProcess(unclip_ratio=2.0)(_map(four_rows), SAME_SIZE)[0]["points"]) == 1


def test_max_candidates_truncates_the_contours():
    regions = [(slice(5 + 20 * i, 15 + 20 * i), slice(10, 30), 0.9) for i in range(3)]
    assert len(DBPostProcess()(_map(*regions), SAME_SIZE)[0]["points"]) == 3
    assert len(DBPostProcess(max_candidates=2)(_map(*regions), SAME_SIZE)[0]["points"]) == 2
    empty = DBPostProcess(max_candidates=0)(_map(*regions), SAME_SIZE)[0]
    assert empty["points"].shape == (0, 4, 2) and empty["scores"].shape == (0,)


def test_dilation_merges_regions_split_by_one_pixel():
    # Columns 10..19 and 21..30, split by column 20.
    left = (slice(20, 30), slice(10, 20), 0.9)
    right = (slice(20, 30), slice(21, 31), 0.9)
    assert len(DBPostProcess()(_map(left, right), SAME_SIZE)[0]["points"]) == 2
    out = DBPostProcess(use_dilation=True)(_map(left, right), SAME_SIZE)[0]
    assert len(out["points"]) == 1
    # The 2x2 kernel grows each region by one pixel right and down: columns 10..31, rows 20..30,
    # 22 x 11 = 242 pixels of which 200 are 0.9.
    np.testing.assert_allclose(out["scores"], [0.9 * 200 / 242], atol=1e-6)


def test_poly_mode_returns_polygons_of_at_least_four_points():
    out = DBPostProcess(box_type="poly")(_map(RECT), SAME_SIZE)[0]
    assert isinstance(out["points"], list) and len(out["points"]) == 1
    poly = out["points"][0]
    assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 4
    # Same rectangle and distance as the quad case: round corners, same extremes.
    assert (poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max()) == (4, 35, 14, 35)
    np.testing.assert_allclose(out["scores"], [0.9], atol=1e-6)


def test_slow_score_follows_the_contour_fast_score_the_quad():
    # An L: a 10x20 vertical bar (cols 10..19, rows 20..39) and a bottom bar (cols 20..39, rows 30..39).
    vertical = (slice(20, 40), slice(10, 20), 0.9)
    bottom = (slice(30, 40), slice(20, 40), 0.9)
    prob = _map(vertical, bottom)
    # Fast: the min-area quad is the 30 x 20 bbox, 400 of its 600 pixels are 0.9 -> 0.6 < 0.7.
    assert len(DBPostProcess(score_mode="fast")(prob, SAME_SIZE)[0]["points"]) == 0
    out = DBPostProcess(score_mode="fast", box_thresh=0.5)(prob, SAME_SIZE)[0]
    np.testing.assert_allclose(out["scores"], [0.6], atol=1e-6)
    # Slow: only the 400 L pixels are averaged -> 0.9.
    out = DBPostProcess(score_mode="slow")(prob, SAME_SIZE)[0]
    np.testing.assert_allclose(out["scores"], [0.9], atol=1e-6)


def test_batch_of_three_dim_maps_and_empty_image():
    prob = np.concatenate([_map(RECT), np.zeros((1, 1, 64, 64), np.float32)])[:, 0]  # [2,64,64]
    out = DBPostProcess()(prob, np.repeat(SAME_SIZE, 2, axis=0))
    assert [len(o["points"]) for o in out] == [1, 0]


def test_box_order_does_not_depend_on_the_angle_convention():
    # A diamond: its min-area rectangle is rotated 45 degrees.
    diamond = np.array([[10, 0], [20, 10], [10, 20], [0, 10]], dtype=np.float32)
    box, sside = order_min_area_box(diamond)
    np.testing.assert_allclose(box, [[10, 0], [20, 10], [10, 20], [0, 10]], atol=1e-4)
    assert sside == pytest.approx(np.hypot(10, 10), rel=1e-5)


def test_constructor_rejects_unknown_modes():
    with pytest.raises(ValueError, match="score_mode"):
        DBPostProcess(score_mode="exact")
    with pytest.raises(ValueError, match="box_type"):
        DBPostProcess(box_type="rect")


def test_box_corners_are_box_points_own_values():
    """PaddleOCR truncates boxPoints' float32 corners as they come; any rounding of ours (an earlier snap to nearby
    integers) scores other pixels and moved boxes away from PaddleOCR's on 22 of 500 ICDAR2015 test images."""
    from ocrdet.postprocess.db_postprocess import cv2, order_min_area_box

    points = np.array([[191, 366], [192, 358], [244, 359], [243, 366], [217, 357]], dtype=np.float32)
    box, side = order_min_area_box(points)
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2))
    expected = cv2.boxPoints(rect)
    assert sorted(map(tuple, box.tolist())) == sorted(map(tuple, expected.tolist()))
    assert box.dtype == np.float32 and side == min(rect[1])
