"""Bad-data policy: the data pipeline drops unusable samples (an unreadable file, a broken label) and draws others;
when too large a share of an epoch's draws is dropped, the data is broken, not noisy, and the run stops."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


class BadSampleGuard(Callback):
    """The Trainer's bad-data policy (`trainer.max_bad_fraction`). The module says how many samples a batch holds and
    how many draws were dropped to make it (`TrainModule.batch_size`, `TrainModule.skipped_samples`): datasets run in
    worker processes, whose own counters the main process cannot see."""

    MIN_DRAWS = 20  # a couple of bad files at the very start of an epoch are no verdict on the data

    def __init__(self, max_bad_fraction: float = 0.05) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.epoch_samples = 0  # samples trained this epoch (this rank)
        self.epoch_skipped = 0  # draws dropped to produce them

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        self.epoch_samples = self.epoch_skipped = 0

    def on_train_batch_start(self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int) -> None:
        skipped = module.skipped_samples(batch)
        self.epoch_samples += module.batch_size(batch)
        self.epoch_skipped += skipped
        drawn = self.epoch_samples + self.epoch_skipped
        if self.epoch_skipped and self.epoch_skipped / drawn > self.max_bad_fraction and drawn >= self.MIN_DRAWS:
            raise RuntimeError(
                f"{self.epoch_skipped} of {drawn} samples drawn this epoch were unusable (> max_bad_fraction="
                f"{self.max_bad_fraction}); the log names each file and reason"
            )

    def epoch_metrics(self, epoch: int) -> dict[str, float]:
        if self.epoch_skipped:
            log.warning("epoch %d: %d bad samples skipped (reasons above)", epoch, self.epoch_skipped)
        return {"train/skipped_samples": float(self.epoch_skipped)}
