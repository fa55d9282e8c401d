"""Detection datasets: ICDAR2015 folders, PaddleOCR label files and synthetic text, behind one sampling rule.

Bad data, by kind (labels are parsed at construction, so label errors stop the run before any work is done):

| kind                                       | what the user sees                        | what is kept              |
|--------------------------------------------|-------------------------------------------|---------------------------|
| root, split folder, data_dir or label file | FileNotFoundError naming the path         | nothing: fails at build   |
| missing; an image without its gt file      |                                           |                           |
| ICDAR gt file without an image (or with an | eval: FileNotFoundError listing every one | eval: nothing; train: the |
| unreadable type)                           | train: one warning with the count         | others                    |
| empty dataset (no images or label lines)   | ValueError "no samples in <source>"       | nothing: fails at build   |
| unreadable label line (no tab, bad JSON,   | ValueError naming `file:line` and the     | nothing: fails at build   |
| not UTF-8, too few fields); non-numeric or | fault                                     |                           |
| non-finite coordinate; odd coordinate      |                                           |                           |
| count; fewer than 3 points as written      |                                           |                           |
| degenerate polygon: < 3 distinct points,   | warning at build naming `file:line` and   | the image; the region is  |
| zero area, self-intersecting               | the reason                                | marked ignore, as `###`   |
| image whose label has no boxes             | one warning at build naming them          | the rest (PaddleOCR never |
|                                            |                                           | trains or scores them)    |
| image whose boxes are all `###`            | one info line at build naming them        | all: background samples   |
| points outside the image                   | warning naming image and `file:line`,     | partly: kept (targets     |
|                                            | once per region and process               | clip); wholly: ignore in  |
|                                            |                                           | train, GT as is in eval   |
| missing, unreadable or undecodable image;  | train: warning naming image, label file   | train: a random redraw    |
| a transform dropping the sample            | (line) and reason, counted in `skipped`;  | replaces it; eval: stops, |
|                                            | eval: BadSampleError with the same text   | never drops a GT box      |

Training samples carry `skipped` (draws dropped to produce this one) and `skip_reasons` (their messages): loader
workers are separate processes, so the count travels with the data (`collate_train` sums it per batch, the Trainer
per epoch and stops past `trainer.max_bad_fraction`). `MAX_CONSECUTIVE_SKIPS` drops in a row stop the run.

An op that declares it needs extra samples (`UsesExtraSamples`, e.g. CopyPaste) gets them in `data["ext_data"]`;
unusable extra draws are logged and redrawn but not counted (the sample itself was not lost).
"""
from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import paddle

from ocrdet.data.labels import Annotation, parse_icdar2015_gt, read_paddleocr_label_file
from ocrdet.data.rng import SampleKey, resolve_rng, sample_rng
from ocrdet.data.synthetic import render_text_image
from ocrdet.data.transforms.decode import IMAGE_SUFFIXES, DecodeImage
from ocrdet.data.transforms.extra import UsesExtraSamples

logger = logging.getLogger(__name__)

# A run of drops this long means the data or the pipeline is broken, not unlucky.
MAX_CONSECUTIVE_SKIPS = 100
# Construction-time summaries name this many files, then give the count.
NAMED_IN_SUMMARY = 10
# ICDAR2015's two folders; a validation split is held out of the first.
TRAIN_FOLDER, TEST_FOLDER = "train", "test"


# A list of ops, or a mapping name -> op applied in insertion order (the Hydra config's form: ops addressable by name,
# None disables one).
Transforms = Union[Sequence[Callable], Mapping[str, Union[Callable, None]]]


class BadSampleError(RuntimeError):
    """An evaluation sample that cannot be produced; the message names the image and its label file (and line)."""


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


def _decoded(data: dict) -> bool:
    image = data.get("image")
    return isinstance(image, np.ndarray) and image.ndim in (2, 3)


def _summary(records: list[str]) -> str:
    named = ", ".join(records[:NAMED_IN_SUMMARY])
    return named + (f" and {len(records) - NAMED_IN_SUMMARY} more" if len(records) > NAMED_IN_SUMMARY else "")


def _where(image_path: object, origin: str) -> str:
    """`image (label file:line)`, or the image alone when the labels have no file (synthetic)."""
    return f"{image_path} ({origin})" if origin else str(image_path)


def _drop_reason(op: Callable) -> str:
    # DecodeImage says None for bytes that are no image; name that, not the op.
    if isinstance(op, DecodeImage):
        return op.last_drop_reason or "undecodable image (not an image, or truncated)"
    return f"dropped by {type(op).__name__}"


