"""The data of a run, built from the `data:` config (its keys are a DataModule's constructor arguments): the train and
val datasets with their pipelines, the loaders that batch them (samplers, worker seeding, collation) and the
main-process half of the compact train batches (float32 targets, the batch normalisation).

Train batches cross the loader workers' shared memory compact: the image uint8 and the 0/1 targets uint8 (a quarter
of the bytes); `TrainBatchToFloat` turns them into float32 in the main process with exactly the values of an
all-float32 pipeline. The image normalisation of the train pipeline is therefore `batch_normalize`, a setting of the
data module, not an op of `train_transforms`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
import paddle

from ocrdet.data.array_pool import ArrayPool, as_tensor, host_view
from ocrdet.data.datasets import (
    DetDataset,
    Icdar2015Dataset,
    PaddleOCRLabelDataset,
    SyntheticTextDataset,
    Transforms,
)
from ocrdet.engine.memory import reuse_freed_memory
from ocrdet.data.rng import SampleKey
from ocrdet.data.transforms.normalize import NormalizeImage
from ocrdet.data.transforms.resize_for_test import STRIDE
from ocrdet.engine.distributed import ShardBatchSampler
from ocrdet.engine.loaders import close_iterator

TRAIN_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
# Targets holding only 0 and 1: collated as uint8, turned back into float32 in the main process (`TrainBatchToFloat`).
BINARY_KEYS = ("threshold_mask", "shrink_map", "shrink_mask")


# ---------------------------------------------------------------------------------------------------- collation
def collate_train(samples: list[dict]) -> dict[str, np.ndarray]:
    """Stack the five train keys (every sample has the crop's fixed size), plus `skipped`: int64 0-D, the number of
    draws the dataset dropped to produce this batch (bad images, see `ocrdet.data.datasets`). It is summed here
    because collation runs in the loader worker, whose own counters the main process never sees; the DataLoader
    turns it into a 0-D int64 tensor and the Trainer adds `batch["skipped"]` up per epoch. The skip reasons stay in
    the workers' log: the batch carries numbers only (strings would pass Paddle's loader as lists, but device
    placement and AMP code can then treat every value as a tensor)."""
    batch = {key: _stack([s[key] for s in samples], np.uint8 if key in BINARY_KEYS else None) for key in TRAIN_KEYS}
    batch["skipped"] = np.asarray(sum(int(s.get("skipped", 0)) for s in samples), dtype=np.int64)
    return batch


def _stack(arrays: list[np.ndarray], dtype: Optional[type] = None) -> np.ndarray:
    """np.stack, cast to `dtype` as each array is copied in: the 0/1 float32 maps go into a uint8 batch directly,
    without a float32 batch (4x the bytes) made first and then cast (~4 ms less per sample at 960)."""
    shape = arrays[0].shape
    out = np.empty((len(arrays),) + shape, dtype=dtype or arrays[0].dtype)
    for i, array in enumerate(arrays):
        if array.shape != shape:
            raise ValueError(f"all input arrays must have the same shape: {array.shape} vs {shape}")
        out[i] = array
    return out


def collate_eval(samples: list[dict]) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Stack `image` (equal sizes only, hence eval batch size 1 for mixed sizes) and `shape`; `polys` and
    `ignore_tags` differ in length per image and stay lists."""
    return {
        "image": np.stack([s["image"] for s in samples]),
        "shape": np.stack([s["shape"] for s in samples]),
        "polys": [s["polys"] for s in samples],
        "ignore_tags": [s["ignore_tags"] for s in samples],
    }


class TrainBatchToFloat:
    """Main-process side of `collate_train`: the binary targets back to float32 and, with `normalize`, the uint8 image
    batch normalized (`NormalizeImage.normalize_batch`). Values equal the all-float32 pipeline's."""

    def __init__(self, normalize: Optional[NormalizeImage] = None) -> None:
        self.normalize = normalize
        self.pool = ArrayPool()  # the float32 batch arrays, reused once the step has dropped the batch

    def __call__(self, batch: dict) -> dict:
        for key in BINARY_KEYS:
            batch[key] = _as_float32(batch[key], self.pool)
        if self.normalize is not None:
            batch["image"] = self.normalize.normalize_batch(batch["image"], self.pool)
        return batch


def _as_float32(tensor: paddle.Tensor, pool: ArrayPool) -> paddle.Tensor:
    """On CPU numpy's cast into a pooled array the tensor then shares (DLPack, no copy, no page faults once the
    array is reused); elsewhere Paddle's cast."""
    if tensor.place.is_cpu_place():
        values = host_view(tensor)
        out = pool.empty(values.shape, np.float32)
        np.copyto(out, values)
        return as_tensor(out)
    return tensor.astype("float32")


