"""Callbacks for the exact-resume tests: pre-emption at a known step, and records of what a run trained on."""
from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ocrdet.engine.callbacks.base import Callback


class TermAfterStep(Callback):
    """SIGTERM to this process's group after optimizer step `step`, as SLURM pre-emption sends it (`kill -TERM --
    -<pgid>`: the main process and its loader workers; run the training in a session of its own)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.killpg(os.getpgid(0), signal.SIGTERM)


class RecordBatches(Callback):
    """Appends `{"step": n, "batch": <sha1 of every array of the batch>}` per optimizer step to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        digest = hashlib.sha1()
        for key in sorted(batch):
            value = batch[key]
            if isinstance(value, (paddle.Tensor, np.ndarray)):
                digest.update(key.encode() + np.ascontiguousarray(np.asarray(value)).tobytes())
        with self.path.open("a") as out:
            out.write(json.dumps({"step": trainer.global_step, "batch": digest.hexdigest()}) + "\n")


class SaveStateAt(Callback):
    """Saves the model and optimizer state after optimizer step `step`, as `<prefix>.pdparams/.pdopt`."""

    def __init__(self, step: int, prefix: str) -> None:
        self.step, self.prefix = step, prefix

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            paddle.save(module.model.state_dict(), self.prefix + ".pdparams")
            paddle.save(trainer.optimizer.state_dict(), self.prefix + ".pdopt")
