"""`all_reduce_gradients` (compiled steps on several ranks): the mean over ranks, and a rank without gradients
(all its micro-batches non-finite) joins with zeros instead of leaving the others waiting."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("grad_sync_worker.py")
REPO = Path(__file__).resolve().parents[2]


def test_gradients_are_averaged_and_a_rank_without_gradients_joins_with_zeros(tmp_path):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "logs"), str(WORKER), str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, timeout=300, capture_output=True, text=True)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("workerlog.*")))
    assert done.returncode == 0, done.stderr[-2000:] + logs[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for result in ranks:
        assert result["total"] == 1  # one finite micro-batch over both ranks: the step is taken, on both
        # rank 0's gradients halved (the mean over 2 ranks, as DataParallel's), exact in float32
        np.testing.assert_array_equal(result["grads"][0], np.arange(6, dtype=np.float32).reshape(2, 3) / 2)
        np.testing.assert_array_equal(result["grads"][1], np.full(4, 1.0, dtype=np.float32))
