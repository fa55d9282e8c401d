"""DataLoaders over our datasets: a distributed-aware batch sampler reseeded per epoch, and per-worker seeding so
augmentations differ across workers and epochs yet repeat exactly for the same seed."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import signal
from typing import Any, Callable, Iterator

import numpy as np
import paddle

from ocrdet.data.memory import reuse_freed_memory
from ocrdet.data.rng import SampleKey
from ocrdet.engine.distributed import ShardBatchSampler


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
    pipeline's multi-MB arrays cost no page faults (`ocrdet.data.memory`; no value changes); stay out of the run's
    process group, so that a SIGTERM to it (`kill -TERM -- -<pgid>`) reaches the main process alone, which saves and
    then ends them; die with the main process.

    OpenCV's thread count is left alone: cv2.setNumThreads in a forked worker can wait forever on the parent's
    thread pool (seen in the test suite)."""
    reuse_freed_memory()
    # A process group of its own: a signal to the run's group (pre-emption, Ctrl-C) reaches the main process only,
    # which saves at the next step boundary, instead of killing the workers under it (an unsaved crash). Deferring
    # SIGTERM in the worker instead would also delay the shutdowns Paddle and multiprocessing do with it.
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


class MappedLoader:
    """A loader whose batches go through `fn` in the main process (e.g. `TrainBatchToFloat`: uint8 through the
    workers' shared memory, float32 from here on). Length, sampler and worker seeding are the wrapped loader's."""

    def __init__(self, loader: Any, fn: Callable[[Any], Any]) -> None:
        self.loader = loader
        self.fn = fn

    def __iter__(self) -> Iterator[Any]:
        return (self.fn(batch) for batch in self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # batch_sampler, worker_init_fn, ...
        return getattr(self.loader, name)


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
    loader = paddle.io.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        use_shared_memory=use_shared_memory,
        worker_init_fn=WorkerSeeder(seed) if num_workers > 0 else None,
    )
    return loader
