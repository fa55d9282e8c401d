"""Callback contract: Lightning's hook names with `(trainer, module, ...)` arguments and no-op defaults."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer


class Callback:
    """Override any hook. `state_dict`/`load_state_dict` are saved under `callbacks[state_key]` in checkpoints."""

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule) -> None: ...

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, float], batch: Any, batch_idx: int
    ) -> None: ...

    def on_validation_start(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_validation_batch_end(self, trainer: Trainer, module: TrainModule, batch_idx: int) -> None: ...
    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_exception(self, trainer: Trainer, module: TrainModule, exception: BaseException) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
