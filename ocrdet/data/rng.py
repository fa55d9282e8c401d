"""Where the data pipeline's randomness comes from.

Random transforms accept an optional `rng: np.random.Generator` at call time (tests pass a seeded one). Without it they
draw a fresh Generator from NumPy's *global* state, which `ocrdet.data.datamodule.WorkerSeeder` seeds per
(seed, epoch, rank, worker): augmentations then differ across workers and epochs yet repeat exactly for one seed, and a
forked worker never replays its siblings' stream (a Generator stored on the transform would be copied into every fork).
"""
from __future__ import annotations

import numpy as np


def resolve_rng(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is not None:
        return rng
    return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))
