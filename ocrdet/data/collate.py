"""Batch collation for the train and eval loaders."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ocrdet.data.array_pool import ArrayPool, as_tensor

if TYPE_CHECKING:
    import paddle

    from ocrdet.data.transforms.normalize import NormalizeImage

TRAIN_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
# Targets holding only 0 and 1: collated as uint8 (a quarter of the bytes through the workers' shared memory),
# turned back into float32 in the main process by `TrainBatchToFloat`.
BINARY_KEYS = ("threshold_mask", "shrink_map", "shrink_mask")


def collate_train(samples: list[dict]) -> dict[str, np.ndarray]:
    """Stack the five train keys (every sample has the crop's fixed size), plus `skipped`: int64 0-D, the number of
    draws the dataset dropped to produce this batch (bad images, see `ocrdet.data.datasets`). It is summed here
    because collation runs in the loader worker, whose own counters the main process never sees; the DataLoader
    turns it into a 0-D int64 tensor and the Trainer adds `batch["skipped"]` up per epoch. The skip reasons stay in
    the workers' log: the batch carries numbers only (strings would pass Paddle's loader as lists, but device
    placement and AMP code can then treat every value as a tensor)."""
    batch = {key: np.stack([s[key] for s in samples]) for key in TRAIN_KEYS}
    for key in BINARY_KEYS:
        batch[key] = batch[key].astype(np.uint8)
    batch["skipped"] = np.asarray(sum(int(s.get("skipped", 0)) for s in samples), dtype=np.int64)
    return batch


class TrainBatchToFloat:
    """Main-process side of `collate_train`: the binary targets back to float32 and, when the pipeline's
    NormalizeImage runs `on_batch`, the uint8 image batch normalized. Values equal the all-float32 pipeline's."""

    def __init__(self, normalize: Optional["NormalizeImage"] = None) -> None:
        self.normalize = normalize if normalize is not None and normalize.on_batch else None
        self.pool = ArrayPool()  # the float32 batch arrays, reused once the step has dropped the batch

    @classmethod
    def for_dataset(cls, dataset: object) -> "TrainBatchToFloat":
        """The converter for a dataset's pipeline: its NormalizeImage op, if any, decides where the image is
        normalized."""
        from ocrdet.data.transforms.normalize import NormalizeImage

        ops = [op for op in getattr(dataset, "transforms", None) or [] if isinstance(op, NormalizeImage)]
        return cls(ops[-1] if ops else None)

    def __call__(self, batch: dict) -> dict:
        for key in BINARY_KEYS:
            batch[key] = _as_float32(batch[key], self.pool)
        if self.normalize is not None:
            batch["image"] = self.normalize.normalize_batch(batch["image"], self.pool)
        return batch


def _as_float32(tensor: "paddle.Tensor", pool: ArrayPool) -> "paddle.Tensor":
    """On CPU numpy's cast into a pooled array the tensor then shares (DLPack, no copy, no page faults once the
    array is reused); elsewhere Paddle's cast."""
    if tensor.place.is_cpu_place():
        values = tensor.numpy()
        out = pool.empty(values.shape, np.float32)
        np.copyto(out, values)
        return as_tensor(out)
    return tensor.astype("float32")


def collate_eval(samples: list[dict]) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Stack `image` (equal sizes only, hence eval batch size 1 for mixed sizes) and `shape`; `polys` and
    `ignore_tags` differ in length per image and stay lists."""
    return {
        "image": np.stack([s["image"] for s in samples]),
        "shape": np.stack([s["shape"] for s in samples]),
        "polys": [s["polys"] for s in samples],
        "ignore_tags": [s["ignore_tags"] for s in samples],
    }
