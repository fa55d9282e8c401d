from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from ocrdet.data.datamodule import collate_eval, collate_train
from ocrdet.data.datasets import BadSampleError, Icdar2015Dataset, PaddleOCRLabelDataset, SyntheticTextDataset
from ocrdet.data.transforms import (
    DecodeImage,
    DetResizeForTest,
    EastRandomCrop,
    IaaAugment,
    KeepKeys,
    MakeBorderMap,
    MakeShrinkMap,
    NormalizeImage,
    ToCHW,
)
from tests.conftest import shared_path

TRAIN_KEYS = ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]
EVAL_KEYS = ["image", "shape", "polys", "ignore_tags"]


def train_transforms(size: int) -> list:
    return [
        DecodeImage(),
        IaaAugment(),
        EastRandomCrop(size=(size, size)),
        MakeBorderMap(),
        MakeShrinkMap(),
        NormalizeImage(),
        ToCHW(),
        KeepKeys(TRAIN_KEYS),
    ]


def eval_transforms() -> list:
    return [DecodeImage(), DetResizeForTest(), NormalizeImage(), ToCHW(), KeepKeys(EVAL_KEYS)]


def test_train_pipeline_on_synthetic_samples():
    dataset = SyntheticTextDataset(num_samples=2, image_size=96, seed=0, transforms=train_transforms(64))
    np.random.seed(0)
    samples = [dataset[0], dataset[1]]
    for sample in samples:
        # The dataset adds its skip accounting after the transforms (KeepKeys included).
        assert list(sample) == TRAIN_KEYS + ["skipped", "skip_reasons"] and sample["skipped"] == 0
        assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == np.float32
        for key in TRAIN_KEYS[1:]:
            assert sample[key].shape == (64, 64) and sample[key].dtype == np.float32
        assert sample["threshold_map"].min() >= 0.3 - 1e-6 and sample["threshold_map"].max() <= 0.7 + 1e-6
        for key in ("threshold_mask", "shrink_map", "shrink_mask"):
            assert set(np.unique(sample[key])) <= {0.0, 1.0}
    batch = collate_train(samples)
    assert batch["image"].shape == (2, 3, 64, 64) and batch["shrink_mask"].shape == (2, 64, 64)
    assert batch["skipped"].dtype == np.int64 and batch["skipped"] == 0
    # the image and the threshold map stacked as they are, the 0/1 maps as uint8 with the same values
    for key in TRAIN_KEYS:
        dtype = np.uint8 if key in ("threshold_mask", "shrink_map", "shrink_mask") else np.float32
        assert batch[key].dtype == dtype
        np.testing.assert_array_equal(batch[key], np.stack([s[key] for s in samples]).astype(dtype))
    ragged = [samples[0], {**samples[1], "shrink_map": samples[1]["shrink_map"][:32]}]
    with pytest.raises(ValueError, match=r"same shape: \(32, 64\) vs \(64, 64\)"):
        collate_train(ragged)
    # The transforms draw from NumPy's global state, so reseeding replays them exactly.
    np.random.seed(0)
    np.testing.assert_array_equal(dataset[0]["threshold_map"], samples[0]["threshold_map"])


