"""Detection datasets: ICDAR2015 folders, PaddleOCR label files and synthetic text, behind one sampling rule.

Labels are parsed at construction, so a broken label file fails before training starts. A sample is dropped when its
image cannot be read, its label has no boxes, or a transform returns None; training then draws another index at
random, eval takes the next one (PaddleOCR's behaviour). Drops are logged with the reason and counted in `skipped`
(per process: each loader worker keeps its own count).

An op that declares it needs extra samples (`UsesExtraSamples`, e.g. CopyPaste) gets them in `data["ext_data"]`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import paddle

from ocrdet.data.labels import Annotation, LabelLine, parse_icdar2015_gt, read_paddleocr_label_file
from ocrdet.data.rng import resolve_rng
from ocrdet.data.synthetic import render_text_image
from ocrdet.data.transforms.extra import UsesExtraSamples

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# A run of drops this long means the data or the pipeline is broken, not unlucky.
MAX_CONSECUTIVE_SKIPS = 100


# A list of ops, or a mapping name -> op applied in insertion order (the Hydra config's form: ops addressable by name,
# None disables one).
Transforms = Union[Sequence[Callable], Mapping[str, Union[Callable, None]]]


def _pipeline(transforms: Transforms) -> list[Callable]:
    ops = transforms.values() if isinstance(transforms, Mapping) else transforms
    return [op for op in ops if op is not None]


def _extra_sample_spec(ops: list[Callable]) -> tuple[int, list[Callable]]:
    """(count, ops the extras go through): from the first op asking for extra samples, as PaddleOCR takes the first
    op with `ext_data_num`; the extras run through the ops before it (decode), PaddleOCR's ext_op_transform_idx."""
    for position, op in enumerate(ops):
        if isinstance(op, UsesExtraSamples) and op.ext_data_num > 0:
            return op.ext_data_num, ops[:position]
    return 0, []


