"""Faults the loop must survive: non-finite losses, pre-emption signals and stops in the middle of an epoch."""
from __future__ import annotations

import os
import signal

import numpy as np
import paddle
import pytest

from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyCheckpoint, ToyDataset, ToyTask, loader


def weights(task: ToyTask) -> np.ndarray:
    return np.concatenate([p.numpy().ravel() for p in task.model.parameters()])


class NaNOn(ToyTask):
    """A task whose loss is NaN on the given (epoch, batch) pairs."""

    def __init__(self, bad: set[tuple[int, int]]) -> None:
        super().__init__()
        self.bad = bad

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        if (self.current_epoch, batch_idx) in self.bad:
            out["loss"] = out["loss"] * float("nan")
        return out


def trainer(tmp_path, **kwargs) -> Trainer:
    kwargs.setdefault("callbacks", [ToyCheckpoint(str(tmp_path / "ckpt"))])
    return Trainer(accelerator="cpu", seed=3, **kwargs)


def test_a_nonfinite_loss_skips_its_step_and_is_counted(tmp_path):
    t = trainer(tmp_path, max_epochs=2)
    task = NaNOn({(0, 1), (1, 2)})
    t.fit(task, loader())
    assert t.nonfinite_steps == 2
    assert t.global_step == 6  # 8 batches, 2 without a step
    assert np.isfinite(weights(task)).all()


def test_consecutive_nonfinite_losses_stop_after_saving_the_last_good_state(tmp_path):
    t = trainer(tmp_path, max_epochs=2, max_consecutive_nonfinite=3)
    task = NaNOn({(0, 1), (0, 2), (0, 3)})
    with pytest.raises(FloatingPointError, match="3 non-finite steps in a row.*non-finite loss nan.*latest"):
        t.fit(task, loader())
    saved = paddle.load(str(tmp_path / "ckpt" / "latest.pdparams"))
    np.testing.assert_array_equal(saved["weight"].numpy(), task.model.weight.numpy())
    assert t.global_step == 1


class StopAt(Callback):
    def __init__(self, epoch: int, batch: int, action: str) -> None:
        self.epoch, self.batch, self.action = epoch, batch, action

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            if self.action == "signal":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                trainer.should_stop = True


@pytest.mark.parametrize("action", ["stop", "signal"])
def test_resume_in_the_middle_of_an_epoch_is_exact(tmp_path, action):
    straight_task = ToyTask()
    trainer(tmp_path / "a", max_epochs=3).fit(straight_task, loader())

    first = trainer(tmp_path / "b", max_epochs=3)
    first.callbacks.append(StopAt(epoch=1, batch=1, action=action))
    if action == "signal":
        with pytest.raises(SystemExit) as exit_info:
            first.fit(ToyTask(), loader())
        assert exit_info.value.code == 128 + signal.SIGTERM
    else:
        first.fit(ToyTask(), loader())
    assert (first.current_epoch, first.batch_idx, first.global_step) == (1, 2, 6)

    resumed_task = ToyTask()
    resumed = trainer(tmp_path / "c", max_epochs=3)
    resumed.fit(resumed_task, loader(), ckpt_path=str(tmp_path / "b" / "ckpt" / "latest"))
    assert resumed.global_step == 12
    np.testing.assert_array_equal(weights(resumed_task), weights(straight_task))


class SkippyDataset(ToyDataset):
    """Reports `skipped` draws per sample, as the detection datasets do from their workers."""

    def __init__(self, skips_per_sample: int) -> None:
        super().__init__(16)
        self.skips = skips_per_sample

    def __getitem__(self, i):
        return {**super().__getitem__(i), "skipped": np.int64(self.skips if i % 4 == 0 else 0)}


class SkippyTask(ToyTask):
    """Reports the dataset's `skipped` draws to the Trainer, as the detection task does."""

    def skipped_samples(self, batch) -> int:
        return int(np.asarray(batch["skipped"]).sum())


def skippy_loader(skips: int):
    from ocrdet.data.datamodule import build_dataloader
    from tests.engine.toy import collate

    return build_dataloader(SkippyDataset(skips), batch_size=4, collate_fn=collate, shuffle=False)


def test_skipped_samples_are_counted_per_epoch_and_logged(tmp_path):
    logged = []

    class Recorder:
        def log_metrics(self, metrics, step):
            logged.append(dict(metrics))

        def finalize(self, status):
            pass

    from ocrdet.engine.loggers.base import Logger

    class RecordingLogger(Recorder, Logger):
        pass

    t = trainer(tmp_path, max_epochs=1, logger=RecordingLogger(), max_bad_fraction=0.5)
    t.fit(SkippyTask(), skippy_loader(1))
    guard = t.bad_sample_guard
    assert guard.epoch_skipped == 4 and guard.epoch_samples == 16  # 1 skip for each of samples 0, 4, 8, 12
    assert {"train/skipped_samples": 4.0, "train/nonfinite_steps": 0.0} in logged


def test_too_many_bad_samples_stop_the_run(tmp_path):
    t = trainer(tmp_path, max_epochs=1, max_bad_fraction=0.05)
    with pytest.raises(RuntimeError, match=r"8 of 24 samples drawn this epoch were unusable"):
        t.fit(SkippyTask(), skippy_loader(2))


class CountValidations(Callback):
    def __init__(self) -> None:
        self.at: list[int] = []

    def on_validation_end(self, trainer, module):
        self.at.append(trainer.global_step)


@pytest.mark.parametrize("interval, expected", [(0.5, [2, 4, 6, 8]), (1.0, [4, 8]), (3, [3, 6])])
def test_val_check_interval_float_is_a_fraction_of_an_epoch(tmp_path, interval, expected):
    counter = CountValidations()
    t = Trainer(accelerator="cpu", seed=3, max_epochs=2, val_check_interval=interval, callbacks=[counter])
    t.fit(ToyTask(), loader(), loader(shuffle=False))  # 4 steps per epoch
    assert counter.at == expected


@pytest.mark.parametrize("interval", [0, -1, 0.0, 1.5, "abc"])
def test_bad_val_check_interval_is_refused_naming_it(interval):
    with pytest.raises(ValueError, match=f"trainer.val_check_interval={interval!r}"):
        Trainer(accelerator="cpu", max_epochs=1, val_check_interval=interval)

