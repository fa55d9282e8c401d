"""Tiny end-to-end runs: real configs composed with overrides that make every step take well under a second."""
from __future__ import annotations

import pytest

TINY = [
    "data.crop_size=64",
    "data.train.image_size=64",
    "data.val.image_size=64",
    "data.val_transforms.resize.limit_side_len=64",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.train.num_samples=4",
    "data.val.num_samples=2",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "callbacks.progress.refresh_rate=1",
]


@pytest.fixture
def tiny(tmp_path) -> list[str]:
    """TINY plus an MLflow store in tmp_path."""
    return [*TINY, f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db", "logger.mlflow.experiment_name=test"]
