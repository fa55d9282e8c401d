"""The generic loop: checkpoint files, exact resume, accumulation, limits, schedule and MLflow records."""
from __future__ import annotations

import math
import numpy as np
import paddle
import pytest

from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyCheckpoint, ToyTask, loader


def make_trainer(tmp_path, **kwargs) -> Trainer:
    kwargs.setdefault("callbacks", [ToyCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_epochs=1)])
    return Trainer(accelerator="cpu", default_root_dir=str(tmp_path), seed=7, **kwargs)


def weights(task: ToyTask) -> np.ndarray:
    return np.concatenate([p.numpy().ravel() for p in task.model.parameters()])


def test_resume_continues_step_counter_lr_and_optimizer_state(tmp_path):
    straight = make_trainer(tmp_path / "a", max_epochs=4)
    task_a = ToyTask()
    straight.fit(task_a, loader())

    class StopAfterTwoEpochs(Callback):  # stands in for a run interrupted after its epoch-2 checkpoint
        def on_train_epoch_end(self, trainer, module):
            trainer.should_stop = trainer.current_epoch == 2

    first = make_trainer(tmp_path / "b", max_epochs=4)
    first.callbacks.append(StopAfterTwoEpochs())
    first.fit(ToyTask(), loader())
    assert first.global_step == 8
    second = make_trainer(tmp_path / "c", max_epochs=4)
    task_b = ToyTask()
    second.fit(task_b, loader(), ckpt_path=str(tmp_path / "b" / "ckpt" / "latest"))
    assert second.global_step == straight.global_step == 16
    assert second.current_epoch == 4
    assert second.optimizer.get_lr() == pytest.approx(straight.optimizer.get_lr(), abs=0)
    np.testing.assert_array_equal(weights(task_b), weights(task_a))


def test_resume_refuses_weights_only_file(tmp_path):
    paddle.save(ToyTask().model.state_dict(), str(tmp_path / "w.pdparams"))
    trainer = make_trainer(tmp_path, max_epochs=1)
    with pytest.raises(FileNotFoundError, match="weights only"):
        trainer.fit(ToyTask(), loader(), ckpt_path=str(tmp_path / "w.pdparams"))


def test_gradient_accumulation_and_limits_count_optimizer_steps(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=2, accumulate_grad_batches=2, limit_train_batches=3, callbacks=[])
    trainer.fit(ToyTask(), loader(n=32))
    # 3 batches per epoch, accumulating 2: steps after batch 2 and after the last batch 3 -> 2 per epoch
    assert trainer.steps_per_epoch == 2
    assert trainer.global_step == 4


def test_max_steps_stops_mid_epoch(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=3, callbacks=[])
    trainer.fit(ToyTask(), loader(n=32))
    assert trainer.global_step == 3 and trainer.current_epoch == 0


def test_warmup_then_cosine_schedule_per_step(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=3, callbacks=[])
    task = ToyTask()
    seen = []

    class Spy(ModelCheckpoint):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.append(outputs["train/lr"])

    trainer.callbacks = [Spy(dirpath=str(tmp_path / "x"), monitor=None, save_last=False)]
    trainer.fit(task, loader())
    # 4 steps/epoch, warmup 1 epoch = 4 steps from 0, then cosine at t-W over T_max = 12
    expected = [0.01 * t / 4 for t in range(4)] + [
        0.005 * (1 + math.cos(math.pi * (t - 4) / 12)) for t in range(4, 12)
    ]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


def test_mlflow_run_holds_params_and_metrics(tmp_path):
    from mlflow.tracking import MlflowClient

    from ocrdet.engine.loggers.mlflow import MLflowLogger

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = MLflowLogger(experiment_name="toy", tracking_uri=uri)
    logger.log_hyperparams({"optim": {"lr": 0.01}, "data": {"batch_size": 4}})
    trainer = make_trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[])
    trainer.fit(ToyTask(), loader(), loader(shuffle=False))
    run = MlflowClient(uri).get_run(logger.run_id)
    assert run.data.params == {"optim.lr": "0.01", "data.batch_size": "4"}
    assert {"train/loss", "train/lr", "val/score"} <= set(run.data.metrics)
    assert run.info.status == "FINISHED"
    history = MlflowClient(uri).get_metric_history(logger.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2, 3, 4]
