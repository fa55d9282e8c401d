from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrdet.data.transforms import IaaAugment

QUAD = np.array([[[12, 15], [34, 18], [32, 36], [10, 33]]], np.float32)


def sample():
    image = np.zeros((60, 80, 3), np.uint8)
    cv2.fillPoly(image, [QUAD[0].astype(np.int32)], (255, 255, 255))
    return {"image": image, "polys": QUAD.copy()}


@pytest.mark.parametrize("seed", range(6))
def test_points_move_with_the_pixels(seed):
    out = IaaAugment()(sample(), rng=np.random.default_rng(seed))
    image, polys = out["image"], out["polys"]
    height, width = image.shape[:2]
    assert polys.shape == (1, 4, 2) and polys.dtype == np.float32
    # One factor for both sides.
    assert abs(height / 60 - width / 80) < 0.02
    # The transformed quad's centroid and points pulled 25% toward it land on the bright region.
    centre = polys[0].mean(axis=0)
    for point in [centre, *(0.75 * polys[0] + 0.25 * centre)]:
        x, y = np.round(point).astype(int)
        assert image[y, x].min() > 128, (seed, point)
    # Pixels well outside the transformed quad stay dark (the drawn quad's 1 px rasterisation margin grows with the
    # scale factor, the bilinear resize adds a little more).
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(polys[0]).astype(np.int32)], 1)
    margin = 2 * int(np.ceil(2 * width / 80)) + 1
    far = cv2.dilate(mask, np.ones((margin, margin), np.uint8)) == 0
    assert image[far].max() < 30


def test_flip_only_mirrors_x():
    out = IaaAugment(flip_prob=1.0, rotate=(0, 0), scale=(1, 1))(sample(), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], sample()["image"][:, ::-1])
    # PaddleOCR's keypoint flip (albumentations): x -> W - 1 - x, the mirror of the pixel column.
    np.testing.assert_allclose(out["polys"][..., 0], 79 - QUAD[..., 0], atol=1e-4)
    np.testing.assert_allclose(out["polys"][..., 1], QUAD[..., 1], atol=1e-4)


def test_scale_only_resizes_both_sides_by_one_factor():
    out = IaaAugment(flip_prob=0.0, rotate=(0, 0), scale=(2, 2))(sample(), rng=np.random.default_rng(0))
    assert out["image"].shape == (120, 160, 3)
    np.testing.assert_allclose(out["polys"], QUAD * 2, atol=1e-4)


def test_rotation_keeps_the_canvas():
    out = IaaAugment(flip_prob=0.0, rotate=(10, 10), scale=(1, 1))(sample(), rng=np.random.default_rng(0))
    assert out["image"].shape == (60, 80, 3)
    # imgaug's positive angle turns content clockwise on screen (y down): a point right of the centre moves down.
    before, after = QUAD[0, 1], out["polys"][0, 1]
    centre = np.array([39.5, 29.5])
    assert np.linalg.norm(after - centre) == pytest.approx(np.linalg.norm(before - centre), rel=1e-5)
    angle = np.degrees(np.arctan2(*(after - centre)[::-1]) - np.arctan2(*(before - centre)[::-1]))
    assert angle == pytest.approx(10, abs=1e-3)


def test_flip_folded_into_the_rotation_equals_flip_then_rotate():
    image = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    data = {"image": image, "polys": QUAD.copy()}
    out = IaaAugment(flip_prob=1.0, rotate=(7, 7), scale=(1, 1))(data, rng=np.random.default_rng(0))
    matrix = cv2.getRotationMatrix2D((39.5, 29.5), -7, 1.0)
    separate = cv2.warpAffine(cv2.flip(image, 1), matrix, (80, 60), flags=cv2.INTER_LINEAR)
    difference = np.abs(out["image"].astype(int) - separate.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # fixed-point rounding only