@dataclass
class Record:
    """One image of a file dataset: candidate paths (training picks one per load, eval the first), its labels, and
    where the labels come from (`gt file` or `label file:line`) for messages."""

    image_paths: list[Path]
    annotation: Annotation
    origin: str


class DetDataset(paddle.io.Dataset):
    """Base: subclasses implement `__len__`, `load` and `origin`, set their state, then call this constructor."""

    accepts_sample_keys = True  # training samplers may pass a SampleKey for an index (see `ocrdet.data.rng`)

    def __init__(self, transforms: Transforms, train: bool, source: str) -> None:
        super().__init__()
        self.transforms = _pipeline(transforms)
        self.ext_data_num, self.ext_transforms = _extra_sample_spec(self.transforms)
        self.train = train
        self.skipped = 0  # this process's drops; a worker's reach the main process in each sample's `skipped`
        self._warned: set[str] = set()
        if len(self) == 0:
            raise ValueError(f"{type(self).__name__}: no samples in {source}")

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> dict:
        raise NotImplementedError

    def origin(self, index: int) -> str:
        """Where sample `index`'s labels come from (`file` or `file:line`), for messages; "" if not from a file."""
        raise NotImplementedError

    def __getitem__(self, key: int | SampleKey) -> dict:
        # A training sampler's SampleKey makes the sample's randomness a function of (seed, epoch, index) alone.
        if isinstance(key, tuple):
            with sample_rng(SampleKey(*key)):
                return self._get(int(key[0]))
        return self._get(int(key))

    def _get(self, index: int) -> dict:
        reasons: list[str] = []
        for _ in range(MAX_CONSECUTIVE_SKIPS):
            sample, reason = self._run(index)
            if sample is not None:
                if self.train:
                    sample["skipped"] = len(reasons)
                    sample["skip_reasons"] = reasons
                return sample
            if not self.train:
                raise BadSampleError(f"{reason}; evaluation does not skip test images: fix or remove it")
            self.skipped += 1
            reasons.append(reason)
            logger.warning("skipped training sample: %s (%d skipped in this process)", reason, self.skipped)
            index = int(resolve_rng(None).integers(len(self)))
        raise RuntimeError(
            f"{type(self).__name__}: {MAX_CONSECUTIVE_SKIPS} samples in a row were unusable, the last: {reasons[-1]}"
        )

    def _load(self, index: int) -> tuple[dict | None, str]:
        try:
            return self.load(index), ""
        except OSError as error:  # missing or unreadable file; anything else is a bug and propagates
            where = _where(error.filename or "?", self.origin(index))
            return None, f"{where}: cannot read image: {error.strerror or error}"

    def _run(self, index: int) -> tuple[dict | None, str]:
        data, reason = self._load(index)
        if data is None:
            return None, reason
        where = _where(data["image_path"], self.origin(index))
        if self.train and len(data["polys"]) == 0:
            return None, f"{where}: no boxes in the label"
        annotation = self.annotation(index)
        if self.ext_data_num:
            data["ext_data"] = self.extra_samples(self.ext_data_num)
        checked = False
        for transform in self.transforms:
            if not checked and _decoded(data):  # the label's own coordinates, before any op moves them
                self._check_bounds(data, annotation)
                checked = True
            data = transform(data)
            if data is None:
                return None, f"{where}: {_drop_reason(transform)}"
        if not checked and _decoded(data):
            self._check_bounds(data, annotation)
        return data, ""

    def annotation(self, index: int) -> Annotation | None:
        """The labels as parsed, when the dataset has them (to name a region's file and line)."""
        return None

    def _check_bounds(self, data: dict, annotation: Annotation | None) -> None:
        """Warn (once per region and process) about polygons reaching outside the image. Partly outside is kept: the
        targets clip it. Wholly outside cannot be text of this image: training masks it (ignore), eval keeps the GT
        box as given."""
        polys = np.asarray(data["polys"], dtype=np.float64)
        if len(polys) == 0:
            return
        height, width = data["image"].shape[:2]
        x, y = polys[..., 0], polys[..., 1]
        partly = ((x < 0) | (x > width) | (y < 0) | (y > height)).any(axis=1)
        wholly = (x.max(1) < 0) | (x.min(1) > width) | (y.max(1) < 0) | (y.min(1) > height)
        tags = np.array(data["ignore_tags"], dtype=bool)
        for i in np.flatnonzero(partly):
            region = annotation.region_origin(i) if annotation is not None else f"region {i}"
            if not wholly[i]:
                outcome = "extends outside the image: kept, target generation clips it"
            elif self.train:
                outcome = "lies entirely outside the image: marked ignore"
                tags[i] = True
            else:
                outcome = "lies entirely outside the image: kept as ground truth"
            self._warn_once(f"{_where(data['image_path'], region)}: polygon {outcome} ({width}x{height})")
        data["ignore_tags"] = tags

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning(message)

    def extra_samples(self, count: int, rng: np.random.Generator | None = None) -> list[dict]:
        """`count` samples drawn at random (with replacement) from this dataset and run through `ext_transforms`.
        Draws that cannot be read, have no boxes, are dropped by an op or whose polygons are not 4-point are logged
        and redrawn (PaddleOCR's get_ext_data, which however retries forever)."""
        rng = resolve_rng(rng)
        extras: list[dict] = []
        for _ in range(MAX_CONSECUTIVE_SKIPS + count):
            if len(extras) == count:
                break
            index = int(rng.integers(len(self)))
            data, reason = self._load(index)
            if data is not None and len(data["polys"]) == 0:
                data, reason = None, f"{_where(data['image_path'], self.origin(index))}: no boxes in the label"
            for transform in self.ext_transforms:
                if data is None:
                    break
                where = _where(data["image_path"], self.origin(index))
                data = transform(data)
                reason = "" if data is not None else f"{where}: {_drop_reason(transform)}"
            if data is None:
                logger.warning("extra sample redrawn: %s", reason)
            elif np.asarray(data["polys"]).shape[1:] == (4, 2):
                extras.append(data)
        if len(extras) < count:
            raise RuntimeError(
                f"{type(self).__name__}: no usable extra sample (readable, with 4-point polygons) in "
                f"{MAX_CONSECUTIVE_SKIPS + count} random draws"
            )
        return extras


