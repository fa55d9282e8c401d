"""Mixed precision as one plugin: auto_cast settings, the loss scaler and its checkpointed state.

On CPU Paddle's auto_cast and GradScaler do nothing (fp32 kernels only); the plugin still wires them, so the
configuration reaches them and the scaler state is checkpointed, and it says once that the setting has no effect.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Sequence

import paddle

log = logging.getLogger(__name__)

PRECISIONS = ("32", "fp16", "bf16")
AMP_LEVELS = ("O1", "O2")


class PrecisionPlugin:
    def __init__(
        self,
        precision: str = "32",
        amp_level: str = "O1",
        init_loss_scaling: float = 1024.0,
        use_dynamic_loss_scaling: bool = True,
        custom_black_list: Sequence[str] | None = None,
        custom_white_list: Sequence[str] | None = None,
    ) -> None:
        precision = str(precision)
        if precision not in PRECISIONS:
            raise ValueError(f"trainer.precision={precision!r}: choose one of {PRECISIONS}")
        if amp_level not in AMP_LEVELS:
            raise ValueError(f"trainer.amp_level={amp_level!r}: choose one of {AMP_LEVELS}")
        self.precision = precision
        self.amp_level = amp_level
        self.custom_black_list = list(custom_black_list or [])
        self.custom_white_list = list(custom_white_list or [])
        self.enabled = precision != "32"
        if self.enabled and "gpu" not in paddle.get_device():
            log.warning("trainer.precision=%s has no effect on CPU (Paddle's AMP needs a GPU): the run is fp32", precision)
        self.dtype = "bfloat16" if precision == "bf16" else "float16"
        # bf16 has fp32's exponent range, so it needs no loss scaling.
        self.scaler = (
            paddle.amp.GradScaler(
                init_loss_scaling=init_loss_scaling, use_dynamic_loss_scaling=use_dynamic_loss_scaling
            )
            if self.enabled and precision == "fp16"
            else None
        )

    def setup(self, model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer) -> tuple[Any, Any]:
        # O2 casts the weights themselves: only where fp16/bf16 kernels exist
        if self.enabled and self.amp_level == "O2" and "gpu" in paddle.get_device():
            model, optimizer = paddle.amp.decorate(
                models=model, optimizers=optimizer, level="O2", dtype=self.dtype, master_weight=True
            )
        return model, optimizer

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with paddle.amp.auto_cast(
            enable=True,
            custom_white_list=self.custom_white_list,
            custom_black_list=self.custom_black_list,
            level=self.amp_level,
            dtype=self.dtype,
        ):
            yield

    def backward(self, loss: paddle.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: paddle.optimizer.Optimizer) -> None:
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: paddle.optimizer.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
