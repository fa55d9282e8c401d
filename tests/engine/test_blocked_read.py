"""SIGTERM while the data loader waits on a read that never returns (a FIFO or a hung mount as an image path): the
main thread is inside the loader's C++ wait, where Python runs no signal handler; the run must still save the last
completed step and exit with 128 + SIGTERM, with or without loader workers, and leave no process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocrdet.engine import checkpoint_io
from ocrdet.engine.callbacks.preemption import Preemption

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_during_a_blocked_read_saves_the_last_step_and_exits(tmp_path, workers):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "tests.engine.blocking_run", str(tmp_path), str(workers)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "blocked").exists():
            assert run.poll() is None, run.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the blocking sample"
            time.sleep(0.2)
        time.sleep(1.0)  # the main thread is now waiting for the batch that cannot come
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=Preemption.GRACE_S + 60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "saving from the signal watcher" in output
    states = checkpoint_io.read_states(tmp_path / "ckpt" / "latest.pdparams")
    assert states["loops"]["global_step"] == 4 and states["loops"]["batch_idx"] == 4  # the steps before the blocking batch
    if workers:  # the worker stuck in open() died with the main process
        blocked_pid = int((tmp_path / "blocked").read_text())
        for _ in range(50):
            if not Path(f"/proc/{blocked_pid}").exists():
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{blocked_pid}").exists()
