"""The text-detection task: one DB model trained with DBLoss, evaluated with DBPostProcess + the ICDAR metric."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import paddle

from ocrdet.engine.module import TrainModule


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, paddle.Tensor) else np.asarray(value)


class DetectionTask(TrainModule):
    def __init__(
        self,
        model: paddle.nn.Layer,
        loss: paddle.nn.Layer,
        postprocess: Callable[[np.ndarray, np.ndarray], list[dict]],
        metric: Any,
        optimizer: Callable[..., tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.postprocess = postprocess
        self.metric = metric
        self.optimizer_factory = optimizer

    def forward_eval(self, image: paddle.Tensor) -> np.ndarray:
        """Shrink-probability maps [N,1,H,W] of the evaluated model."""
        return self.model(image)["maps"].numpy()

    def training_step(self, batch: dict[str, paddle.Tensor], batch_idx: int) -> dict[str, paddle.Tensor]:
        predictions = self.model(batch["image"])
        losses = self.loss(predictions, batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss")
        return losses

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        maps = self.forward_eval(batch["image"])
        boxes = self.postprocess(maps, _numpy(batch["shape"]))
        self.metric.update(
            [b["points"] for b in boxes],
            [_numpy(p) for p in batch["polys"]],
            [_numpy(t).astype(bool) for t in batch["ignore_tags"]],
        )

    def on_validation_epoch_start(self) -> None:
        self.metric.reset()

    def on_validation_epoch_end(self) -> dict[str, float]:
        return {f"val/{k}": float(v) for k, v in self.metric.compute().items()}

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured: set the `optim` group")
        optimizer, scheduler = self.optimizer_factory(
            parameters=self.trainable_parameters(),
            steps_per_epoch=self.trainer.steps_per_epoch,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
