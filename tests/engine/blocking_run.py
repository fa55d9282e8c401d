"""A toy training run whose 10th sample blocks forever in `open()` on a FIFO nobody writes (a hung mount):
`python -m tests.engine.blocking_run <dir> <workers>`. It writes `<dir>/blocked` just before it blocks."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ocrdet.data.datamodule import build_dataloader
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyCheckpoint, ToyDataset, ToyTask, collate

BLOCKING_INDEX = 9  # in the 5th batch of 2: four steps complete before it


class BlockingDataset(ToyDataset):
    def __init__(self, folder: Path) -> None:
        super().__init__(16)
        self.folder = folder

    def __getitem__(self, i: int) -> dict:
        if i == BLOCKING_INDEX:
            (self.folder / "blocked").write_text(str(os.getpid()))
            with open(self.folder / "fifo") as fifo:
                fifo.read()
        return super().__getitem__(i)


def main() -> None:
    out, workers = Path(sys.argv[1]), int(sys.argv[2])
    os.mkfifo(out / "fifo")
    loader = build_dataloader(BlockingDataset(out), batch_size=2, collate_fn=collate, shuffle=False,
                              num_workers=workers)
    trainer = Trainer(max_epochs=1, accelerator="cpu", seed=5, callbacks=[ToyCheckpoint(str(out / "ckpt"))],
                      default_root_dir=str(out))
    trainer.fit(ToyTask(), loader)


if __name__ == "__main__":
    main()
