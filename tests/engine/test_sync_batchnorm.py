"""trainer.sync_batchnorm: BatchNorm layers become SyncBatchNorm for several GPU ranks, keeping parameters and names."""
from __future__ import annotations

import paddle
import pytest

from ocrdet.engine.distributed import sync_batchnorm
from tests.models.builders import build_student


def batch_norms(model: paddle.nn.Layer) -> dict[str, paddle.nn.Layer]:
    return {n: m for n, m in model.named_sublayers() if isinstance(m, paddle.nn.layer.norm._BatchNormBase)}


def test_gpu_ranks_get_sync_batchnorm_with_the_same_parameters_and_names() -> None:
    model = build_student()
    names = list(model.state_dict().keys())
    params = {n: id(p) for n, p in model.named_parameters()}
    plain = batch_norms(model)
    converted = sync_batchnorm(model, ranks=2, accelerator="gpu")  # conversion only: no GPU needed until forward
    synced = batch_norms(converted)
    assert len(plain) == len(synced) == 51  # every BN of the student: 47 in the backbone, 2 per head branch
    assert all(isinstance(m, paddle.nn.SyncBatchNorm) for m in synced.values())
    assert list(converted.state_dict().keys()) == names
    assert {n: id(p) for n, p in converted.named_parameters()} == params  # the optimizer's tensors stay valid


def test_one_rank_or_cpu_keeps_batchnorm() -> None:
    model = build_student()
    assert sync_batchnorm(model, ranks=1, accelerator="gpu") is model
    with pytest.warns(UserWarning, match="no CPU kernel"):
        assert sync_batchnorm(model, ranks=2, accelerator="cpu") is model
    assert not any(isinstance(m, paddle.nn.SyncBatchNorm) for m in batch_norms(model).values())