# ------------------------------------------------------------------------------------ samplers and worker seeding
def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the process that forked it dies, even by SIGKILL (no orphans reading data)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def setup_worker_process() -> None:
    """Settings for a process that runs the data pipeline (each loader worker): reuse freed memory, so that the
    pipeline's multi-MB arrays cost no page faults (`ocrdet.engine.memory`; no value changes); stay out of the run's
    process group, so that a SIGTERM to it (`kill -TERM -- -<pgid>`) reaches the main process alone, which saves and
    then ends them; die with the main process.

    OpenCV's thread count is left alone: cv2.setNumThreads in a forked worker can wait forever on the parent's
    thread pool (seen in the test suite)."""
    reuse_freed_memory()
    # A process group of its own: a signal to the run's group (pre-emption, Ctrl-C) reaches the main process only,
    # which saves at the next step boundary, instead of killing the workers under it (an unsaved crash). Deferring
    # SIGTERM in the worker instead would also delay the shutdowns Paddle and multiprocessing do with it.
    if os.getpgid(0) != os.getpid():  # a group leader already (e.g. a session leader, where setpgid is EPERM)
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


class WorkerSeeder:
    """worker_init_fn: seeds numpy/random in each worker from (seed, epoch, rank, worker id), then
    `setup_worker_process`.

    Workers are forked at the start of every epoch, so the `epoch` attribute set by the Trainer reaches them.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.epoch = 0

    def __call__(self, worker_id: int) -> None:
        sequence = np.random.SeedSequence([self.seed, self.epoch, paddle.distributed.get_rank(), worker_id])
        state = sequence.generate_state(2)
        np.random.seed(int(state[0]))
        random.seed(int(state[1]))
        setup_worker_process()


class ResumableBatchSampler(paddle.io.DistributedBatchSampler):
    """This rank's batches of an epoch-seeded shuffle, as `SampleKey`s (index, seed, epoch) that seed each sample's
    augmentation; `skip_batches` drops the first batches of the next epoch without loading them (mid-epoch resume)."""

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool, drop_last: bool, seed: int = 1024) -> None:
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
        self.skip_batches = 0
        self.seed = seed
        self.keyed = bool(getattr(dataset, "accepts_sample_keys", False))  # other datasets get plain indices

    def __iter__(self) -> Iterator[list[SampleKey] | list[int]]:
        epoch = self.epoch  # paddle's shuffle increments it when iteration starts
        for i, batch in enumerate(super().__iter__()):
            if i >= self.skip_batches:
                yield [SampleKey(int(index), self.seed, epoch) for index in batch] if self.keyed else batch


def build_dataloader(
    dataset: Any,
    batch_size: int,
    collate_fn: Callable,
    shuffle: bool,
    num_workers: int = 0,
    drop_last: bool = False,
    seed: int = 1024,
    use_shared_memory: bool = True,
    evaluation: bool = False,
) -> paddle.io.DataLoader:
    """Training: each rank takes its share of an epoch-seeded shuffle. Evaluation: each rank scores a disjoint
    shard, every sample exactly once."""
    if evaluation:
        sampler = ShardBatchSampler(len(dataset), batch_size)
    else:
        sampler = ResumableBatchSampler(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    return paddle.io.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        use_shared_memory=use_shared_memory,
        worker_init_fn=WorkerSeeder(seed) if num_workers > 0 else None,
    )


class _TrainBatches:
    """TrainLoader's iterator: float batches from the loader's; `close()` ends the loader's worker processes (the
    Trainer closes each epoch's iterator, which usually stops before asking for the loader's end)."""

    def __init__(self, batches: Iterator[dict], to_float: TrainBatchToFloat) -> None:
        self.batches = batches
        self.to_float = to_float

    def __iter__(self) -> "_TrainBatches":
        return self

    def __next__(self) -> dict:
        return self.to_float(next(self.batches))

    def close(self) -> None:
        close_iterator(self.batches)


class TrainLoader:
    """The train DataLoader with `TrainBatchToFloat` applied to each batch in the main process. `batch_sampler` and
    `worker_init_fn` are the loader's own, named here because the Trainer sets their epoch and skipped batches."""

    def __init__(self, loader: paddle.io.DataLoader, to_float: TrainBatchToFloat) -> None:
        self.loader = loader
        self.to_float = to_float
        self.dataset = loader.dataset
        self.batch_sampler = loader.batch_sampler
        self.worker_init_fn = loader.worker_init_fn

    def __iter__(self) -> "_TrainBatches":
        return _TrainBatches(iter(self.loader), self.to_float)

    def __len__(self) -> int:
        return len(self.loader)


# ---------------------------------------------------------------------------------------------------- the module
def check_crop_size(crop: object) -> None:
    """The network downsamples by 32: other crop sizes give feature maps the FPN cannot add together."""
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < STRIDE or crop % STRIDE):
        raise ValueError(f"data.crop_size={crop!r}: must be a multiple of {STRIDE} (the network's stride), e.g. 640")


