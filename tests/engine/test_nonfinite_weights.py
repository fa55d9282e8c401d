"""A step that leaves NaN/Inf in the weights, the BN statistics or the optimizer state is undone and counted like a
NaN loss; checkpoints never hold non-finite tensors; the count reaches the loggers and `.states`."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from ocrdet.engine import checkpoint_io
from ocrdet.engine.loggers.base import Logger
from ocrdet.engine.trainer import Trainer
from ocrdet.engine.optim import adam_warmup_cosine
from tests.engine.toy import ToyCheckpoint, ToyTask, loader


class BNTask(ToyTask):
    """Linear + BatchNorm; its input is NaN on the given (epoch, batch) pairs, so the forward (before the loss is seen
    to be NaN) pushes NaN into BN's running statistics."""

    def __init__(self, nan_at: set[tuple[int, int]] = frozenset(), lr: float = 0.01) -> None:
        super().__init__()
        self.model = paddle.nn.Sequential(paddle.nn.Linear(4, 1), paddle.nn.BatchNorm1D(1))
        self.nan_at, self.lr = nan_at, lr

    def training_step(self, batch, batch_idx):
        if (self.current_epoch, batch_idx) in self.nan_at:
            batch = {**batch, "x": batch["x"] * float("nan")}
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        optimizer, scheduler = adam_warmup_cosine(
            self.trainable_parameters(), steps_per_epoch=self.trainer.steps_per_epoch,
            total_steps=self.trainer.estimated_stepping_batches, lr=self.lr, warmup_epochs=0.0,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class Recorder(Logger):
    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []

    def log_metrics(self, metrics, step):
        self.logged.append((step, dict(metrics)))


def state(task: ToyTask) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in task.model.state_dict().items()}


def finite_file(path) -> bool:
    return all(np.isfinite(v.numpy()).all() for v in checkpoint_io.load_params(path).values())


def test_a_nan_forward_leaves_the_bn_statistics_as_they_were(tmp_path):
    recorder = Recorder()
    t = Trainer(accelerator="cpu", seed=3, max_epochs=2, logger=recorder,
                callbacks=[ToyCheckpoint(str(tmp_path / "ckpt"))])
    task = BNTask({(0, 2)})
    t.fit(task, loader(), loader(shuffle=False))
    assert t.nonfinite_steps == 1 and t.global_step == 7  # 8 batches, one undone
    assert all(np.isfinite(v).all() for v in state(task).values())
    for prefix in ("latest", "best_accuracy"):
        assert finite_file(tmp_path / "ckpt" / prefix)
    _, _, states = checkpoint_io.load_resume(tmp_path / "ckpt" / "latest")
    assert states["loops"]["nonfinite_steps"] == 1
    assert (2, {"train/nonfinite_steps": 1.0}) in recorder.logged  # at the skip, step 2 = the steps before it
    assert (7, {"train/skipped_samples": 0.0, "train/nonfinite_steps": 1.0}) in recorder.logged  # each epoch end


def test_the_nan_step_is_undone_exactly(tmp_path):
    """Batch (0, 2) is NaN: the state after it equals the state after batch (0, 1) bit for bit."""
    class Capture(ToyCheckpoint):
        seen: dict[int, dict] = {}

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0:
                self.seen[batch_idx] = state(module)

    capture = Capture(str(tmp_path / "ckpt"))
    Trainer(accelerator="cpu", seed=3, max_epochs=1, callbacks=[capture]).fit(BNTask({(0, 2)}), loader())
    for key, value in capture.seen[1].items():
        np.testing.assert_array_equal(capture.seen[2][key], value, err_msg=key)


def test_an_overflowing_update_is_undone_and_stops_the_run_after_five(tmp_path):
    t = Trainer(accelerator="cpu", seed=3, max_epochs=2, callbacks=[ToyCheckpoint(str(tmp_path / "ckpt"))])
    task = BNTask(lr=1e39)  # float32 inf: every update turns the weights into Inf/NaN
    before = state(task)
    with pytest.raises(FloatingPointError, match=r"5 non-finite steps in a row .*the update left \d+ of \d+ tensors "
                                                 r"non-finite\).*saved at .*latest.pdparams"):
        t.fit(task, loader())
    assert t.global_step == 0 and t.nonfinite_steps == 5
    saved = checkpoint_io.load_params(tmp_path / "ckpt" / "latest")
    for key, value in before.items():
        if "_mean" in key or "_variance" in key:  # the forwards legitimately moved BN's statistics
            assert np.isfinite(saved[key].numpy()).all()
        else:
            np.testing.assert_array_equal(saved[key].numpy(), value, err_msg=key)


def test_non_finite_weights_are_never_saved(tmp_path):
    t = Trainer(accelerator="cpu", seed=3, max_epochs=1)
    task = ToyTask()
    t.fit(task, loader())
    task.model.weight.set_value(paddle.full([4, 1], float("nan")))
    with pytest.raises(FloatingPointError, match=r"refusing to save .*x: 1 of 2 model tensors are non-finite"):
        t.save_checkpoint(tmp_path / "x")
    assert not list(tmp_path.glob("x.*"))
