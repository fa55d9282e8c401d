from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.transforms import EastRandomCrop
from ocrdet.data.transforms.random_crop import crop_area


def sample(polys, ignore):
    image = np.random.default_rng(0).integers(1, 256, (80, 100, 3), dtype=np.uint8)  # h=80, w=100, no zeros
    return {
        "image": image,
        "polys": np.array(polys, np.float32),
        "texts": [f"w{i}" for i in range(len(polys))],
        "ignore_tags": np.array(ignore, bool),
    }


CARE = [[30, 30], [60, 30], [60, 45], [30, 45]]
IGNORED = [[70, 60], [90, 60], [90, 70], [70, 70]]


def test_crop_is_resized_into_the_top_left_and_polys_follow():
    crop = EastRandomCrop(size=(64, 64), max_tries=50, min_crop_side_ratio=0.1, keep_ratio=True)
    for seed in range(5):
        data = sample([CARE, IGNORED], [False, True])
        original = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in data.items()}
        # The transform's only randomness is crop_area's, so the same seed reproduces its choice.
        x, y, w, h = crop_area((80, 100), [np.array(CARE, np.float32)], 0.1, 50, np.random.default_rng(seed))
        out = crop(data, rng=np.random.default_rng(seed))
        scale = min(64 / w, 64 / h)
        new_w, new_h = int(w * scale), int(h * scale)
        assert out["image"].shape == (64, 64, 3)
        region = original["image"][y : y + h, x : x + w]
        np.testing.assert_array_equal(out["image"][:new_h, :new_w], cv2.resize(region, (new_w, new_h)))
        assert not out["image"][new_h:].any() and not out["image"][:, new_w:].any()
        # The cared-for word is never cut: the crop holds all of it.
        assert x <= 30 and y <= 30 and x + w >= 60 and y + h >= 45
        moved = (original["polys"] - np.array([x, y], np.float32)) * np.float32(scale)
        kept = [i for i, p in enumerate(moved) if p[:, 0].min() <= new_w and p[:, 1].min() <= new_h]
        np.testing.assert_allclose(out["polys"], moved[kept], rtol=1e-6)
        assert out["texts"] == [original["texts"][i] for i in kept]
        assert out["ignore_tags"].tolist() == original["ignore_tags"][kept].tolist()


def test_same_seed_same_crop():
    crop = EastRandomCrop(size=(64, 64))
    a = crop(sample([CARE, IGNORED], [False, True]), rng=np.random.default_rng(3))
    b = crop(sample([CARE, IGNORED], [False, True]), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["polys"], b["polys"])


def test_no_free_column_uses_the_whole_image():
    # A cared-for box spanning every column leaves no free x: the whole 100x80 image is scaled by 0.64 to 64x51.
    out = EastRandomCrop(size=(64, 64))(sample([[[0, 10], [100, 10], [100, 30], [0, 30]]], [False]))
    np.testing.assert_array_equal(out["image"][:51], cv2.resize(sample([], [])["image"], (64, 51)))
    assert not out["image"][51:].any()
    np.testing.assert_allclose(out["polys"][0], [[0, 6.4], [64, 6.4], [64, 19.2], [0, 19.2]], rtol=1e-6)


def test_polys_outside_the_crop_are_dropped_with_their_texts():
    # A third word in the bottom-right corner gives a free run after `near`: the run reaching the image's far edge is
    # never a crop edge (PaddleOCR's region split), so without it no crop could reach `near`.
    far = [[2, 2], [8, 2], [8, 8], [2, 8]]
    near = [[40, 40], [90, 40], [90, 70], [40, 70]]
    corner = [[92, 72], [97, 72], [97, 77], [92, 77]]
    care = [np.array(p, np.float32) for p in (far, near, corner)]
    kept_texts = []
    for seed in range(10):
        x, y, w, h = crop_area((80, 100), care, 0.1, 50, np.random.default_rng(seed))
        out = EastRandomCrop(size=(64, 64))(sample([far, near, corner], [False] * 3), rng=np.random.default_rng(seed))
        inside = [f"w{i}" for i, p in enumerate(care) if p[:, 0].max() >= x and p[:, 1].max() >= y
                  and p[:, 0].min() <= x + w and p[:, 1].min() <= y + h]
        assert out["texts"] == inside and len(out["polys"]) == len(out["ignore_tags"]) == len(inside)
        kept_texts.append(tuple(out["texts"]))
    assert len(set(kept_texts)) > 1  # some crops dropped a word


def test_the_free_run_at_the_far_edge_is_never_a_region():
    # Free columns 0-1, 8-39, 91-99 (rows alike): the regions are 0-1 and 8-39 only, so every crop edge lies in
    # 0..39 and the only word a crop can hold is `far`.
    far = np.array([[2, 2], [8, 2], [8, 8], [2, 8]], np.float32)
    near = np.array([[40, 40], [91, 40], [91, 70], [40, 70]], np.float32)
    for seed in range(20):
        x, y, w, h = crop_area((80, 100), [far, near], 0.1, 50, np.random.default_rng(seed))
        assert (x, y, w, h) == (0, 0, 100, 80) or (x + w <= 39 and y + h <= 39)


def test_one_break_draws_from_the_whole_axis():
    # One word leaves two free runs per axis; the split lists only the first, so both edges are drawn from all free
    # coordinates (0-29 and 60-99; rows 0-29 and 45-79). A crop is kept when the word's box is not wholly outside
    # it, touching included: with edges from the second run only, x = 60 or y = 45 still touches.
    word = np.array([[30, 30], [60, 30], [60, 45], [30, 45]], np.float32)
    rng = np.random.default_rng(0)
    crops = [crop_area((80, 100), [word], 0.1, 1, rng) for _ in range(400)]
    real = [c for c in crops if c != (0, 0, 100, 80)]
    assert real and all(x <= 60 and y <= 45 and x + w >= 30 and y + h >= 30 for x, y, w, h in real)
    assert any(x < 30 and x + w > 60 for x, y, w, h in real)  # edges from both runs: the word whole inside
    assert len(real) < len(crops)  # a single try often misses the word


def test_negative_bounds_mark_as_a_plain_slice_does():
    # x from -3 to 20: the slice [-3:20] on 100 columns is empty, so columns 0..19 stay free (clipping would mark
    # them); with them free a crop may start left of the word, which is never possible when they are marked.
    word = np.array([[-3, 30], [20, 30], [20, 45], [-3, 45]], np.float32)
    other = np.array([[60, 60], [70, 60], [70, 70], [60, 70]], np.float32)
    starts = {crop_area((80, 100), [word, other], 0.1, 50, np.random.default_rng(s))[0] for s in range(50)}
    assert min(starts) < 20
