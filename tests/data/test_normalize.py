from __future__ import annotations

import numpy as np
import pytest

from ocrdet.data.transforms import NormalizeImage, ToCHW

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def formula(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD


def test_uint8_lookup_equals_the_formula_and_chw_is_its_transpose():
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    image[0, 0] = 0
    image[0, 1] = 255
    out = NormalizeImage()({"image": image})
    assert out["image"].shape == (37, 53, 3) and out["image"].dtype == np.float32
    np.testing.assert_array_equal(out["image"], formula(image))
    chw = ToCHW()(out)["image"]
    assert chw.shape == (3, 37, 53) and chw.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(chw, formula(image).transpose(2, 0, 1))


def test_float_input_uses_the_arithmetic():
    image = np.random.default_rng(1).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(NormalizeImage()({"image": image})["image"], formula(image))


def test_channel_count_must_match_mean():
    with pytest.raises(ValueError, match="4-channel"):
        NormalizeImage()({"image": np.zeros((4, 4, 4), np.uint8)})
