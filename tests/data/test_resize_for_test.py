from __future__ import annotations

import numpy as np
import pytest

from ocrdet.data.transforms import DetResizeForTest


def resize(height: int, width: int, **kwargs) -> dict:
    polys = np.array([[[1, 2], [3, 2], [3, 4]]], np.float32)
    return DetResizeForTest(**kwargs)({"image": np.zeros((height, width, 3), np.uint8), "polys": polys})


def check(out: dict, size: tuple[int, int], shape: list[float]) -> None:
    assert out["image"].shape == (*size, 3)
    assert out["shape"].dtype == np.float32
    np.testing.assert_allclose(out["shape"], shape, rtol=1e-6)


def test_default_min_736_on_icdar_size():
    # min side 720 < 736: ratio 736/720; 1280 * 1.0222 = 1308.4 -> nearest multiple of 32 is 1312.
    out = resize(720, 1280)
    check(out, (736, 1312), [720, 1280, 736 / 720, 1312 / 1280])
    np.testing.assert_array_equal(out["polys"], [[[1, 2], [3, 2], [3, 4]]])  # eval keeps source coordinates


def test_min_mode_large_image_only_rounds_to_32():
    check(resize(800, 1000), (800, 992), [800, 1000, 1.0, 992 / 1000])


def test_max_mode():
    # 1280 > 960: ratio 0.75 -> 540 x 960 -> 544 x 960.
    check(resize(720, 1280, limit_side_len=960, limit_type="max"), (544, 960), [720, 1280, 544 / 720, 0.75])
    # Small enough: ratio 1, then 300/32 = 9.375 -> 288 and 400/32 = 12.5 -> 384 (Python rounds half to even).
    check(resize(300, 400, limit_side_len=960, limit_type="max"), (288, 384), [300, 400, 288 / 300, 384 / 400])


def test_limit_type_resize_long():
    # long side to 640: ratio 0.5 -> 360 x 640 -> 352 x 640.
    check(resize(720, 1280, limit_side_len=640, limit_type="resize_long"), (352, 640), [720, 1280, 352 / 720, 0.5])


def test_resize_long_pads_to_multiples_of_128():
    # ratio 960/1280 = 0.75 -> 540 x 960 -> rounded up to 640 x 1024.
    check(resize(720, 1280, resize_long=960), (640, 1024), [720, 1280, 640 / 720, 1024 / 1280])


def test_image_shape_is_fixed():
    check(resize(720, 1280, image_shape=[736, 1280]), (736, 1280), [720, 1280, 736 / 720, 1.0])


def test_tiny_image_is_padded_to_32_first():
    # 10 x 20 (h + w < 64) is padded to 32 x 32, then min side 32 -> 736: ratio 23 on the padded image.
    check(resize(10, 20), (736, 736), [10, 20, 23.0, 23.0])


def test_unknown_limit_type_is_rejected():
    with pytest.raises(ValueError, match="limit_type"):
        DetResizeForTest(limit_type="mean")
