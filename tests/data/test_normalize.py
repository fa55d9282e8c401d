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


@pytest.mark.parametrize("onednn", [False, True])
def test_batch_normalization_equals_the_per_sample_values(onednn: bool):
    """normalize_batch on the uint8 NCHW batch (the data module's `batch_normalize`) gives the per-sample op's
    float32 values bit for bit, for every one of the 256 values in every channel."""
    import paddle

    image = np.stack([np.arange(256, dtype=np.uint8).reshape(16, 16)] * 3, axis=-1)
    image[..., 1] = image[..., 1][::-1]  # a different value order per channel
    per_sample = ToCHW()(NormalizeImage()({"image": image.copy()}))["image"]
    compact = ToCHW()({"image": image.copy()})["image"]
    flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": onednn})
    try:
        batch = NormalizeImage().normalize_batch(paddle.to_tensor(np.stack([compact, compact])))
    finally:
        paddle.set_flags({"FLAGS_use_mkldnn": flag})
    assert batch.dtype == paddle.float32
    np.testing.assert_array_equal(batch.numpy(), np.stack([per_sample, per_sample]))


def test_batch_normalization_refuses_a_float_batch():
    import paddle

    with pytest.raises(TypeError, match="uint8"):
        NormalizeImage().normalize_batch(paddle.zeros([1, 3, 4, 4], "float32"))
