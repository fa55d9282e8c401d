"""Undoing a training step that left non-finite values behind.

A NaN loss is caught before backward, but its forward has already moved BatchNorm's running statistics; an update
with a huge learning rate can overflow the weights although the loss was finite. Both leave NaN/Inf in the state
that checkpoints save. `StepGuard` copies what a step can change (trainable parameters, buffers, optimizer
accumulators) before it, checks it after, and puts the copy back when anything is non-finite.
"""
from __future__ import annotations

from typing import Iterable

import paddle


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
