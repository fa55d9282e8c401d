"""A run started before the layered layout (its checkpoint's config names `ocrdet.tasks.detection`, `ocrdet.optim`)
resumes after it; a real change of setting is still refused."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
RUN = [*TINY, "logger=none"]


def _train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ocrdet.cli.train", *RUN, *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _as_before_the_layout(states_file: Path) -> None:
    states = pickle.loads(states_file.read_bytes())
    config = states["hyper_parameters"]
    assert config["task"]["_target_"] == "ocrdet.det.task.DetectionTask"
    config["task"]["_target_"] = "ocrdet.tasks.detection.DetectionTask"
    config["optim"]["_target_"] = config["optim"]["_target_"].replace("ocrdet.engine.optim.", "ocrdet.optim.")
    states_file.write_bytes(pickle.dumps(states, protocol=4))


def test_a_checkpoint_from_before_the_layout_resumes(tmp_path):
    run = tmp_path / "run"
    first = _train(tmp_path, f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    _as_before_the_layout(run / "checkpoints" / "latest.states")

    resumed = _train(tmp_path, f"hydra.run.dir={tmp_path / 'again'}", f"resume={run}", "trainer.max_epochs=2",
                     "resume_allow_changes=[trainer.max_epochs]")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert "resumed from" in log and "at epoch 1, step 2" in log

    changed = _train(tmp_path, f"hydra.run.dir={tmp_path / 'changed'}", f"resume={run}", "optim.lr=0.5")
    assert changed.returncode != 0
    assert "optim.lr:" in changed.stderr and "-> 0.5" in changed.stderr and "resume_allow_changes=[optim.lr]" in changed.stderr
