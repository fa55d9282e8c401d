"""ICDAR2015 IoU metric on hand-computed rectangles."""
from __future__ import annotations

import numpy as np
import pytest

from ocrdet.metrics.det_metric import DetMetric, ImageCounts, evaluate_image


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle as a clockwise quad (TL, TR, BR, BL)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


SQUARE = rect(0, 0, 10, 10)  # area 100


def _metric(dets, gts, ignores) -> dict:
    metric = DetMetric()
    metric.update(dets, gts, ignores)
    return metric.compute()


def test_perfect_match():
    assert evaluate_image([SQUARE], [False], [SQUARE]) == ImageCounts(gt_care=1, det_care=1, matched=1)
    assert _metric([[SQUARE]], [[SQUARE]], [[False]]) == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}


@pytest.mark.parametrize(
    "width, matched",
    [
        (4.9, 0),  # IoU 49/100
        (5.0, 0),  # IoU exactly 0.5: the test is strict
        (5.1, 1),  # IoU 51/100
    ],
)
def test_iou_threshold_is_strict(width, matched):
    # A det inside the GT square: intersection = det area = 10·width, union = 100.
    det = rect(0, 0, width, 10)
    assert evaluate_image([SQUARE], [False], [det]).matched == matched


def test_iou_of_shifted_rectangles():
    # Shift by s: intersection 10·(10-s), union 10·(10+s): s=3 -> 7/13 = 0.54, s=4 -> 6/14 = 0.43.
    assert evaluate_image([SQUARE], [False], [rect(3, 0, 13, 10)]).matched == 1
    assert evaluate_image([SQUARE], [False], [rect(4, 0, 14, 10)]).matched == 0


def test_matching_is_one_to_one():
    counts = evaluate_image([SQUARE], [False], [SQUARE, SQUARE])
    assert counts == ImageCounts(gt_care=1, det_care=2, matched=1)
    out = _metric([[SQUARE, SQUARE]], [[SQUARE]], [[False]])
    assert out["precision"] == 0.5 and out["recall"] == 1.0
    assert out["hmean"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_matching_is_greedy_in_gt_then_detection_order():
    # All height 10, so IoU is the 1-D interval IoU in x.
    gt1, gt2 = rect(0, 0, 10, 10), rect(4, 0, 14, 10)
    det1, det2 = rect(2, 0, 12, 10), rect(0, 0, 10, 10)
    # IoU(gt1, det1) = 8/12, IoU(gt1, det2) = 1, IoU(gt2, det1) = 8/12, IoU(gt2, det2) = 6/14.
    # gt1 takes det1 (first above 0.5), leaving gt2 only det2 at 0.43: one match, not the optimal two.
    assert evaluate_image([gt1, gt2], [False, False], [det1, det2]).matched == 1


def test_detection_inside_dont_care_region_is_not_a_false_positive():
    ignored = rect(0, 0, 10, 10)
    care = rect(50, 0, 60, 10)
    inside = rect(1, 1, 9, 9)
    counts = evaluate_image([ignored, care], [True, False], [inside, care])
    assert counts == ImageCounts(gt_care=1, det_care=1, matched=1)
    # Exactly half of the det inside the ignore box (50/100) is not "more than 0.5": it counts.
    half = rect(5, 0, 15, 10)
    counts = evaluate_image([ignored, care], [True, False], [half, care])
    assert counts == ImageCounts(gt_care=1, det_care=2, matched=1)
    # A det identical to a ### box is don't-care too, and never matches it.
    assert evaluate_image([ignored], [True], [ignored]) == ImageCounts(0, 0, 0)


def test_dont_care_gt_is_excluded_from_recall():
    out = _metric([[SQUARE]], [[SQUARE, rect(50, 0, 60, 10)]], [[False, True]])
    assert out == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}


def test_empty_predictions():
    out = _metric([[]], [[SQUARE]], [[False]])
    assert out == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    assert DetMetric().compute() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}


def test_invalid_polygons_are_dropped_from_both_sides():
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)
    degenerate = np.array([[0, 0], [10, 0]], dtype=np.float64)
    counts = evaluate_image([bowtie, SQUARE], [False, False], [bowtie, degenerate, SQUARE])
    assert counts == ImageCounts(gt_care=1, det_care=1, matched=1)


def test_counts_are_micro_averaged_over_images():
    far = [rect(100 + 20 * i, 0, 110 + 20 * i, 10) for i in range(3)]
    dets = [[SQUARE], [rect(50, 50, 60, 60)]]  # image 2's only det misses everything
    gts = [[SQUARE], far]
    ignores = [[False], [False] * 3]
    out = _metric(dets, gts, ignores)
    # Σ matched 1, Σ gt_care 4, Σ det_care 2: R = 1/4, P = 1/2, H = 2·(1/8)/(3/4) = 1/3.
    # (Averaging the per-image hmeans 1 and 0 would give 0.5.)
    assert out["recall"] == pytest.approx(0.25)
    assert out["precision"] == pytest.approx(0.5)
    assert out["hmean"] == pytest.approx(1.0 / 3.0)


def test_state_merges_across_ranks_and_reset_clears():
    dets = [[SQUARE], [rect(50, 50, 60, 60)]]
    gts = [[SQUARE], [rect(100, 0, 110, 10)]]
    ignores = [[False], [False]]
    rank0, rank1, whole = DetMetric(), DetMetric(), DetMetric()
    rank0.update(dets[:1], gts[:1], ignores[:1])
    rank1.update(dets[1:], gts[1:], ignores[1:])
    whole.update(dets, gts, ignores)
    np.testing.assert_array_equal(rank0.state(), [1, 1, 1])

    merged = DetMetric()
    merged.merge_state(np.stack([rank0.state(), rank1.state()]))  # an all-gathered [R,3]
    np.testing.assert_array_equal(merged.state(), whole.state())
    assert merged.compute() == whole.compute() == {"precision": 0.5, "recall": 0.5, "hmean": 0.5}

    merged.reset()
    np.testing.assert_array_equal(merged.state(), [0, 0, 0])
    with pytest.raises(ValueError):
        merged.merge_state(np.zeros(4))
    with pytest.raises(ValueError):
        merged.update([[]], [], [])
