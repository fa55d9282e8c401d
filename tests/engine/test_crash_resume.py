"""SIGKILL (nothing can catch it) mid-epoch and in the middle of a checkpoint save, then resume: the final weights
and step count equal an uninterrupted run's, bit for bit."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ocrdet.engine import checkpoint_io

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    # its own session, so a SIGTERM to "the process group" reaches this run and its loader workers only
    return subprocess.run(
        [sys.executable, "-m", "tests.engine.killable_run", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=300, start_new_session=True,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[np.ndarray, str]:
    out = tmp_path_factory.mktemp("straight")
    done = run(str(out), "3")
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out / "final.npy"), done.stdout.strip().splitlines()[-1]


def test_sigkill_mid_epoch_then_resume_from_latest(tmp_path, uninterrupted):
    killed = run(str(tmp_path / "a"), "3", "--kill-at", "1,2")
    assert killed.returncode == -signal.SIGKILL
    resumed = run(str(tmp_path / "b"), "3", "--resume", str(tmp_path / "a" / "ckpt" / "latest"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    weights, steps = uninterrupted
    assert resumed.stdout.strip().splitlines()[-1] == steps == "global_step=12"
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "final.npy"), weights)


def test_sigkill_during_a_checkpoint_save_leaves_the_previous_one_loadable(tmp_path, uninterrupted):
    # saves per epoch: best_accuracy, iter_epoch_N, latest -> the 6th .pdopt staged is epoch 2's `latest`
    killed = run(str(tmp_path / "a"), "3", "--kill-in-save", "6")
    assert killed.returncode == -signal.SIGKILL
    ckpt = tmp_path / "a" / "ckpt"
    assert (ckpt / "latest.pdparams.tmp").is_file()  # the interrupted write, never renamed
    _, _, states = checkpoint_io.load_resume(ckpt / "latest")
    assert states["loops"]["epoch"] == 1  # the previous `latest`, intact
    resumed = run(str(tmp_path / "b"), "3", "--resume", str(ckpt / "latest"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    weights, steps = uninterrupted
    assert resumed.stdout.strip().splitlines()[-1] == steps
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "final.npy"), weights)


@pytest.mark.parametrize("rename", [16, 17])
def test_sigkill_between_the_renames_of_a_save_resumes_from_the_set_it_replaced(tmp_path, uninterrupted, rename):
    # 3 saves per epoch (best_accuracy, iter_epoch_N, latest), 3 renames each (.pdopt, .states, .pdparams): renames
    # 16 and 17 are epoch 2's `latest` with its .pdopt (and .states) renamed but not its .pdparams
    killed = run(str(tmp_path / "a"), "3", "--kill-after-rename", str(rename))
    assert killed.returncode == -signal.SIGKILL
    ckpt = tmp_path / "a" / "ckpt"
    with pytest.raises(ValueError, match=r"latest.pd(params|opt): does not match .*latest.states.*resume from latest_previous"):
        checkpoint_io.load_resume(ckpt / "latest")
    assert checkpoint_io.resolve_resume(str(ckpt / "latest"), tmp_path / "a") == ckpt / "latest_previous.pdparams"
    assert checkpoint_io.verify_set(ckpt / "latest_previous")["loops"]["epoch"] == 1
    resumed = run(str(tmp_path / "b"), "3", "--resume", str(ckpt / "latest"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "latest_previous" in resumed.stderr
    weights, steps = uninterrupted
    assert resumed.stdout.strip().splitlines()[-1] == steps
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "final.npy"), weights)


def test_a_set_torn_between_renames_is_refused(tmp_path):
    import paddle

    prefix = tmp_path / "latest"
    checkpoint_io.save_checkpoint(prefix, {"w": paddle.ones([2])}, {"m": paddle.zeros([2])}, {"loops": {}})
    paddle.save({"w": paddle.zeros([2])}, str(prefix) + ".pdparams")  # a newer weights file, older states
    with pytest.raises(ValueError, match="latest.pdparams: does not match"):
        checkpoint_io.load_resume(prefix)


def test_truncated_weights_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "w.pdparams"
    path.write_bytes(b"\x80\x04truncated")
    with pytest.raises(ValueError, match="w.pdparams: not a readable Paddle state dict"):
        checkpoint_io.load_params(path)


def test_sigterm_to_the_process_group_with_loader_workers_saves_and_resumes_exactly(tmp_path, uninterrupted):
    # the workers get the SIGTERM too: they must outlive it until the main process has saved
    termed = run(str(tmp_path / "a"), "3", "--workers", "2", "--term-group-at", "1,1")
    assert termed.returncode == 128 + signal.SIGTERM, termed.stderr[-2000:]
    assert "killed by signal" not in termed.stderr
    states = checkpoint_io.verify_set(tmp_path / "a" / "ckpt" / "latest")
    assert (states["loops"]["epoch"], states["loops"]["batch_idx"]) == (1, 2)
    resumed = run(str(tmp_path / "b"), "3", "--workers", "2", "--resume", str(tmp_path / "a" / "ckpt" / "latest"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    weights, steps = uninterrupted
    assert resumed.stdout.strip().splitlines()[-1] == steps
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "final.npy"), weights)

