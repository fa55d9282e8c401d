"""Which checkpoint set a resume takes: `resume=<run dir>` and `resume=auto` take the most advanced whole set
(normally `latest`, never an older `best_accuracy` when `latest` is fine); a failed save leaves no temporary files."""
from __future__ import annotations

import errno
import logging

import paddle
import pytest

from ocrdet.engine import checkpoint_io


def save(prefix, epoch: int, batch_idx: int = 0, step: int | None = None) -> None:
    loops = {"epoch": epoch, "batch_idx": batch_idx, "global_step": step if step is not None else 4 * epoch}
    checkpoint_io.save_checkpoint(prefix, {"w": paddle.full([2], float(epoch))}, {"m": paddle.zeros([2])},
                                  {"loops": loops})


@pytest.fixture
def run_dir(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints"
    save(ckpt / "best_accuracy", 1)
    save(ckpt / "iter_epoch_2", 2)
    save(ckpt / "latest", 2, batch_idx=3)  # a SIGTERM mid-epoch 3
    return tmp_path / "run"


def test_resume_with_a_run_dir_takes_latest_not_best_accuracy(run_dir):
    ckpt = run_dir / "checkpoints"
    assert checkpoint_io.resolve_resume(str(run_dir), "elsewhere") == ckpt / "latest.pdparams"
    assert checkpoint_io.resolve_resume(str(ckpt), "elsewhere") == ckpt / "latest.pdparams"
    assert checkpoint_io.resolve_resume("auto", run_dir) == ckpt / "latest.pdparams"


def test_resume_auto_without_latest_takes_the_most_advanced_other_set(run_dir, caplog):
    ckpt = run_dir / "checkpoints"
    for suffix in checkpoint_io.SUFFIXES:
        (ckpt / f"latest{suffix}").unlink()
    assert checkpoint_io.resolve_resume("auto", run_dir) == ckpt / "iter_epoch_2.pdparams"
    (ckpt / "iter_epoch_2.pdopt").write_bytes(b"torn")
    with caplog.at_level(logging.WARNING):
        assert checkpoint_io.resolve_resume("auto", run_dir) == ckpt / "best_accuracy.pdparams"
    assert "not resuming from" in caplog.text and "iter_epoch_2.pdopt: does not match" in caplog.text


def test_resume_auto_with_no_usable_set_is_an_error_naming_each(run_dir):
    ckpt = run_dir / "checkpoints"
    for path in ckpt.glob("*.pdopt"):
        path.write_bytes(b"torn")
    with pytest.raises(ValueError, match=r"no usable checkpoint set.*\n  latest: .*\n  iter_epoch_2: .*\n  best_acc"):
        checkpoint_io.resolve_resume("auto", run_dir)


def test_resume_auto_in_a_new_run_dir_starts_fresh_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        assert checkpoint_io.resolve_resume("auto", tmp_path) is None
    assert "no checkpoint in" in caplog.text and "starting fresh" in caplog.text


def test_a_second_save_keeps_the_first_as_previous(tmp_path):
    save(tmp_path / "latest", 1)
    save(tmp_path / "latest", 2)
    assert checkpoint_io.verify_set(tmp_path / "latest_previous")["loops"]["epoch"] == 1
    assert checkpoint_io.verify_set(tmp_path / "latest")["loops"]["epoch"] == 2


def test_a_save_that_fails_for_a_full_disk_leaves_no_tmp_and_the_previous_set(tmp_path, monkeypatch):
    save(tmp_path / "latest", 1)
    original = checkpoint_io.paddle.save

    def full_disk(obj, path, *args, **kwargs):
        if str(path).endswith(".pdopt.tmp"):
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_io.paddle, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path / "latest", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pdopt", "latest.pdparams", "latest.states"]
    assert checkpoint_io.verify_set(tmp_path / "latest")["loops"]["epoch"] == 1
