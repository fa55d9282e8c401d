"""Loader worker processes end with their epoch. Paddle's multi-process iterator stops its workers only when driven
to its end or collected, and its reader thread keeps it from being collected; the fit loop stops at
`num_training_batches` without asking for the end, so before `close_iterator` every epoch (and every limited
validation) left its workers alive, each pinning a copy-on-write snapshot of the trainer's memory: a 12-epoch CPU
finetune went out of memory after 7 epochs."""
from __future__ import annotations

import os
from pathlib import Path

import paddle

from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyDataset, ToyTask, collate


def live_children() -> list[int]:
    """Processes whose parent is this one and that have not exited (zombies not counted)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_each_epochs_and_each_validations_workers_end_with_them(tmp_path):
    before = set(live_children())
    train = paddle.io.DataLoader(ToyDataset(16), batch_size=2, shuffle=True, num_workers=2, collate_fn=collate)
    val = paddle.io.DataLoader(ToyDataset(8, seed=1), batch_size=2, num_workers=1, collate_fn=collate)
    trainer = Trainer(accelerator="cpu", seed=3, max_epochs=4, limit_train_batches=3, limit_val_batches=2,
                      num_sanity_val_steps=1, default_root_dir=str(tmp_path), callbacks=[], logger=None)
    trainer.fit(ToyTask(), train, val)
    assert trainer.current_epoch == 4 and trainer.global_step == 12  # 4 epochs of 3 of the 8 batches
    # 4 training epochs x 2 workers and 1 sanity + 4 validations x 1 worker were started: none is left
    assert set(live_children()) - before == set()


def test_the_detection_train_loader_closes_its_workers(tmp_path):
    """The data module's TrainLoader (float batches in the main process) passes `close` on to Paddle's iterator."""
    from hydra.utils import instantiate

    from ocrdet.cli.config import compose_config
    from tests.integration.conftest import TINY

    before = set(live_children())
    cfg = compose_config("train", [*TINY, "data.num_workers=2", "data.train.num_samples=8"], output_dir=tmp_path)
    batches = iter(instantiate(cfg.data).train_dataloader())
    assert next(batches)["image"].shape == [2, 3, 64, 64]
    assert len(set(live_children()) - before) == 2
    batches.close()
    assert set(live_children()) - before == set()
