"""A toy training run driven from a subprocess, which kills itself with SIGKILL where told (a crash that no handler
sees): `python -m tests.engine.killable_run <dir> <max_epochs> [--kill-at EPOCH,BATCH] [--kill-in-save N]
[--kill-after-rename N] [--term-group-at EPOCH,BATCH] [--workers N] [--resume PREFIX]`. Prints the final global step; saves the final weights to <dir>/final.npy."""
from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import numpy as np

from ocrdet.engine import checkpoint_io
from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyCheckpoint, ToyTask, loader


class KillAt(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


class TermGroupAt(Callback):
    """SIGTERM to the whole process group (main process and loader workers), as SLURM pre-emption sends it."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            os.killpg(os.getpgid(0), signal.SIGTERM)


def kill_during_save(nth: int) -> None:
    """SIGKILL in the middle of the nth checkpoint save, after its weights were staged."""
    original = checkpoint_io.paddle.save
    calls = {"n": 0}

    def save(obj, path, *args, **kwargs):
        original(obj, path, *args, **kwargs)
        if str(path).endswith(".pdopt.tmp"):
            calls["n"] += 1
            if calls["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoint_io.paddle.save = save


def kill_after_rename(nth: int) -> None:
    """SIGKILL right after the nth rename of a checkpoint file into place (3 per save: .pdopt, .states, .pdparams)."""
    original = os.replace
    calls = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        original(src, dst, *args, **kwargs)
        if str(dst).endswith(checkpoint_io.SUFFIXES):
            calls["n"] += 1
            if calls["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoint_io.os.replace = replace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("max_epochs", type=int)
    parser.add_argument("--kill-at")
    parser.add_argument("--kill-in-save", type=int)
    parser.add_argument("--kill-after-rename", type=int)
    parser.add_argument("--resume")
    parser.add_argument("--term-group-at")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.dir)
    callbacks: list[Callback] = [ToyCheckpoint(str(out / "ckpt"), every_n_epochs=1)]
    if args.kill_at:
        epoch, batch = (int(v) for v in args.kill_at.split(","))
        callbacks.append(KillAt(epoch, batch))
    if args.term_group_at:
        epoch, batch = (int(v) for v in args.term_group_at.split(","))
        callbacks.append(TermGroupAt(epoch, batch))
    if args.kill_after_rename:
        kill_after_rename(args.kill_after_rename)
    if args.kill_in_save:
        kill_during_save(args.kill_in_save)
    trainer = Trainer(max_epochs=args.max_epochs, accelerator="cpu", seed=5, callbacks=callbacks)
    task = ToyTask()
    trainer.fit(task, loader(workers=args.workers), loader(shuffle=False), ckpt_path=args.resume)
    np.save(out / "final.npy", np.concatenate([p.numpy().ravel() for p in task.model.parameters()]))
    print(f"global_step={trainer.global_step}")


if __name__ == "__main__":
    main()
