"""Batch collation for the train and eval loaders."""
from __future__ import annotations

import numpy as np

TRAIN_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")


def collate_train(samples: list[dict]) -> dict[str, np.ndarray]:
    """Stack the five train keys (every sample has the crop's fixed size), plus `skipped`: int64 0-D, the number of
    draws the dataset dropped to produce this batch (bad images, see `ocrdet.data.datasets`). It is summed here
    because collation runs in the loader worker, whose own counters the main process never sees; the DataLoader
    turns it into a 0-D int64 tensor and the Trainer adds `batch["skipped"]` up per epoch. The skip reasons stay in
    the workers' log: the batch carries numbers only (strings would pass Paddle's loader as lists, but device
    placement and AMP code can then treat every value as a tensor)."""
    batch = {key: np.stack([s[key] for s in samples]) for key in TRAIN_KEYS}
    batch["skipped"] = np.asarray(sum(int(s.get("skipped", 0)) for s in samples), dtype=np.int64)
    return batch


def collate_eval(samples: list[dict]) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Stack `image` (equal sizes only, hence eval batch size 1 for mixed sizes) and `shape`; `polys` and
    `ignore_tags` differ in length per image and stay lists."""
    return {
        "image": np.stack([s["image"] for s in samples]),
        "shape": np.stack([s["shape"] for s in samples]),
        "polys": [s["polys"] for s in samples],
        "ignore_tags": [s["ignore_tags"] for s in samples],
    }
