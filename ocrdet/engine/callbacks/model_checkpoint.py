"""Checkpoints in PaddleOCR's layout: `best_accuracy.*` when the monitored metric improves, `latest.*` every
epoch, `iter_epoch_N.*` every N epochs (N counts epochs from 1, as PaddleOCR does)."""
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
        monitor: str | None = "val/hmean",
        mode: str = "max",
        save_last: bool = True,
        every_n_epochs: int | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"ModelCheckpoint mode={mode!r}: choose max or min")
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.save_last = save_last
        self.every_n_epochs = every_n_epochs
        self.best_score: float | None = None
        self.best_model_dict: dict[str, Any] = {}
        self.best_model_path: str = ""
        self.last_model_path: str = ""

    def _improved(self, score: float) -> bool:
        if self.best_score is None:
            return True
        # ">=" as PaddleOCR: on a tie the later model becomes the best
        return score >= self.best_score if self.mode == "max" else score <= self.best_score

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        if self.monitor is None:
            return
        if self.monitor not in trainer.callback_metrics:
            log.warning("monitor %r is not among the validation metrics %s: no best checkpoint saved", self.monitor,
                        sorted(trainer.callback_metrics))
            return
        score = trainer.callback_metrics[self.monitor]
        if not self._improved(score):
            return
        self.best_score = score
        self.best_model_dict = {
            **{k.split("/")[-1]: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
            "best_epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
        }
        path = trainer.save_checkpoint(self.dirpath / "best_accuracy", self.best_model_dict)
        if path is not None:
            self.best_model_path = str(path)
            log.info("new best %s=%.6f, saved %s", self.monitor, score, path)

    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule) -> None:
        epoch = trainer.current_epoch
        if self.every_n_epochs and epoch > 0 and trainer.batch_idx == 0 and epoch % self.every_n_epochs == 0:
            trainer.save_checkpoint(self.dirpath / f"iter_epoch_{epoch}", self.best_model_dict)
        if self.save_last:
            path = trainer.save_checkpoint(self.dirpath / "latest", self.best_model_dict)
            self.last_model_path = str(path or "")

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_model_dict": self.best_model_dict,
            "best_model_path": self.best_model_path,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score = state.get("best_score")
        self.best_model_dict = state.get("best_model_dict", {})
        self.best_model_path = state.get("best_model_path", "")
