"""The student end to end through the real configs: train writes PaddleOCR-layout checkpoints and an MLflow run,
resume continues, finetune reports what it loaded, ocrdet-eval prints the metric line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ocrdet.cli.config import compose_config
from ocrdet.cli.train import run_train


def train(tmp_path: Path, overrides: list[str], run: str = "run"):
    cfg = compose_config("train", overrides, output_dir=tmp_path / run)
    return cfg, run_train(cfg)


def test_two_step_fit_writes_checkpoints_and_mlflow_run(tmp_path, tiny):
    cfg, metrics = train(tmp_path, tiny)
    ckpt = tmp_path / "run" / "checkpoints"
    for prefix in ("best_accuracy", "latest"):
        for ext in ("pdparams", "pdopt", "states"):
            assert (ckpt / f"{prefix}.{ext}").is_file()
    assert set(metrics) == {"val/precision", "val/recall", "val/hmean"}

    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.data.params["optim.lr"] == "0.002"
    assert run.data.params["model.neck.out_channels"] == "96" and "neck.out_channels" not in run.data.params
    assert {"train/loss", "train/loss_shrink_maps", "train/loss_threshold_maps", "train/loss_binary_maps",
            "train/lr", "val/hmean", "val/precision", "val/recall"} <= set(run.data.metrics)
    assert run.info.status == "FINISHED"


def test_resume_continues_from_latest(tmp_path, tiny):
    train(tmp_path, tiny, "first")
    latest = tmp_path / "first" / "checkpoints" / "latest"
    cfg = compose_config("train", [*tiny, "trainer.max_epochs=2", f"resume={latest}"], output_dir=tmp_path / "second")
    from ocrdet.cli.build import build_data, build_task, build_trainer

    trainer = build_trainer(cfg, None)
    trainer.fit(build_task(cfg), build_data(cfg).train_dataloader(), None, ckpt_path=str(latest))
    assert trainer.current_epoch == 2 and trainer.global_step == 4


def test_finetune_refuses_a_file_that_matches_nothing(tmp_path, tiny):
    import paddle

    paddle.save({"foo.weight": paddle.zeros([2])}, str(tmp_path / "foreign.pdparams"))
    with pytest.raises(ValueError, match="foreign.pdparams"):
        train(tmp_path, [*tiny, "finetune=pretrained", f"finetune.pretrained={tmp_path / 'foreign.pdparams'}"])


def test_eval_cli_prints_metric_line(tmp_path, tiny):
    train(tmp_path, tiny)
    weights = tmp_path / "run" / "checkpoints" / "best_accuracy.pdparams"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-m", "ocrdet.cli.eval", f"weights={weights}", *[o for o in tiny if o.startswith("data.")],
         f"paths.output_root={tmp_path}/outputs"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"precision=\d\.\d{6} recall=\d\.\d{6} hmean=\d\.\d{6}", last), last


def test_resume_auto_continues_the_same_run_dir_and_mlflow_run(tmp_path, tiny):
    cfg, _ = train(tmp_path, tiny)
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (first,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    # the same run dir again with more epochs: resume=auto picks checkpoints/latest and the run's MLflow id
    # (more epochs stretch the cosine schedule: a change a resume accepts only when asked)
    cfg2 = compose_config("train", [*tiny, "trainer.max_epochs=2", "resume=auto", "resume_allow_changes=[trainer.max_epochs]"],
                          output_dir=tmp_path / "run")
    run_train(cfg2)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert [r.info.run_id for r in runs] == [first.info.run_id]
    steps = [m.step for m in client.get_metric_history(first.info.run_id, "train/loss")]
    assert steps == [1, 2, 3, 4]
