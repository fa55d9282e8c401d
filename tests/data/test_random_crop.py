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
    far = [[2, 2], [8, 2], [8, 8], [2, 8]]
    near = [[40, 40], [90, 40], [90, 70], [40, 70]]
    care = [np.array(p, np.float32) for p in (far, near)]
    kept_texts = []
    for seed in range(10):
        x, y, w, h = crop_area((80, 100), care, 0.1, 50, np.random.default_rng(seed))
        out = EastRandomCrop(size=(64, 64))(sample([far, near], [False, False]), rng=np.random.default_rng(seed))
        inside = [f"w{i}" for i, p in enumerate(care) if p[:, 0].max() >= x and p[:, 1].max() >= y
                  and p[:, 0].min() <= x + w and p[:, 1].min() <= y + h]
        assert out["texts"] == inside and len(out["polys"]) == len(out["ignore_tags"]) == len(inside)
        kept_texts.append(tuple(out["texts"]))
    assert len(set(kept_texts)) > 1  # some crops dropped a word
