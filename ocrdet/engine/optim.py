"""PP-OCRv3's optimizer: Adam with coupled L2 decay, linear warmup then cosine (or constant, PaddleOCR's `Const`, the
schedule of an `lr` block without `name`), stepped once per iteration.

Configured as a Hydra partial; the task completes it once the Trainer knows the steps per epoch.
"""
from __future__ import annotations

from typing import Sequence

import paddle


SCHEDULES = ("cosine", "constant")


def _constant(step: int) -> float:
    return 1.0


def warmup_cosine_schedule(
    lr: float, steps_per_epoch: int, total_steps: int, warmup_epochs: float, schedule: str = "cosine"
) -> paddle.optimizer.lr.LRScheduler:
    """lr·t/W for t < W, then the cosine evaluated at t−W with the *full* T_max (so it never reaches 0), as in
    PaddleOCR: W = round(warmup_epochs · steps_per_epoch), T_max = total optimizer steps. `schedule='constant'`
    holds lr after the warmup (PaddleOCR's Const)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r}; choose one of {list(SCHEDULES)}")
    if schedule == "cosine":
        base = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=lr, T_max=max(1, total_steps))
    else:
        base = paddle.optimizer.lr.LambdaDecay(learning_rate=lr, lr_lambda=_constant)
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if warmup_steps <= 0:
        return base
    return paddle.optimizer.lr.LinearWarmup(
        learning_rate=base, warmup_steps=warmup_steps, start_lr=0.0, end_lr=lr
    )


def adam_warmup_cosine(
    parameters: Sequence[paddle.Tensor],
    steps_per_epoch: int,
    total_steps: int,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 5e-5,
    warmup_epochs: float = 2.0,
    grad_clip_norm: float | None = None,
    schedule: str = "cosine",
) -> tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]:
    """Build (optimizer, scheduler). `weight_decay` is coupled L2 (added to the gradient of every trainable
    parameter, BN included), exactly what PaddleOCR's `regularizer: L2` does."""
    scheduler = warmup_cosine_schedule(lr, steps_per_epoch, total_steps, warmup_epochs, schedule)
    optimizer = paddle.optimizer.Adam(
        learning_rate=scheduler,
        beta1=beta1,
        beta2=beta2,
        epsilon=epsilon,
        parameters=list(parameters),
        weight_decay=paddle.regularizer.L2Decay(weight_decay) if weight_decay else None,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(grad_clip_norm) if grad_clip_norm else None,
    )
    return optimizer, scheduler
