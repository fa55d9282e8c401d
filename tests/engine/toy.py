"""A tiny regression task that drives the Trainer without any detection code (fast and exact): its batches hold `x`
and `y`, its validation metric is `val/score`."""
from __future__ import annotations

import numpy as np
import paddle

from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.module import TrainModule
from ocrdet.engine.optim import adam_warmup_cosine


class ToyDataset(paddle.io.Dataset):
    def __init__(self, n: int = 16, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 4)).astype("float32")
        self.y = (self.x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {"x": self.x[i], "y": self.y[i]}


def collate(samples: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


class ToyTask(TrainModule):
    def __init__(self) -> None:
        super().__init__()
        paddle.seed(0)
        self.model = paddle.nn.Linear(4, 1)
        self.val_errors: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = paddle.nn.functional.mse_loss(self.model(batch["x"]), batch["y"])
        self.log("train/loss", loss)
        return {"loss": loss}

    def on_validation_epoch_start(self) -> None:
        self.val_errors = []

    def validation_step(self, batch, batch_idx) -> None:
        err = paddle.nn.functional.mse_loss(self.model(batch["x"]), batch["y"])
        self.val_errors.append(err.item())

    def on_validation_epoch_end(self) -> dict[str, float]:
        return {"val/score": 1.0 / (1.0 + float(np.mean(self.val_errors)))}

    def configure_optimizers(self):
        optimizer, scheduler = adam_warmup_cosine(
            self.trainable_parameters(),
            steps_per_epoch=self.trainer.steps_per_epoch,
            total_steps=self.trainer.estimated_stepping_batches,
            lr=0.01,
            warmup_epochs=1.0,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def loader(n: int = 16, batch_size: int = 4, shuffle: bool = True, workers: int = 0) -> paddle.io.DataLoader:
    from ocrdet.data.datamodule import build_dataloader

    return build_dataloader(ToyDataset(n), batch_size=batch_size, collate_fn=collate, shuffle=shuffle,
                            num_workers=workers)


class ToyCheckpoint(ModelCheckpoint):
    """The engine's ModelCheckpoint configured as the detection config configures its own: PaddleOCR's file names and
    a monitored metric, so these tests pin the same files as before (the names are arguments, not engine knowledge)."""

    def __init__(self, dirpath: str, monitor: str | None = "val/score", **kwargs) -> None:
        super().__init__(dirpath, monitor=monitor, best_name="best_accuracy", last_name="latest",
                         every_n_epochs_name="iter_epoch_{epoch}", **kwargs)
