from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrdet.data.datasets import SyntheticTextDataset
from ocrdet.data.synthetic import render_text_image


def test_same_seed_and_index_give_identical_samples():
    a = SyntheticTextDataset(num_samples=3, image_size=96, seed=7, transforms=[])
    b = SyntheticTextDataset(num_samples=3, image_size=96, seed=7, transforms=[])
    first, again, other = a[1], b[1], a[2]
    np.testing.assert_array_equal(first["image"], again["image"])
    np.testing.assert_array_equal(first["polys"], again["polys"])
    assert first["texts"] == again["texts"]
    np.testing.assert_array_equal(first["ignore_tags"], again["ignore_tags"])
    assert not np.array_equal(first["image"], other["image"])
    assert not np.array_equal(first["image"], SyntheticTextDataset(3, 96, 8, [])[1]["image"])


@pytest.mark.parametrize("seed", range(4))
def test_quads_lie_inside_and_cover_the_text(seed):
    drawn = render_text_image(np.random.default_rng([seed, 0]), 96, max_words=6, ignore_prob=0.3)
    assert drawn.image.shape == (96, 96, 3) and drawn.image.dtype == np.uint8
    assert drawn.polys.dtype == np.float32 and drawn.polys.shape[1:] == (4, 2)
    assert len(drawn.polys) == len(drawn.texts) == len(drawn.ignore_tags) >= 1
    assert not drawn.ignore_tags.all()
    assert all((t == "###") == bool(tag) for t, tag in zip(drawn.texts, drawn.ignore_tags))
    assert drawn.polys.min() >= 0 and drawn.polys.max() <= 95
    covered = np.zeros((96, 96), np.uint8)
    for quad in drawn.polys:
        cv2.fillPoly(covered, [np.round(quad).astype(np.int32)], 1)
        # Each quad is a rectangle (rotated): equal opposite sides, right angles.
        sides = np.roll(quad, -1, axis=0) - quad
        assert np.dot(sides[0], sides[1]) == pytest.approx(0, abs=1e-2)
    assert drawn.text_mask.sum() > 0
    # Every glyph pixel lies in some quad, allowing one pixel for rounding the quads to the pixel grid.
    assert cv2.dilate(covered, np.ones((3, 3), np.uint8))[drawn.text_mask].all()
