"""Short real runs a hostile-but-realistic user tried (issue #13): each must end with a clear outcome and files a
careful user can rely on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrdet.config import compose_config
from ocrdet.engine import checkpoint_io
from ocrdet.train import run_train
from tests.integration.conftest import TINY

QUIET = [*TINY, "logger=none"]


def train(tmp_path: Path, overrides: list[str], run: str = "run") -> dict[str, float]:
    return run_train(compose_config("train", [*QUIET, *overrides], output_dir=tmp_path / run))


def test_a_diverging_lr_never_saves_non_finite_weights(tmp_path):
    with pytest.raises(FloatingPointError, match=r"5 non-finite steps in a row .*the update left \d+ of \d+ tensors"):
        train(tmp_path, ["trainer.max_epochs=3", "optim.lr=1e9", "optim.warmup_epochs=0"])
    for prefix in ("latest", "best_accuracy"):
        params = tmp_path / "run" / "checkpoints" / f"{prefix}.pdparams"
        state = checkpoint_io.load_params(params)
        assert [k for k, v in state.items() if not np.isfinite(v.numpy()).all()] == []
    assert checkpoint_io.read_states(tmp_path / "run" / "checkpoints" / "latest.pdparams")["loops"]["nonfinite_steps"] == 5
