"""The default training pipeline's crops and targets, in distribution, against PaddleOCR's own ops.

Draw i takes ICDAR2015 training image i (sorted by name), seeded with i, through the configured `db_train` transforms
at crop 320 (augment + crop, then the shrink map) and records whether the crop fell back to the whole image, the
crop's share of the augmented canvas and the shrink map's share of positive pixels.

PaddleOCR's figures, measured with its own IaaAugment, EastRandomCropData and MakeShrinkMap (its checkout, its
Python: `scripts/crop_statistics.py --impl paddleocr --draws 400`, the same images i = 0..399, its own random draws):
  full-image fallbacks 0.190 of draws; crops (the rest) cover 0.178 of the canvas on average (sd 0.159; quartiles
  0.0684, 0.127, 0.227); all draws 0.334; shrink-map positive pixels 0.00682 of the canvas (sd 0.0098).
  (Over 1000 draws: 0.159 fallbacks, crops 0.188, all 0.317, positive 0.00752.)
ocrdet on the same 400 images: 0.175 fallbacks, crops 0.189, positive 0.00561 (1000 draws: 0.161, 0.191, 0.00689).
Before the crop rule was PaddleOCR's (the last text-free run kept as a region, negative bounds clipped): 0.055
fallbacks and crops of 0.248 on these 400, which the first two tests reject.

Each bound is PaddleOCR's figure +- 3.5 standard errors of the difference between two independent samples of these
sizes (the draws are independent even on the same images), from PaddleOCR's measured spread: a different rule moves
the figure by more, sampling noise stays inside.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hydra.utils import instantiate

from ocrdet.cli.config import compose_config
from ocrdet.data.datasets import Icdar2015Dataset
from ocrdet.data.transforms import DecodeImage, random_crop
from tests.conftest import shared_path

DRAWS = 400
PPOCR_DRAWS = 400
PPOCR_FALLBACK = 0.190
PPOCR_CROP_AREA_MEAN, PPOCR_CROP_AREA_SD = 0.178, 0.159
PPOCR_CROP_AREA_QUARTILES = (0.0684, 0.127, 0.227)
PPOCR_POSITIVE_MEAN, PPOCR_POSITIVE_SD = 0.00682, 0.0098
Z = 3.5


def two_sample_se(sd: float, n: int, n_ppocr: int) -> float:
    return sd * math.sqrt(1 / n + 1 / n_ppocr)


@pytest.fixture(scope="module")
def draws() -> dict[str, np.ndarray]:
    root = shared_path("data", "icdar2015")
    cfg = compose_config("train", ["data=icdar2015", f"data.root={root}", "data.crop_size=320"])
    ops = instantiate(cfg.data.train_transforms)
    chain = [ops["augment"]]
    rects = []
    original = random_crop.crop_area

    def recording(shape, *args, **kwargs):
        rect = original(shape, *args, **kwargs)
        rects.append((rect, shape))
        return rect

    dataset = Icdar2015Dataset(str(root), "train", [DecodeImage()], train=False)
    fallback, area, positive = [], [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(random_crop, "crop_area", recording)
        for i in range(DRAWS):
            data = dataset[i % len(dataset)]
            rng = np.random.default_rng(i)
            for op in chain:
                data = op(data, rng=rng)
            data = ops["shrink_map"](data)
            (_, _, w, h), (height, width) = rects[-1]
            fallback.append((w, h) == (width, height))
            area.append(w * h / (width * height))
            positive.append(float(data["shrink_map"].mean()))
    assert len(rects) == DRAWS  # one crop per draw: the crop entry passed the fused op's sample on
    return {"fallback": np.array(fallback), "area": np.array(area), "positive": np.array(positive)}


def test_full_image_fallbacks(draws):
    p = PPOCR_FALLBACK
    bound = Z * two_sample_se(math.sqrt(p * (1 - p)), DRAWS, PPOCR_DRAWS)  # 0.097
    assert abs(draws["fallback"].mean() - p) < bound


def test_cropped_area(draws):
    crops = draws["area"][~draws["fallback"]]
    n_ppocr = round(PPOCR_DRAWS * (1 - PPOCR_FALLBACK))
    bound = Z * two_sample_se(PPOCR_CROP_AREA_SD, len(crops), n_ppocr)  # ~0.044
    assert abs(crops.mean() - PPOCR_CROP_AREA_MEAN) < bound
    # The distribution, not only its mean: the share of crops below each of PaddleOCR's quartiles.
    for q, quartile in zip((0.25, 0.5, 0.75), PPOCR_CROP_AREA_QUARTILES):
        share = float((crops < quartile).mean())
        assert abs(share - q) < Z * two_sample_se(math.sqrt(q * (1 - q)), len(crops), n_ppocr), q


def test_shrink_map_positive_fraction(draws):
    bound = Z * two_sample_se(PPOCR_POSITIVE_SD, DRAWS, PPOCR_DRAWS)  # ~0.0024
    assert abs(draws["positive"].mean() - PPOCR_POSITIVE_MEAN) < bound
