"""Checkpoint sets (`<name>.pdparams/.pdopt/.states`, see `checkpoint_io`): `best_name` when the monitored metric
improves, `last_name` every epoch, `every_n_epochs_name` every N epochs (N counts epochs from 1). The names are
arguments so a task's layout (PaddleOCR's, see `ocrdet.det.callbacks.PaddleOCRCheckpoint`) is configuration."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


class ModelCheckpoint(Callback):
    def __init__(
        self,
        dirpath: str,
        monitor: str | None = None,
        mode: str = "max",
        save_last: bool = True,
        every_n_epochs: int | None = None,
        best_name: str = "best",
        last_name: str = "last",
        every_n_epochs_name: str = "epoch_{epoch}",
    ) -> None:
        """`monitor=None` saves no best set, only `last_name` (and the every-N-epochs sets)."""
        if mode not in ("max", "min"):
            raise ValueError(f"ModelCheckpoint mode={mode!r}: choose max or min")
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.save_last = save_last
        self.every_n_epochs = every_n_epochs
        self.best_name, self.last_name, self.every_n_epochs_name = best_name, last_name, every_n_epochs_name
        self.best_score: float | None = None
        self.best_model_path: str = ""
        self.last_model_path: str = ""

    @property
    def state_key(self) -> str:
        # fixed, so a subclass (a task's layout) reads the state that an earlier run of either class wrote
        return "ModelCheckpoint"

    def _improved(self, score: float) -> bool:
        if self.best_score is None:
            return True
        # ">=" as PaddleOCR: on a tie the later model becomes the best
        return score >= self.best_score if self.mode == "max" else score <= self.best_score

    def on_best(self, trainer: Trainer, score: float) -> None:
        """Called when the monitored metric improved, before the best set is written (a layout records its summary)."""

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        if self.monitor is None or trainer.sanity_checking:  # sanity batches judge no model (Lightning's rule)
            return
        if self.monitor not in trainer.callback_metrics:
            log.warning("monitor %r is not among the validation metrics %s: no best checkpoint saved", self.monitor,
                        sorted(trainer.callback_metrics))
            return
        score = trainer.callback_metrics[self.monitor]
        if not self._improved(score):
            return
        self.best_score = score
        self.on_best(trainer, score)
        path = trainer.save_checkpoint(self.dirpath / self.best_name)
        if path is not None:
            self.best_model_path = str(path)
            log.info("new best %s=%.6f, saved %s", self.monitor, score, path)

    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule) -> None:
        epoch = trainer.current_epoch
        if self.every_n_epochs and epoch > 0 and trainer.batch_idx == 0 and epoch % self.every_n_epochs == 0:
            trainer.save_checkpoint(self.dirpath / self.every_n_epochs_name.format(epoch=epoch))
        if self.save_last:
            path = trainer.save_checkpoint(self.dirpath / self.last_name)
            self.last_model_path = str(path or "")

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_model_path": self.best_model_path}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score = state.get("best_score")
        self.best_model_path = state.get("best_model_path", "")