@dataclass
class DataModule:
    """A data set's train and val splits and how they are loaded. Subclasses name the data set's own settings and
    build its datasets (`_dataset`); `train`/`val` hold each split's own dataset arguments (None: no such split).

    Args:
        train_transforms / val_transforms: name -> op (None disables one), applied in order (`conf/transforms/`).
        batch_size / num_workers: training batches per rank and their loader processes.
        eval_batch_size / eval_num_workers: the same for validation (images keep their own size: batch 1).
        crop_size: the side of the square training crops; the train pipeline's crop reads it (`${data.crop_size}`).
        batch_normalize: the train images' normalisation, applied to the collated uint8 batch in the main process
            (the same float32 values as the per-sample op); None hands the pipeline's image on unchanged.
        seed: the loaders' shuffle and worker streams (with the epoch, rank and worker id).
    """

    train_transforms: Transforms
    val_transforms: Transforms
    train: Optional[Mapping[str, Any]] = None
    val: Optional[Mapping[str, Any]] = None
    batch_size: int = 8
    num_workers: int = 0
    eval_batch_size: int = 1
    eval_num_workers: int = 0
    crop_size: Optional[int] = None
    batch_normalize: Optional[NormalizeImage] = None
    seed: int = 1024

    def __post_init__(self) -> None:
        check_crop_size(self.crop_size)

    def _dataset(self, split: Mapping[str, Any], train: bool, transforms: Transforms) -> DetDataset:
        raise NotImplementedError

    def train_dataset(self) -> DetDataset:
        if self.train is None:
            raise ValueError("the data config has no `train` split")
        return self._dataset(self.train, True, self.train_transforms)

    def val_dataset(self) -> DetDataset | None:
        """The validation split (None when the config has none), with `val_transforms`."""
        return None if self.val is None else self._dataset(self.val, False, self.val_transforms)

    def train_dataloader(self) -> TrainLoader:
        """Workers collate compact batches (uint8 image and binary targets); the main process makes them float32."""
        loader = build_dataloader(
            self.train_dataset(),
            batch_size=self.batch_size,
            collate_fn=collate_train,
            shuffle=True,
            num_workers=self.num_workers,
            seed=self.seed,
        )
        return TrainLoader(loader, TrainBatchToFloat(self.batch_normalize))

    def val_dataloader(self) -> paddle.io.DataLoader | None:
        dataset = self.val_dataset()
        if dataset is None:
            return None
        return build_dataloader(
            dataset,
            batch_size=self.eval_batch_size,
            collate_fn=collate_eval,
            shuffle=False,
            num_workers=self.eval_num_workers,
            seed=self.seed,
            evaluation=True,
        )


@dataclass
class Icdar2015Data(DataModule):
    """ICDAR 2015 from its official folders under `root` (`Icdar2015Dataset`); `val_split`/`val_split_seed` hold part
    of train/ out for validation (0: validate on test/), `val.split=test` scores test/ regardless."""

    root: str = "."
    val_split: float = 0
    val_split_seed: int = 0
    train: Optional[Mapping[str, Any]] = field(default_factory=lambda: {"split": "train"})
    val: Optional[Mapping[str, Any]] = field(default_factory=lambda: {"split": "val"})

    def _dataset(self, split: Mapping[str, Any], train: bool, transforms: Transforms) -> DetDataset:
        return Icdar2015Dataset(
            root=self.root, transforms=transforms, train=train, val_split=self.val_split,
            val_split_seed=self.val_split_seed, **split,
        )


@dataclass
class PaddleOCRLabelData(DataModule):
    """PaddleOCR det label files (`PaddleOCRLabelDataset`), image paths relative to `data_dir`."""

    data_dir: str = "."
    train_label_files: list[str] = field(default_factory=list)
    val_label_files: list[str] = field(default_factory=list)
    train: Optional[Mapping[str, Any]] = field(default_factory=dict)
    val: Optional[Mapping[str, Any]] = field(default_factory=dict)

    def _dataset(self, split: Mapping[str, Any], train: bool, transforms: Transforms) -> DetDataset:
        files = self.train_label_files if train else self.val_label_files
        return PaddleOCRLabelDataset(self.data_dir, list(files), transforms=transforms, train=train, **split)


@dataclass
class SyntheticData(DataModule):
    """Words drawn with OpenCV on textured backgrounds (`SyntheticTextDataset`); `train`/`val` give each split's
    `num_samples`, `image_size` and `seed`."""

    def _dataset(self, split: Mapping[str, Any], train: bool, transforms: Transforms) -> DetDataset:
        return SyntheticTextDataset(transforms=transforms, train=train, **split)
