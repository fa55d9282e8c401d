"""`ocrdet-train trainer.devices=2` from the Hydra CLI: one pinned run dir, rank 0 writes checkpoints and logs."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.conftest import TINY


def test_cli_launches_two_ranks_into_one_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-m", "ocrdet.cli.train", *TINY, "logger=none", "trainer.devices=2", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert sorted(p.name for p in (run_dir / "launch_logs").glob("workerlog.*")) == ["workerlog.0", "workerlog.1"]
    assert (run_dir / "checkpoints" / "latest.pdparams").is_file()
    assert "val/hmean" in (run_dir / "final_metrics.json").read_text()
    assert not (tmp_path / "outputs").exists()  # no rank created a run dir of its own
