"""PaddleOCR's checkpoint layout is the detection layer's configuration of the generic engine: `PaddleOCRCheckpoint`
writes `best_accuracy`/`latest`/`iter_epoch_N` sets whose `.states` carry PaddleOCR's `best_model_dict`, `epoch` and
`global_step` (shown here on the engine's toy regression, which logs `val/score`)."""
from __future__ import annotations

import pickle

import paddle

from ocrdet.det.callbacks import PaddleOCRCheckpoint
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyTask, loader


def test_two_step_fit_writes_paddleocr_checkpoint_layout(tmp_path):
    checkpoint = PaddleOCRCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val/score", every_n_epochs=1)
    trainer = Trainer(accelerator="cpu", default_root_dir=str(tmp_path), seed=7, max_epochs=1, limit_train_batches=2,
                      callbacks=[checkpoint])
    trainer.fit(ToyTask(), loader(), loader(shuffle=False))
    assert trainer.global_step == 2
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == sorted(
        f"{prefix}.{ext}" for prefix in ("best_accuracy", "latest", "iter_epoch_1") for ext in ("pdparams", "pdopt", "states")
    )
    with open(tmp_path / "ckpt" / "best_accuracy.states", "rb") as f:
        states = pickle.load(f)
    assert states["epoch"] == 1 and states["global_step"] == 2
    assert states["best_model_dict"]["best_epoch"] == 1
    assert set(states["best_model_dict"]) >= {"score", "best_epoch"}
    # the callback's state keeps the keys earlier runs wrote, so their resumes restore it
    assert set(states["callbacks"]["ModelCheckpoint"]) == {"best_score", "best_model_dict", "best_model_path"}
    params = paddle.load(str(tmp_path / "ckpt" / "latest.pdparams"))
    assert sorted(params) == ["bias", "weight"]  # the model's own keys: PaddleOCR's layout, no wrapper prefix
