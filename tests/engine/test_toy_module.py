"""The engine trains a module that is no OCR (a tiny regression whose batches hold `x`/`y` and whose metric is
`val/score`) with its callbacks, checkpoint callback, MLflow logger and exact resume, and calls the hooks in
Lightning's documented order."""
from __future__ import annotations

import pickle

import numpy as np
import paddle
import pytest

from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.callbacks.progress import ProgressBar
from ocrdet.engine.callbacks.throughput import ThroughputMonitor
from ocrdet.engine.loggers.mlflow import MLflowLogger
from ocrdet.engine.module import TrainModule
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyTask, loader


def weights(task: TrainModule) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in task.model.state_dict().items()}


def optimizer_state(trainer: Trainer) -> dict[str, np.ndarray]:
    """The optimizer's accumulators keyed by the model's structured names (Paddle's tensor names differ per model
    instance), and the LR schedule's state."""
    by_tensor_name = {p.name: key for key, p in trainer.module.model.named_parameters()}
    state = {}
    for name, value in trainer.optimizer.state_dict().items():
        if name == "LR_Scheduler":
            state.update({f"LR_Scheduler.{k}": np.asarray(v) for k, v in value.items()})
            continue
        owner = max((t for t in by_tensor_name if name.startswith(t + "_")), key=len)
        state[by_tensor_name[owner] + name[len(owner):]] = value.numpy()
    return state


class StopAt(Callback):
    """Stands in for an interruption: stop after batch `batch` of epoch `epoch` (the last set is saved then)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        trainer.should_stop = (trainer.current_epoch, batch_idx) == self.at


def fit(out, uri: str, stop_at: tuple[int, int] | None = None, ckpt_path: str | None = None, run_id: str | None = None):
    callbacks = [
        ModelCheckpoint(str(out / "ckpt"), monitor="val/score", mode="max", every_n_epochs=1),
        ProgressBar(refresh_rate=1),
        ThroughputMonitor(),
    ]
    if stop_at is not None:
        callbacks.append(StopAt(*stop_at))
    logger = MLflowLogger(experiment_name="toy", tracking_uri=uri, run_id=run_id)
    trainer = Trainer(accelerator="cpu", seed=11, max_epochs=3, log_every_n_steps=1, callbacks=callbacks,
                      logger=logger, default_root_dir=str(out))
    task = ToyTask()
    trainer.fit(task, loader(), loader(shuffle=False), ckpt_path=ckpt_path)
    return trainer, task, logger


def test_a_regression_module_trains_checkpoints_resumes_exactly_and_logs_to_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    straight, straight_task, _ = fit(tmp_path / "straight", uri)

    first, _, logger = fit(tmp_path / "run", uri, stop_at=(1, 1))
    assert (first.current_epoch, first.batch_idx, first.global_step) == (1, 2, 6)
    ckpt = tmp_path / "run" / "ckpt"
    # the engine's own names (the detection config sets PaddleOCR's); no PaddleOCR key in its `.states`. `last` was
    # saved twice (epoch 1's end, the stop), so the set it replaced stays as `last_previous` (see checkpoint_io)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(
        f"{prefix}.{ext}" for prefix in ("best", "last", "last_previous", "epoch_1")
        for ext in ("pdparams", "pdopt", "states")
    )
    with open(ckpt / "last.states", "rb") as f:
        states = pickle.load(f)
    assert not {"best_model_dict", "epoch", "global_step"} & set(states)
    assert states["loggers"][0]["run_id"] == logger.run_id

    # a new process would read the run id from the checkpoint to continue the MLflow run (as ocrdet-train does)
    resumed, resumed_task, _ = fit(tmp_path / "run", uri, ckpt_path=str(ckpt / "last"), run_id=logger.run_id)
    assert resumed.global_step == straight.global_step == 12
    for key, value in weights(straight_task).items():
        np.testing.assert_array_equal(weights(resumed_task)[key], value, err_msg=key)
    expected = optimizer_state(straight)
    got = optimizer_state(resumed)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert resumed.checkpoint_callback.best_score == pytest.approx(straight.checkpoint_callback.best_score, abs=0)

    client = MlflowClient(uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    logged = {"train/loss", "train/lr", "val/score", "train/samples_per_s", "train/skipped_samples"}
    assert logged <= set(run.data.metrics)
    # one run across the interruption: every optimizer step logged once, validation after each of the 3 epochs
    assert [m.step for m in client.get_metric_history(logger.run_id, "train/loss")] == list(range(1, 13))
    assert [m.step for m in client.get_metric_history(logger.run_id, "val/score")] == [4, 8, 12]


def test_the_sanity_check_runs_validation_batches_but_saves_no_best_checkpoint(tmp_path):
    saved_at: list[tuple[int, str]] = []

    class Spy(ModelCheckpoint):
        def on_sanity_check_end(self, trainer, module):
            saved_at.append((trainer.global_step, self.best_model_path))

    seen: list[int] = []

    class CountBatches(Callback):
        def on_validation_batch_end(self, trainer, module, batch_idx):
            seen.append(batch_idx)

    trainer = Trainer(accelerator="cpu", seed=3, max_epochs=1, num_sanity_val_steps=2,
                      callbacks=[Spy(str(tmp_path / "ckpt"), monitor="val/score"), CountBatches()])
    trainer.fit(ToyTask(), loader(), loader(shuffle=False))
    assert saved_at == [(0, "")]  # nothing saved by the sanity batches
    assert seen == [0, 1, 0, 1, 2, 3]  # 2 sanity batches, then the epoch's whole validation
    assert trainer.checkpoint_callback.best_model_path.endswith("best.pdparams")


class EpochDecay(ToyTask):
    def __init__(self, interval: str, frequency: int = 1) -> None:
        super().__init__()
        self.interval, self.frequency = interval, frequency

    def configure_optimizers(self):
        scheduler = paddle.optimizer.lr.StepDecay(learning_rate=0.1, step_size=1, gamma=0.5)
        optimizer = paddle.optimizer.SGD(learning_rate=scheduler, parameters=self.trainable_parameters())
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": self.interval, "frequency": self.frequency}}


@pytest.mark.parametrize("interval, frequency, halvings", [("epoch", 1, 3), ("step", 1, 12), ("step", 4, 3)])
def test_the_scheduler_interval_and_frequency_are_honoured(interval, frequency, halvings):
    trainer = Trainer(accelerator="cpu", seed=3, max_epochs=3)  # 4 optimizer steps per epoch
    trainer.fit(EpochDecay(interval, frequency), loader())
    assert trainer.optimizer.get_lr() == pytest.approx(0.1 * 0.5**halvings)


def test_an_unknown_scheduler_interval_is_refused():
    with pytest.raises(ValueError, match="interval='batch'"):
        Trainer(accelerator="cpu", max_epochs=1).fit(EpochDecay("batch"), loader())