class FileDetDataset(DetDataset):
    """A dataset of image files with labels parsed at construction. Images whose labels have no boxes are left out,
    with one warning: in training they could only ever be skipped, and in eval PaddleOCR never scores them either
    (it substitutes the next image); a zero-size polygon array would also break Paddle's multi-worker loader."""

    def __init__(self, records: list[Record], transforms: Transforms, train: bool, source: str) -> None:
        empty = [r for r in records if len(r.annotation.polys) == 0]
        if empty:
            logger.warning(
                "%d of %d images have no boxes in their labels and are left out: %s",
                len(empty), len(records), _summary([_where(r.image_paths[0], r.origin) for r in empty]),
            )
            records = [r for r in records if len(r.annotation.polys)]
        ignored_only = [r for r in records if len(r.annotation.polys) and r.annotation.ignore_tags.all()]
        if ignored_only:
            logger.info(
                "%d images have only ignored ('###' or degenerate) boxes; kept as background-only samples: %s",
                len(ignored_only), _summary([_where(r.image_paths[0], r.origin) for r in ignored_only]),
            )
        self.records = records
        super().__init__(transforms, train, source)

    def __len__(self) -> int:
        return len(self.records)

    def origin(self, index: int) -> str:
        return self.records[index].origin

    def annotation(self, index: int) -> Annotation:
        return self.records[index].annotation

    def load(self, index: int) -> dict:
        """The raw file bytes in `image` (DecodeImage decodes them) and copies of the labels."""
        record = self.records[index]
        paths = record.image_paths
        path = paths[int(resolve_rng(None).integers(len(paths)))] if self.train and len(paths) > 1 else paths[0]
        annotation = record.annotation
        return {
            "image_path": str(path),
            "image": path.read_bytes(),
            "polys": annotation.polys.copy(),
            "texts": list(annotation.texts),
            "ignore_tags": annotation.ignore_tags.copy(),
        }


def held_out_indices(count: int, size: float, seed: int) -> np.ndarray:
    """The sorted positions of a validation part of `count` items: `size` < 1 is a fraction of them (rounded),
    `size` >= 1 a number of items, 0 none. The draw depends on (count, size, seed) only, so every process and
    machine holds out the same items, and the training part is its exact complement."""
    if size < 0:
        raise ValueError(f"val_split must be >= 0 (a fraction < 1 or a count), got {size}")
    held = int(round(size * count)) if size < 1 else int(size)
    if size != 0 and not 0 < held < count:
        raise ValueError(f"val_split={size} holds out {held} of {count} images: leave at least one on each side")
    return np.sort(np.random.default_rng(seed).permutation(count)[:held])


