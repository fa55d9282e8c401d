"""Training batches cross the loader workers' shared memory compact (uint8 image and binary targets) and reach the
training step as float32 with exactly the values of the all-float32 pipeline."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from ocrdet.cli.build import build_data
from ocrdet.cli.config import compose_config
from tests.integration.conftest import TINY


def first_batches(tmp_path, overrides: list[str], count: int = 2) -> list[dict[str, np.ndarray]]:
    cfg = compose_config("train", [*TINY, "logger=none", *overrides], output_dir=tmp_path)
    loader = build_data(cfg).train_dataloader()
    np.random.seed(3)
    batches = []
    for batch in loader:
        batches.append({k: v.numpy() for k, v in batch.items()})
        if len(batches) == count:
            return batches
    return batches


@pytest.mark.parametrize("workers", [0, 1])
def test_compact_batches_equal_the_float_pipeline(tmp_path, workers: int) -> None:
    """`data.batch_normalize` on the collated uint8 batch gives the values of the per-sample NormalizeImage op."""
    from ocrdet.data.transforms import NormalizeImage

    compact = first_batches(tmp_path / "compact", [f"data.num_workers={workers}"])
    reference = first_batches(tmp_path / "float", ["data.batch_normalize=null", f"data.num_workers={workers}"])
    assert len(compact) == len(reference) == 2
    normalize = NormalizeImage()  # conf/normalize/imagenet.yaml's values are the op's defaults
    for got, want in zip(compact, reference):
        assert want["image"].dtype == np.uint8
        want["image"] = np.stack(
            [normalize({"image": chw.transpose(1, 2, 0)})["image"].transpose(2, 0, 1) for chw in want["image"]]
        )
        assert got.keys() == want.keys()
        for key in ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"):
            assert got[key].dtype == np.float32, key
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert got["shrink_map"].max() == 1.0 and got["threshold_mask"].max() == 1.0  # text present


def test_collated_binary_targets_are_uint8_and_exact(tmp_path) -> None:
    """What the workers put in shared memory: uint8 image and 0/1 targets, float32 threshold map."""
    from hydra.utils import instantiate

    from ocrdet.data.datamodule import collate_train

    cfg = compose_config("train", [*TINY, "logger=none"], output_dir=tmp_path)
    dataset = instantiate(cfg.data).train_dataset()
    samples = [dataset[i] for i in range(2)]
    batch = collate_train(samples)
    assert batch["image"].dtype == np.uint8 and batch["threshold_map"].dtype == np.float32
    for key in ("threshold_mask", "shrink_map", "shrink_mask"):
        assert batch[key].dtype == np.uint8
        stacked = np.stack([s[key] for s in samples])
        assert set(np.unique(stacked)) <= {0.0, 1.0}, key  # nothing lost in the uint8 cast
        np.testing.assert_array_equal(batch[key], stacked)
    assert paddle.to_tensor(batch["image"]).dtype == paddle.uint8
