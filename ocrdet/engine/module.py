"""The LightningModule-shaped contract the Trainer drives.

A task owns the network (`self.model`, a `paddle.nn.Layer`) and describes one training/validation step; the Trainer
owns the loop, devices, precision, checkpoints and logging. Hooks keep Lightning's names so Lightning users need no
new vocabulary.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import paddle

if TYPE_CHECKING:
    from ocrdet.engine.trainer import Trainer


class TrainModule:
    """Base class of tasks. Subclasses set `self.model` and implement the step methods."""

    model: paddle.nn.Layer

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        # set by the Trainer when several ranks train: the DataParallel wrapper that averages gradients
        self.distributed_model: paddle.nn.Layer | None = None
        self._logged: dict[str, tuple[float, bool]] = {}

    # ---- steps -----------------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> dict[str, paddle.Tensor]:
        """Return a dict holding at least `loss` (a 0-D tensor)."""
        raise NotImplementedError

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        raise NotImplementedError

    def compile_training_step(self) -> None:
        """Make `training_step` run its forward and loss (and their backward) as one static program from now on
        (`trainer.compile=true`); results must equal the eager step's to float rounding. Tasks that cannot say so."""
        raise NotImplementedError(f"{type(self).__name__} has no compiled training step: set trainer.compile=false")

    def configure_optimizers(self) -> dict[str, Any]:
        """Return `{"optimizer": opt, "lr_scheduler": {"scheduler": s, "interval": "step"}}`."""
        raise NotImplementedError

    # ---- what a batch holds -----------------------------------------------------------------------------------
    def batch_size(self, batch: Any) -> int:
        """Samples in `batch` (throughput, progress, the bad-data share): by default the leading dimension of its
        first array (a dict's first value, a sequence's first item). Override when that is not the sample axis."""
        if isinstance(batch, dict):
            batch = next(iter(batch.values()))
        elif isinstance(batch, (list, tuple)):
            batch = batch[0]
        return int(batch.shape[0])

    def skipped_samples(self, batch: Any) -> int:
        """Draws the data pipeline dropped (unusable samples) to produce `batch`; 0 unless the task's data reports
        them. The Trainer stops when they exceed `max_bad_fraction` of an epoch's draws."""
        return 0

    # ---- hooks (no-ops by default; the Trainer calls each after the callbacks' hook of the same name) -----------
    def setup(self, stage: str) -> None: ...
    def on_fit_start(self) -> None: ...
    def on_fit_end(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None: ...
    def on_train_batch_end(self, outputs: dict[str, float], batch: Any, batch_idx: int) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_end(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_batch_start(self, batch: Any, batch_idx: int) -> None: ...
    def on_validation_batch_end(self, batch_idx: int) -> None: ...

    def on_validation_epoch_end(self) -> dict[str, float]:
        """Return the epoch's validation metrics."""
        return {}

    def validation_metric_names(self) -> list[str] | None:
        """The names `on_validation_epoch_end` returns, known before training (None: not declared), so a checkpoint
        monitor naming none of them fails at once instead of never saving a best checkpoint."""
        return None

    def on_before_backward(self, loss: paddle.Tensor) -> None: ...
    def on_after_backward(self) -> None: ...
    def on_before_optimizer_step(self, optimizer: paddle.optimizer.Optimizer) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...

    # ---- logging -----------------------------------------------------------------------------------------------
    def log(self, name: str, value: float | paddle.Tensor, prog_bar: bool = False) -> None:
        """Record a scalar for the current step; the Trainer hands it to the loggers and the progress bar."""
        if isinstance(value, paddle.Tensor):
            value = value.item()
        self._logged[name] = (float(value), prog_bar)

    def pop_logged(self) -> dict[str, tuple[float, bool]]:
        logged, self._logged = self._logged, {}
        return logged

    # ---- conveniences ------------------------------------------------------------------------------------------
    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    @property
    def train_model(self) -> paddle.nn.Layer:
        """The model to call in `training_step`: the DataParallel wrapper on several ranks, else the model."""
        return self.distributed_model if self.distributed_model is not None else self.model

    def trainable_parameters(self) -> list[paddle.Tensor]:
        """Parameters the optimizer should see: frozen ones (stop_gradient) get no optimizer state."""
        return [p for p in self.model.parameters() if not p.stop_gradient]

    @property
    def global_step(self) -> int:
        return self.trainer.global_step if self.trainer else 0

    @property
    def current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer else 0
