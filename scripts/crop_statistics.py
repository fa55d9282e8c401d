#!/usr/bin/env python
"""Statistics of the training crops, made by PaddleOCR's own ops or by ocrdet's configured pipeline.

    /work/ppocr_venv/bin/python scripts/crop_statistics.py --impl paddleocr --draws 2000
    python scripts/crop_statistics.py --impl ocrdet --draws 2000 [--fused false]

Draw i takes ICDAR2015 training image i mod N (sorted by name), seeded with i, through the augmentation (flip,
rotation, scale), the random crop, the border map and the shrink-map target, and records whether the crop fell back to the whole
image, the crop's share of the augmented canvas, the share of positive pixels in the shrink map, and the image's mean
grey level and sharpness (mean |difference| of horizontally neighbouring grey levels) inside the pasted region. PaddleOCR's ops
(IaaAugment, EastRandomCropData, MakeBorderMap, MakeShrinkMap, as its student config sets them) are imported from its checkout and
run in its Python; ocrdet's are the `db_train` transforms of its config. The crop rectangle is read by wrapping each
implementation's `crop_area` function. These figures set the bounds of tests/data/test_crop_statistics.py.

`--save samples.npz` also keeps every sample as the trainer gets it (uint8 image, threshold map and mask, shrink map
and mask; the border map made before the shrink map, as in both pipelines) for `scripts/score_samples.py`, which
scores the samples of both implementations with one model: equal losses say the two pipelines make equally hard
training data. (~1 MB per sample at crop 320.)
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def read_gt(path: Path) -> tuple[list[list[list[float]]], list[str]]:
    polys, texts = [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        fields = line.strip().split(",")
        if len(fields) > 8:
            polys.append(np.array([float(v) for v in fields[:8]]).reshape(4, 2).tolist())
            texts.append(",".join(fields[8:]))
    return polys, texts


def images(root: Path) -> list[Path]:
    return sorted((root / "train" / "images").glob("*.jpg"))


Record = tuple[bool, float, float, float, float]


SAMPLE_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
# 0/1 maps are stored as uint8 (exact), the threshold map as float32
SAMPLE_DTYPES = {"image": np.uint8, "threshold_map": np.float32, "threshold_mask": np.uint8, "shrink_map": np.uint8,
                 "shrink_mask": np.uint8}


class SampleSink:
    """Collects the samples of a run for `--save` (or nothing, when no path is given)."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self.arrays: dict[str, list[np.ndarray]] = {key: [] for key in SAMPLE_KEYS}

    def add(self, data: dict) -> None:
        if self.path is not None:
            for key in SAMPLE_KEYS:
                self.arrays[key].append(np.asarray(data[key]).astype(SAMPLE_DTYPES[key]))

    def save(self, **meta: object) -> None:
        if self.path is not None:
            np.savez(self.path, meta=json.dumps(meta), **{k: np.stack(v) for k, v in self.arrays.items()})


def record(data: dict, rect: tuple[int, int, int, int, int, int], crop: int) -> Record:
    """(fallback, crop share, shrink positives, grey mean, sharpness) of one output sample."""
    x, y, w, h, width, height = rect
    scale = min(crop / w, crop / h)  # the pasted region: int(w * scale) x int(h * scale) at the top left
    grey = cv2.cvtColor(data["image"], cv2.COLOR_BGR2GRAY)[: int(h * scale), : int(w * scale)].astype(np.float32)
    sharpness = float(np.abs(np.diff(grey, axis=1)).mean())
    positive = float(data["shrink_map"].mean())
    return (w, h) == (width, height), w * h / (width * height), positive, float(grey.mean()), sharpness


def summary(records: list[Record]) -> dict:
    fallback = np.array([r[0] for r in records])
    area = np.array([r[1] for r in records])
    positive = np.array([r[2] for r in records])
    grey, sharpness = np.array([r[3] for r in records]), np.array([r[4] for r in records])
    crops = area[~fallback]
    return {
        "draws": len(records),
        "fallback_fraction": float(fallback.mean()),
        "area_mean_of_crops": float(crops.mean()),
        "area_sd_of_crops": float(crops.std(ddof=1)),
        "area_quartiles_of_crops": [float(q) for q in np.quantile(crops, [0.25, 0.5, 0.75])],
        "area_mean_all": float(area.mean()),
        "shrink_positive_mean": float(positive.mean()),
        "shrink_positive_sd": float(positive.std(ddof=1)),
        "grey_mean": float(grey.mean()),
        "sharpness_mean": float(sharpness.mean()),
        "sharpness_sd": float(sharpness.std(ddof=1)),
    }


