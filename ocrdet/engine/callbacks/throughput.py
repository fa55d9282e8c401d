"""Training throughput (samples/s), logged per epoch."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer


class ThroughputMonitor(Callback):
    """Logs `train/samples_per_s` (all ranks' samples per second of training, evaluation time excluded) every
    `trainer.log_every_n_steps` optimizer steps."""

    def __init__(self) -> None:
        self._samples = 0
        self._t0 = 0.0
        self._last_step = -1

    def _reset(self) -> None:
        self._samples, self._t0 = 0, time.perf_counter()

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._reset()

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._reset()

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, float], batch: Any, batch_idx: int
    ) -> None:
        self._samples += module.batch_size(batch) * trainer.world_size
        step = trainer.global_step
        if step == self._last_step or step % trainer.log_every_n_steps:
            return  # no optimizer step on this batch (accumulation), or not a logging step
        self._last_step = step
        elapsed = time.perf_counter() - self._t0
        if trainer.is_global_zero and elapsed > 0:
            for logger in trainer.loggers:
                logger.log_metrics({"train/samples_per_s": self._samples / elapsed}, step)
        self._reset()