class DropFirst:
    """Drops the sample whose image_path is `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, data: dict) -> dict | None:
        return None if data["image_path"] == self.path else data


def test_dropped_training_samples_are_resampled_counted_and_logged(caplog):
    caplog.set_level(logging.WARNING, logger="ocrdet.data.datasets")
    train = SyntheticTextDataset(3, 64, 0, [DropFirst("synthetic:0:0")], train=True)
    np.random.seed(1)
    assert train[0]["image_path"] != "synthetic:0:0"
    # A random redraw may hit index 0 again: every drop is counted and logged.
    assert train.skipped == caplog.text.count("synthetic:0:0: dropped by DropFirst") >= 1
    evaluation = SyntheticTextDataset(3, 64, 0, [DropFirst("synthetic:0:0")], train=False)
    with pytest.raises(BadSampleError, match="synthetic:0:0: dropped by DropFirst"):  # eval never substitutes
        evaluation[0]


def test_icdar2015_test_split_eval_sample():
    root = shared_path("data", "icdar2015")
    dataset = Icdar2015Dataset(str(root), "test", eval_transforms(), train=False)
    assert len(dataset) == 500
    sample = dataset[0]
    assert list(sample) == EVAL_KEYS
    # img_1 is 1280x720: min side 720 -> 736, ratio 736/720; width 1280 * 736/720 = 1308.4 -> 1312.
    assert sample["image"].shape == (3, 736, 1312)
    np.testing.assert_allclose(sample["shape"], [720, 1280, 736 / 720, 1312 / 1280], rtol=1e-6)
    gt = (root / "test" / "gts" / "gt_img_1.txt").read_text(encoding="utf-8-sig").splitlines()
    first = [float(v) for v in gt[0].split(",")[:8]]
    np.testing.assert_array_equal(sample["polys"][0].ravel(), first)  # source coordinates
    assert sample["ignore_tags"].tolist() == [line.split(",", 8)[8] == "###" for line in gt if line.strip()]
    batch = collate_eval([sample])
    assert batch["image"].shape == (1, 3, 736, 1312) and isinstance(batch["polys"], list)


def test_paddleocr_label_dataset_reads_images_and_eval_stops_on_missing_ones(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 50, 3), 200, np.uint8))
    label = tmp_path / "label.txt"
    label.write_text(
        'a.png\t[{"transcription": "hi", "points": [[5,5],[30,5],[30,20],[5,20]]}]\n'
        '["missing.png"]\t[{"transcription": "x", "points": [[5,5],[30,5],[30,20]]}]\n',
        encoding="utf-8",
    )
    dataset = PaddleOCRLabelDataset(str(tmp_path), [str(label)], [DecodeImage()], train=False)
    sample = dataset[0]
    assert sample["image"].shape == (40, 50, 3) and sample["texts"] == ["hi"]
    with pytest.raises(BadSampleError, match=r"missing\.png \(.*label\.txt:2\): cannot read image"):
        dataset[1]  # eval: an error naming the file and line, not the next image (tests/data/test_bad_data.py)


def test_missing_root_and_empty_dataset_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Icdar2015Dataset(str(tmp_path / "nowhere"), "train", [])
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="no samples"):
        Icdar2015Dataset(str(tmp_path), "train", [])
    (tmp_path / "train" / "images" / "img_1.jpg").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="gt_img_1.txt"):
        Icdar2015Dataset(str(tmp_path), "train", [])


@pytest.mark.parametrize("payload", [b"", b"not an image"], ids=["empty", "garbage"])
def test_undecodable_bytes_are_dropped(payload):
    assert DecodeImage()({"image_path": "x.jpg", "image": payload}) is None


def test_transforms_may_be_a_mapping_with_disabled_entries():
    # The Hydra config names each op (so it can be overridden) and disables one by setting it to null.
    ops = {"decode": DecodeImage(), "augment": None, "resize": DetResizeForTest(image_shape=[32, 64])}
    dataset = SyntheticTextDataset(1, 64, 0, ops)
    assert [type(t).__name__ for t in dataset.transforms] == ["DecodeImage", "DetResizeForTest"]
    assert dataset[0]["image"].shape == (32, 64, 3)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_to_chw_is_the_transpose(channels, dtype):
    """OpenCV's plane split (uint8/float32) or numpy's transpose copy: exactly the CHW transpose, contiguous."""
    image = (np.random.default_rng(0).random((7, 5, channels)) * 255).astype(dtype)
    chw = ToCHW()({"image": image})["image"]
    assert chw.dtype == dtype and chw.flags.c_contiguous
    np.testing.assert_array_equal(chw, image.transpose(2, 0, 1))
    # a non-contiguous HWC view (a crop) too
    view = np.repeat(image, 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(ToCHW()({"image": view})["image"], image.transpose(2, 0, 1))