def _natural_key(name: str) -> list:
    """img_2 before img_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _sample(image_path: Path, annotation: Annotation) -> dict:
    """The loaded sample: raw file bytes in `image` (DecodeImage decodes them) and copies of the labels."""
    return {
        "image_path": str(image_path),
        "image": image_path.read_bytes(),
        "polys": annotation.polys.copy(),
        "texts": list(annotation.texts),
        "ignore_tags": annotation.ignore_tags.copy(),
    }


class DetDataset(paddle.io.Dataset):
    """Base: subclasses set their records, then call this constructor, and implement `__len__` and `load`."""

    def __init__(self, transforms: Transforms, train: bool, source: str) -> None:
        super().__init__()
        self.transforms = _pipeline(transforms)
        self.ext_data_num, self.ext_transforms = _extra_sample_spec(self.transforms)
        self.train = train
        self.skipped = 0
        if len(self) == 0:
            raise ValueError(f"{type(self).__name__}: no samples in {source}")

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> dict:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        for _ in range(MAX_CONSECUTIVE_SKIPS):
            sample, reason = self._run(index)
            if sample is not None:
                return sample
            self.skipped += 1
            logger.warning("skipping sample %d (%s); %d skipped so far", index, reason, self.skipped)
            index = int(resolve_rng(None).integers(len(self))) if self.train else (index + 1) % len(self)
        raise RuntimeError(f"{type(self).__name__}: {MAX_CONSECUTIVE_SKIPS} samples in a row were dropped")

    def _run(self, index: int) -> tuple[dict | None, str]:
        try:
            data = self.load(index)
        except OSError as error:  # missing or unreadable file; anything else is a bug and propagates
            return None, f"cannot read: {error}"
        where = data["image_path"]
        if len(data["polys"]) == 0:
            return None, f"{where}: no boxes in the label"
        if self.ext_data_num:
            data["ext_data"] = self.extra_samples(self.ext_data_num)
        for transform in self.transforms:
            data = transform(data)
            if data is None:
                return None, f"{where}: dropped by {type(transform).__name__}"
        return data, ""

    def extra_samples(self, count: int, rng: np.random.Generator | None = None) -> list[dict]:
        """`count` samples drawn at random (with replacement) from this dataset and run through `ext_transforms`.
        Draws that cannot be read, have no boxes, are dropped by an op or whose polygons are not 4-point are skipped
        (PaddleOCR's get_ext_data, which however retries forever)."""
        rng = resolve_rng(rng)
        extras: list[dict] = []
        for _ in range(MAX_CONSECUTIVE_SKIPS + count):
            if len(extras) == count:
                break
            index = int(rng.integers(len(self)))
            try:
                data: dict | None = self.load(index)
            except OSError:
                continue
            if len(data["polys"]) == 0:
                continue
            for transform in self.ext_transforms:
                data = transform(data)
                if data is None:
                    break
            if data is not None and np.asarray(data["polys"]).shape[1:] == (4, 2):
                extras.append(data)
        if len(extras) < count:
            raise RuntimeError(
                f"{type(self).__name__}: no usable extra sample (readable, with 4-point polygons) in "
                f"{MAX_CONSECUTIVE_SKIPS + count} random draws"
            )
        return extras


class Icdar2015Dataset(DetDataset):
    """`<root>/<split>/images/*.jpg` with `<root>/<split>/gts/gt_<stem>.txt`, in natural file-name order."""

    def __init__(self, root: str, split: str, transforms: Transforms, train: bool = True) -> None:
        split_dir = _existing(_existing(root, "ICDAR2015 root") / split, "ICDAR2015 split folder")
        image_dir = _existing(split_dir / "images", "image folder")
        images = sorted(
            (p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name)
        )
        self.records = [
            (image, parse_icdar2015_gt(_existing(split_dir / "gts" / f"gt_{image.stem}.txt", "ground truth")))
            for image in images
        ]
        super().__init__(transforms, train, str(split_dir))

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> dict:
        image, annotation = self.records[index]
        return _sample(image, annotation)


class PaddleOCRLabelDataset(DetDataset):
    """PaddleOCR det label files (`path<TAB>json`), image paths relative to `data_dir`. When a line lists several
    paths, training picks one at random per load and eval takes the first."""

    def __init__(self, data_dir: str, label_files: list[str], transforms: Transforms, train: bool = True) -> None:
        self.data_dir = _existing(data_dir, "data_dir")
        self.records: list[LabelLine] = []
        for label_file in label_files:
            self.records += read_paddleocr_label_file(_existing(label_file, "label file"))
        super().__init__(transforms, train, ", ".join(label_files))

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> dict:
        record = self.records[index]
        paths = record.image_paths
        name = paths[int(resolve_rng(None).integers(len(paths)))] if self.train and len(paths) > 1 else paths[0]
        return _sample(self.data_dir / name, record.annotation)


class SyntheticTextDataset(DetDataset):
    """`num_samples` square images of side `image_size`; sample i is drawn from Generator([seed, i]), so it is the
    same in every worker, process and run (the transforms' own randomness is separate, see `ocrdet.data.rng`)."""

    def __init__(
        self,
        num_samples: int,
        image_size: int,
        seed: int,
        transforms: Transforms,
        train: bool = True,
        max_words: int = 6,
        ignore_prob: float = 0.15,
    ) -> None:
        self.num_samples = num_samples
        self.image_size = image_size
        self.seed = seed
        self.max_words = max_words
        self.ignore_prob = ignore_prob
        super().__init__(transforms, train, f"num_samples={num_samples}")

    def __len__(self) -> int:
        return self.num_samples

    def load(self, index: int) -> dict:
        drawn = render_text_image(
            np.random.default_rng([self.seed, index]), self.image_size, self.max_words, self.ignore_prob
        )
        return {
            "image_path": f"synthetic:{self.seed}:{index}",
            "image": drawn.image,
            "polys": drawn.polys,
            "texts": drawn.texts,
            "ignore_tags": drawn.ignore_tags,
        }
