"""The four uses as typed: groups switched for training carry to eval/export/predict, `resume=auto` finds the run
or sweep started with the same overrides, MLflow runs get their own names, and the commands explain themselves
(`--help`, `--info`, types checked when the config is composed)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ocrdet.cli.config import run_dir
from tests.integration.conftest import TINY


def cli(args: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def test_a_group_switched_for_training_carries_to_eval_export_and_predict(tmp_path):
    cli(["ocrdet.cli.train", "neck=db_fpn", *TINY, "trainer.max_steps=2"], cwd=tmp_path)
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    image = tmp_path / "img.png"
    image.write_bytes((run / "val_images" / "step_2" / "val_0.png").read_bytes())

    evaluated = cli(["ocrdet.cli.eval", f"weights={run}"], cwd=tmp_path)
    assert evaluated.stdout.strip().splitlines()[-1].startswith("precision=")
    log = evaluated.stdout + evaluated.stderr
    assert "trained with neck=db_fpn" in log  # the log says where the model settings came from
    # the run's eval settings (TINY's 64 px val images, 2 of them) came along too
    assert "2 images" in log

    exported = cli(["ocrdet.cli.export", f"weights={run}/checkpoints/best_accuracy", "-o", "exp"], cwd=tmp_path)
    assert (tmp_path / "exp" / "inference.pdiparams").is_file(), exported.stdout
    predicted = cli(["ocrdet.cli.predict", f"weights={run}", f"input={image}", "output=pred"], cwd=tmp_path)
    assert (tmp_path / "pred" / "det_results.txt").read_text().startswith("img.png\t"), predicted.stdout

    # a group that contradicts the weights: an error naming the run's groups and the conflicting override
    clash = cli(["ocrdet.cli.eval", f"weights={run}", "neck=rse_fpn"], cwd=tmp_path, ok=False)
    assert clash.returncode != 0
    assert f"The weights come from run {run} (trained with neck=db_fpn" in clash.stderr + clash.stdout
    assert "this command sets neck=rse_fpn" in clash.stderr + clash.stdout


def test_resume_auto_picks_the_latest_dir_started_with_the_same_overrides(tmp_path):
    base = tmp_path / "runs"
    for name, overrides in (("2026-01-01_00-00-00", ["neck=db_fpn"]), ("2026-01-02_00-00-00", ["neck=rse_fpn"]),
                            ("2026-01-03_00-00-00", ["neck=db_fpn", "optim.lr=1e-4"])):
        (base / name / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(overrides), base / name / ".hydra" / "overrides.yaml")
    new = "2026-02-01_00-00-00"
    # not resuming, or no match: a new dir
    assert run_dir(str(base), new, None, ["neck=db_fpn"]) == str(base / new)
    assert run_dir(str(base), new, "auto", ["neck=lk_pan", "resume=auto"]) == str(base / new)
    assert not (base / f".resume-{new}").exists()
    # the latest with the same overrides (resume= aside), not merely the latest
    assert run_dir(str(base), new, "auto", ["neck=db_fpn", "resume=auto"]) == str(base / "2026-01-01_00-00-00")
    # the choice is recorded for the sweep's jobs, which resolve with their own overrides in other processes
    assert (base / f".resume-{new}").read_text() == str(base / "2026-01-01_00-00-00")
    assert run_dir(str(base), new, "auto", ["neck=db_fpn", "optim.lr=1e-4"]) == str(base / "2026-01-01_00-00-00")
    # a sweep dir is matched by the overrides in its multirun.yaml
    sweep = tmp_path / "multiruns" / "2026-01-04_00-00-00"
    sweep.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": ["optim.lr=1e-3,5e-4", "resume=auto"]}}}),
                   sweep / "multirun.yaml")
    assert run_dir(str(sweep.parent), new, "auto", ["optim.lr=1e-3,5e-4"]) == str(sweep)


def test_two_runs_without_names_get_different_names(tmp_path):
    from ocrdet.engine.loggers.mlflow import MLflowLogger

    names = []
    for _ in range(2):
        random.seed(1024)  # what seed_everything does before the logger is built: MLflow's own names repeat
        logger = MLflowLogger("names", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        names.append(logger.client.get_run(logger.run_id).info.run_name)
        logger.finalize("FINISHED")
    assert names[0] != names[1] and all(n.count("-") == 2 for n in names)
    experiment = logger.client.get_experiment(logger.experiment_id)
    # artifacts beside the store, not in ./mlruns of the working directory
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()


def test_help_says_what_the_command_does(tmp_path):
    for module, name in (("ocrdet.cli.train", "ocrdet-train"), ("ocrdet.cli.eval", "ocrdet-eval"),
                         ("ocrdet.cli.export", "ocrdet-export"), ("ocrdet.cli.predict", "ocrdet-predict")):
        text = cli([module, "--help"], cwd=tmp_path).stdout
        assert text.startswith(f"{name}: "), text[:200]
        assert "Usage:" in text and "Examples:" in text and "neck: db_fpn, lk_pan, rse_fpn" in text
        assert "_target_" not in text  # no config dump
    info = cli(["ocrdet.cli.train", "--info"], cwd=tmp_path)
    assert (info.stdout + info.stderr).count("Installed Hydra Plugins") == 1


@pytest.mark.parametrize("override, message", [
    ("trainer.max_steps=ten", "trainer.max_steps='ten': expected int, got str"),
    ("optim.lr=abc", "optim.lr='abc': expected float, got str"),
    ("model.neck.out_channels=1.5", "model.neck.out_channels=1.5: expected int, got float"),
])
def test_a_wrong_type_is_named_when_the_config_is_composed(tmp_path, override, message):
    out = cli(["ocrdet.cli.train", override, "logger=none"], cwd=tmp_path, ok=False)
    assert out.returncode != 0 and message in out.stderr + out.stdout
    assert not (tmp_path / "outputs" / "train" / "runs").exists() or not list(
        (tmp_path / "outputs" / "train" / "runs").glob("*/checkpoints"))


def test_the_local_cluster_keeps_only_what_submitit_s_local_executor_takes():
    from hydra_plugins.ocrdet_submitit.launcher import SubmititLauncher

    local = SubmititLauncher(cluster="local", partition="gpu", account="a", setup=["source x"], timeout_min=5,
                             submitit_folder="f", max_num_timeout=1)
    assert local.params == {"timeout_min": 5, "submitit_folder": "f", "max_num_timeout": 1}
    slurm = SubmititLauncher(cluster="slurm", partition="gpu", submitit_folder="f")
    assert slurm.params == {"partition": "gpu", "submitit_folder": "f"} and slurm._EXECUTOR == "slurm"
    with pytest.raises(ValueError, match="hydra.launcher.cluster='pbs'"):
        SubmititLauncher(cluster="pbs")