class Icdar2015Dataset(FileDetDataset):
    """`<root>/<split>/images/*.jpg` with `<root>/<split>/gts/gt_<stem>.txt`, in natural file-name order.

    `val_split` holds out part of train/ for validation (`held_out_indices`: a fraction or a count, drawn with
    `val_split_seed`), so settings and checkpoints are chosen without looking at test/: `split="train"` is then
    train/ without those images and `split="val"` is them. ICDAR2015 has no validation set of its own, so with
    `val_split=0` `split="val"` means test/ (as PaddleOCR validates). Any other split is that folder, whole.
    """

    def __init__(
        self,
        root: str,
        split: str,
        transforms: Transforms,
        train: bool = True,
        val_split: float = 0,
        val_split_seed: int = 0,
    ) -> None:
        folder = {"val": TRAIN_FOLDER if val_split else TEST_FOLDER}.get(split, split)
        split_dir = _existing(_existing(root, "ICDAR2015 root") / folder, "ICDAR2015 split folder")
        image_dir = _existing(split_dir / "images", "image folder")
        images = sorted(
            (p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name)
        )
        every_stem = {image.stem for image in images}  # the held-out part's ground truth is no orphan
        holding = bool(val_split) and split in ("train", "val")
        if holding:
            held = held_out_indices(len(images), val_split, val_split_seed)
            keep = held if split == "val" else np.setdiff1d(np.arange(len(images)), held)
            images = [images[i] for i in keep]
        records = []
        for image in images:
            gt = _existing(split_dir / "gts" / f"gt_{image.stem}.txt", "ground truth")
            records.append(Record([image], parse_icdar2015_gt(gt), str(gt)))
        _check_orphan_gts(split_dir, every_stem, train)
        part = f" ({split} part of val_split={val_split}, seed {val_split_seed})" if holding else ""
        super().__init__(records, transforms, train, str(split_dir) + part)


def _check_orphan_gts(split_dir: Path, image_stems: set[str], train: bool) -> None:
    """Ground-truth files whose image is missing (or of a type we do not read): in evaluation their boxes would drop
    out of recall unseen, so every one is listed in an error; in training they are a logged, counted loss."""
    orphans = []
    for gt in sorted((split_dir / "gts").glob("gt_*.txt"), key=lambda p: _natural_key(p.name)):
        stem = gt.stem[len("gt_"):]
        if stem in image_stems:
            continue
        others = sorted(p.name for p in (split_dir / "images").glob(f"{glob.escape(stem)}.*"))
        unread = f" (found {', '.join(others)}: not a readable image type)" if others else ""
        orphans.append(f"{gt}: no image {stem}{{{','.join(IMAGE_SUFFIXES)}}} in {split_dir / 'images'}{unread}")
    if not orphans:
        return
    if not train:
        raise FileNotFoundError(
            f"{len(orphans)} ground-truth file(s) without an image; evaluation would leave their boxes out of "
            "recall:\n  " + "\n  ".join(orphans)
        )
    logger.warning("%d ground-truth file(s) without an image, not trained on: %s", len(orphans), _summary(orphans))


class PaddleOCRLabelDataset(FileDetDataset):
    """PaddleOCR det label files (`path<TAB>json`), image paths relative to `data_dir`. When a line lists several
    paths, training picks one at random per load and eval takes the first."""

    def __init__(self, data_dir: str, label_files: list[str], transforms: Transforms, train: bool = True) -> None:
        self.data_dir = _existing(data_dir, "data_dir")
        records = [
            Record([self._inside_data_dir(name, line.origin) for name in line.image_paths], line.annotation, line.origin)
            for label_file in label_files
            for line in read_paddleocr_label_file(_existing(label_file, "label file"))
        ]
        super().__init__(records, transforms, train, ", ".join(label_files) or "(no label files)")

    def _inside_data_dir(self, name: str, origin: str) -> Path:
        """`data_dir / name`, refused when it leads out of `data_dir` (`../../etc/passwd`, an absolute path
        elsewhere): a label file names images of its data set, never other files of the machine."""
        path = self.data_dir / name
        root = self.data_dir.resolve()
        if not path.resolve().is_relative_to(root):
            raise ValueError(f"{origin}: image path {name!r} leads outside data_dir {root}")
        return path


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

    def origin(self, index: int) -> str:
        return ""  # the image path `synthetic:<seed>:<index>` already says it all

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
