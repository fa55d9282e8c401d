"""Batch collation for the train and eval loaders."""
from __future__ import annotations

import numpy as np

TRAIN_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")


def collate_train(samples: list[dict]) -> dict[str, np.ndarray]:
    """Stack the five train keys; every sample has the crop's fixed size."""
    return {key: np.stack([s[key] for s in samples]) for key in TRAIN_KEYS}


def collate_eval(samples: list[dict]) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Stack `image` (equal sizes only, hence eval batch size 1 for mixed sizes) and `shape`; `polys` and
    `ignore_tags` differ in length per image and stay lists."""
    return {
        "image": np.stack([s["image"] for s in samples]),
        "shape": np.stack([s["shape"] for s in samples]),
        "polys": [s["polys"] for s in samples],
        "ignore_tags": [s["ignore_tags"] for s in samples],
    }
