"""NaN policy: a training step that left non-finite values behind is undone and counted; too many in a row stop.

A NaN loss is caught before backward, but its forward has already moved BatchNorm's running statistics; an update
with a huge learning rate can overflow the weights although the loss was finite. Both leave NaN/Inf in the state
that checkpoints save. `StepGuard` copies what a step can change (trainable parameters, buffers, optimizer
accumulators) before it, checks it after, and puts the copy back when anything is non-finite.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

import paddle

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


def _optimizer_tensors(optimizer: paddle.optimizer.Optimizer | None) -> dict[str, paddle.Tensor]:
    """The optimizer's accumulators (moments, beta powers) and master weights by name (not the LR scheduler)."""
    if optimizer is None:
        return {}
    tensors = {}
    for name, value in optimizer.state_dict().items():
        if isinstance(value, paddle.Tensor):
            tensors[name] = value
        elif name == "master_weights" and isinstance(value, dict):
            tensors.update({f"master_weights/{k}": v for k, v in value.items() if isinstance(v, paddle.Tensor)})
    return tensors


def count_nonfinite(tensors: Iterable[paddle.Tensor]) -> tuple[int, int]:
    """(non-finite tensors, tensors): one device sync for all of them."""
    flags = [paddle.isfinite(t).all() for t in tensors if t.size and paddle.is_floating_point(t)]
    if not flags:
        return 0, 0
    finite = paddle.stack(flags).astype("int32")
    return len(flags) - int(finite.sum().item()), len(flags)


class StepGuard:
    def __init__(self, model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer | None) -> None:
        self.model, self.optimizer = model, optimizer
        self._model_copy: dict[str, paddle.Tensor] = {}
        self._optimizer_copy: dict[str, paddle.Tensor] = {}

    def _changeable(self) -> dict[str, paddle.Tensor]:
        # frozen weights (a CML teacher) cannot change in a step: copying them would double their memory. BN's
        # running statistics are parameters too, with trainable=False, and a forward does change them.
        frozen = {name for name, p in self.model.named_parameters() if p.stop_gradient and p.trainable}
        return {k: v for k, v in self.model.state_dict().items() if k not in frozen}

    @paddle.no_grad()
    def snapshot(self) -> None:
        """Copy what the next step can change."""
        self._model_copy = {k: v.clone() for k, v in self._changeable().items()}
        self._optimizer_copy = {k: v.clone() for k, v in _optimizer_tensors(self.optimizer).items()}

    def nonfinite(self) -> tuple[int, int]:
        """(non-finite, total) over the model's changeable tensors and the optimizer's accumulators."""
        return count_nonfinite([*self._changeable().values(), *_optimizer_tensors(self.optimizer).values()])

    @paddle.no_grad()
    def restore(self) -> None:
        """Put the snapshot back. An accumulator the failed step created (the first step) has no earlier value: it
        is kept when finite, else the run cannot continue from a clean state."""
        current = self._changeable()
        for key, saved in self._model_copy.items():
            current[key].set_value(saved)
        for name, tensor in _optimizer_tensors(self.optimizer).items():
            if name in self._optimizer_copy:
                tensor.set_value(self._optimizer_copy[name])
            elif count_nonfinite([tensor])[0]:
                raise FloatingPointError(
                    f"the first optimizer step left a non-finite optimizer state ({name}), which has no earlier value "
                    "to restore: lower optim.lr or check the data"
                )


class NonFiniteGuard(Callback):
    """The Trainer's NaN policy (`trainer.max_consecutive_nonfinite`): a NaN/Inf loss (no backward) or an update that
    left NaN/Inf in the weights, BN statistics or optimizer state is undone and counted; `max_consecutive` in a row
    stop the run after saving the last good state. Its count is part of the Trainer's loop state (`.states`)."""

    def __init__(self, max_consecutive: int = 5) -> None:
        self.max_consecutive = max_consecutive
        self.nonfinite_steps = 0  # over the whole run, resumed from the checkpoint
        self.consecutive = 0
        self._guard: StepGuard | None = None

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._guard = StepGuard(module.model, trainer.optimizer)

    def on_train_batch_start(self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int) -> None:
        # the first micro-batch of an optimizer step (steps start at multiples of accumulate_grad_batches, also after
        # a resume, which continues from a step boundary): copy what the step may break, to undo it
        if batch_idx % trainer.accumulate_grad_batches == 0:
            self._guard.snapshot()

    @staticmethod
    def loss_problem(loss: paddle.Tensor) -> str | None:
        """Why the step must not go on with this loss (None: it may)."""
        return None if bool(paddle.isfinite(loss).all()) else f"non-finite loss {loss.item()}"

    def update_problem(self) -> str | None:
        """Why the optimizer step just taken must be undone (None: it stands)."""
        bad, total = self._guard.nonfinite()
        if bad:
            return f"the update left {bad} of {total} tensors non-finite"
        self.consecutive = 0
        return None

    def undo(self, trainer: Trainer, what: str, batch_idx: int) -> None:
        """Put the state from before the step back and count it; too many in a row save that state and stop."""
        self._guard.restore()
        self.nonfinite_steps += 1
        self.consecutive += 1
        log.warning(
            "%s at epoch %d batch %d: step undone (%d so far, %d in a row)",
            what, trainer.current_epoch, batch_idx, self.nonfinite_steps, self.consecutive,
        )
        trainer.log_metrics({"train/nonfinite_steps": float(self.nonfinite_steps)})
        if self.consecutive >= self.max_consecutive:
            path = trainer.save_checkpoint(trainer.last_checkpoint_prefix)
            raise FloatingPointError(
                f"{self.consecutive} non-finite steps in a row (epoch {trainer.current_epoch}, batch "
                f"{batch_idx}; last: {what}): stopping. The last good state is saved at {path}; lower optim.lr or "
                "check the data"
            )

    def metrics(self) -> dict[str, float]:
        return {"train/nonfinite_steps": float(self.nonfinite_steps)}