def paddleocr_draws(checkout: Path, root: Path, draws: int, crop: int, sink: SampleSink) -> Iterator[Record]:
    sys.path.insert(0, str(checkout))
    from ppocr.data.imaug import random_crop_data
    from ppocr.data.imaug.iaa_augment import IaaAugment
    from ppocr.data.imaug.label_ops import DetLabelEncode
    from ppocr.data.imaug.make_border_map import MakeBorderMap
    from ppocr.data.imaug.make_shrink_map import MakeShrinkMap

    rects: list[tuple[int, int, int, int, int, int]] = []
    original: Callable = random_crop_data.crop_area

    def recording(im, *args, **kwargs):
        rect = original(im, *args, **kwargs)
        rects.append((*rect, im.shape[1], im.shape[0]))
        return rect

    random_crop_data.crop_area = recording
    augment = IaaAugment(
        augmenter_args=[
            {"type": "Fliplr", "args": {"p": 0.5}},
            {"type": "Affine", "args": {"rotate": [-10, 10]}},
            {"type": "Resize", "args": {"size": [0.5, 3]}},
        ]
    )
    crop_op = random_crop_data.EastRandomCropData(size=[crop, crop], max_tries=50, keep_ratio=True)
    border = MakeBorderMap(shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7)
    shrink = MakeShrinkMap(shrink_ratio=0.4, min_text_size=8)
    encode = DetLabelEncode()
    files = images(root)
    for i in range(draws):
        path = files[i % len(files)]
        polys, texts = read_gt(root / "train" / "gts" / f"gt_{path.stem}.txt")
        label = json.dumps([{"transcription": t, "points": p} for p, t in zip(polys, texts)])
        data = encode({"image": cv2.imread(str(path)), "label": label})
        random.seed(i)
        np.random.seed(i)
        data = shrink(border(crop_op(augment(data))))
        sink.add(data)
        yield record(data, rects[-1], crop)


def ocrdet_draws(root: Path, draws: int, crop: int, fused: str | None, sink: SampleSink) -> Iterator[Record]:
    sys.path.insert(0, str(REPO))
    from hydra.utils import instantiate

    from ocrdet.cli.config import compose_config
    from ocrdet.data.datasets import Icdar2015Dataset
    from ocrdet.data.transforms import DecodeImage, random_crop

    overrides = ["data=icdar2015", f"data.root={root}", f"data.crop_size={crop}"]
    if fused is not None:
        overrides.append(f"data.train_transforms.augment.fused={fused}")
    ops = instantiate(compose_config("train", overrides).data.train_transforms)
    chain = [ops[name] for name in ("augment", "border_map", "shrink_map") if ops.get(name) is not None]
    rects: list[tuple[int, int, int, int, int, int]] = []
    original = random_crop.crop_area

    def recording(shape, *args, **kwargs):
        rect = original(shape, *args, **kwargs)
        rects.append((*rect, shape[1], shape[0]))
        return rect

    random_crop.crop_area = recording
    dataset = Icdar2015Dataset(str(root), "train", [DecodeImage()], train=False)
    for i in range(draws):
        data = dataset[i % len(dataset)]
        rng = np.random.default_rng(i)
        for op in chain:
            data = op(data, rng=rng) if op is ops["augment"] else op(data)
        sink.add(data)
        yield record(data, rects[-1], crop)


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=["paddleocr", "ocrdet"], required=True)
    parser.add_argument("--paddleocr", type=Path, default=REPO.parent / "shared" / "reference" / "PaddleOCR")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data" / "icdar2015")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--fused", choices=["true", "false"], default=None, help="ocrdet: override augment.fused")
    parser.add_argument("--save", type=Path, default=None, help="write the samples to this .npz (score_samples.py)")
    args = parser.parse_args(argv)
    root = args.data_root.resolve()
    sink = SampleSink(args.save)
    if args.impl == "paddleocr":
        records = list(paddleocr_draws(args.paddleocr.resolve(), root, args.draws, args.crop, sink))
    else:
        records = list(ocrdet_draws(root, args.draws, args.crop, args.fused, sink))
    result = {"impl": args.impl, "fused": args.fused, "crop": args.crop, **summary(records)}
    sink.save(**result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
