"""Where the data pipeline's randomness comes from.

Random transforms accept an optional `rng: np.random.Generator` at call time (tests pass a seeded one). Without it they
draw from the generator of the sample being built (`sample_rng`), which a training dataset derives from
(seed, epoch, sample index) alone: a sample's augmentation is then the same whichever worker builds it, whether the
loader prefetches, and after a mid-epoch resume that skips the batches before it. Outside a sample (a transform called
by hand) they draw from NumPy's global state, which `ocrdet.data.datamodule.WorkerSeeder` seeds per (seed, epoch, rank, worker).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, NamedTuple

import numpy as np

_current = threading.local()  # the single-process loader builds samples in a prefetch thread


class SampleKey(NamedTuple):
    """What a training batch sampler yields instead of a bare index: the index and what seeds its randomness."""

    index: int
    seed: int
    epoch: int


@contextlib.contextmanager
def sample_rng(key: SampleKey) -> Iterator[np.random.Generator]:
    """The generator of sample `key` for the duration of the block (`resolve_rng(None)` draws from it)."""
    generator = np.random.default_rng([key.seed, key.epoch, key.index])
    previous = getattr(_current, "generator", None)
    _current.generator = generator
    try:
        yield generator
    finally:
        _current.generator = previous


def resolve_rng(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is not None:
        return rng
    current = getattr(_current, "generator", None)
    if current is not None:
        return current
    return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))
