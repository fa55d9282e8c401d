"""Plain-text progress: one line every `refresh_rate` steps with smoothed losses, lr, samples/s and ETA.

Lines rather than a redrawn bar, so `train.log` and cluster logs stay readable.
"""
from __future__ import annotations

import collections
import datetime
import logging
import statistics
import time
from typing import TYPE_CHECKING, Any

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger("ocrdet.progress")


class ProgressBar(Callback):
    def __init__(self, refresh_rate: int = 10, smooth_window: int = 20) -> None:
        self.refresh_rate = max(1, refresh_rate)
        self.smooth_window = smooth_window
        self._values: dict[str, collections.deque] = {}
        self._samples = 0
        self._t0 = 0.0
        self._fit_t0 = 0.0
        self._fit_steps0 = 0
        self._val_t0 = 0.0

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._fit_t0 = time.perf_counter()
        self._fit_steps0 = trainer.global_step
        log.info(
            "training %s steps (%d batches/epoch, %d optimizer steps/epoch)",
            trainer.estimated_stepping_batches,
            trainer.num_training_batches,
            trainer.steps_per_epoch,
        )

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._t0, self._samples = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, float], batch: Any, batch_idx: int
    ) -> None:
        self._samples += module.batch_size(batch) * trainer.world_size
        for name, value in outputs.items():
            self._values.setdefault(name, collections.deque(maxlen=self.smooth_window)).append(value)
        if (batch_idx + 1) % self.refresh_rate and batch_idx + 1 != trainer.num_training_batches:
            return
        if not trainer.is_global_zero:
            return
        now = time.perf_counter()
        samples_per_s = self._samples / max(now - self._t0, 1e-9)
        done = trainer.global_step - self._fit_steps0
        left = max(trainer.estimated_stepping_batches - trainer.global_step, 0)
        eta = (now - self._fit_t0) / done * left if done else 0.0
        losses = " ".join(
            f"{name.split('/', 1)[-1]}={statistics.median(vals):.4f}"
            for name, vals in self._values.items()
            if name != "train/lr"
        )
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs is not None else ""
        log.info(
            "epoch %d%s [%d/%d] step %d | %s | lr=%.6g | %.2f samples/s | eta %s",
            trainer.current_epoch + 1,
            epochs,
            batch_idx + 1,
            trainer.num_training_batches,
            trainer.global_step,
            losses,
            outputs.get("train/lr", float("nan")),
            samples_per_s,
            datetime.timedelta(seconds=int(eta)),
        )

    def on_validation_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._val_t0 = time.perf_counter()

    def on_validation_batch_end(self, trainer: Trainer, module: TrainModule, batch_idx: int) -> None:
        done = batch_idx + 1
        if trainer.is_global_zero and (done % (self.refresh_rate * 5) == 0):
            elapsed = time.perf_counter() - self._val_t0
            eta = elapsed / done * (trainer.num_val_batches - done)
            log.info(
                "eval [%d/%d] %.2f images/s | eta %s",
                done,
                trainer.num_val_batches,
                done / elapsed,
                datetime.timedelta(seconds=int(eta)),
            )

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        if trainer.is_global_zero:
            metrics = " ".join(f"{k}={v:.6f}" for k, v in trainer.callback_metrics.items() if k.startswith("val/"))
            log.info("eval at step %d: %s (%.1f s)", trainer.global_step, metrics, time.perf_counter() - self._val_t0)
