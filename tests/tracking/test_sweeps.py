"""`--multirun` sweeps end to end on tiny synthetic data: one MLflow parent per sweep with one child run per job
(params, group tags, metrics, image artifacts), a log file and an output dir per job, the same with the joblib
launcher in parallel processes, `ocrdet-compare` over the runs, the SLURM launcher config, the returned metric."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TINY

pytestmark = pytest.mark.filterwarnings("ignore")


def run_cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def sweep(root: Path, uri: str, experiment: str, swept: list[str], launcher: list[str] = ()) -> Path:
    """Run a tiny 2-job sweep in `root` logging to `experiment`; return the sweep dir."""
    args = ["-m", "ocrdet.train", "--multirun", *launcher, *TINY, *swept, f"logger.mlflow.tracking_uri={uri}",
            f"logger.mlflow.experiment_name={experiment}", f"hydra.sweep.dir={root}/{experiment}"]
    run_cli(args, cwd=root)
    return root / experiment


def children_of_one_parent(uri: str, experiment: str, sweep_dir: Path) -> tuple:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if r.data.tags.get("ocrdet.role") == "sweep"]
    children = sorted((r for r in runs if r not in parents), key=lambda r: int(r.data.tags["ocrdet.job_num"]))
    assert len(parents) == 1 and len(children) == 2
    (parent,) = parents
    assert parent.data.tags["ocrdet.sweep_dir"] == str(sweep_dir.resolve())
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [parent.info.run_id] * 2
    # each job: its own output dir (checkpoints, the plain log file) recorded on its run
    for num, child in enumerate(children):
        job_dir = sweep_dir / str(num)
        assert child.data.tags["ocrdet.run_dir"] == str(job_dir.resolve())
        assert (job_dir / "checkpoints" / "best_accuracy.pdparams").is_file()
        assert "run dir:" in (job_dir / "train.log").read_text()
        assert child.info.status == "FINISHED"
    return client, parent, children


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """One folder and MLflow store for the module's sweeps (a new SQLite store takes seconds to set up)."""
    root = tmp_path_factory.mktemp("sweeps")
    return root, f"sqlite:///{root}/mlflow.db"


@pytest.fixture(scope="module")
def local_sweep(store):
    root, uri = store
    return sweep(root, uri, "local", ["neck=rse_fpn,db_fpn"]), uri


def test_local_sweep_makes_one_parent_with_a_child_run_per_job(local_sweep):
    sweep_dir, uri = local_sweep
    client, parent, children = children_of_one_parent(uri, "local", sweep_dir)
    assert [c.info.run_name for c in children] == ["0: neck=rse_fpn", "1: neck=db_fpn"]
    for child, neck in zip(children, ["rse_fpn", "db_fpn"]):
        tags = child.data.tags
        assert {k: tags[k] for k in ("backbone", "neck", "distill_mode", "data", "finetune", "experiment")} == {
            "backbone": "mobilenet_v3_large_x0_5", "neck": neck, "distill_mode": "student", "data": "synthetic",
            "finetune": "none", "experiment": "synthetic_demo"}
        assert child.data.params["model.neck._target_"].endswith({"rse_fpn": "RSEFPN", "db_fpn": "DBFPN"}[neck])
        assert child.data.params["data.crop_size"] == "64"
        assert {"train/loss", "train/loss_shrink_maps", "train/loss_threshold_maps", "train/loss_binary_maps",
                "train/lr", "train/samples_per_s", "val/precision", "val/recall", "val/hmean"} <= set(child.data.metrics)
        run_id = child.info.run_id
        top = {a.path for a in client.list_artifacts(run_id)}
        assert top == {"checkpoints", "config", "curves.png", "val_images"}
        assert [a.path for a in client.list_artifacts(run_id, "val_images")] == ["val_images/val_0.png",
                                                                                 "val_images/val_1.png"]
        assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/best_accuracy.pdparams"]
        assert [a.path for a in client.list_artifacts(run_id, "config")] == ["config/config.yaml"]
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["multirun.yaml"]
    assert (sweep_dir / "0" / "val_images" / "val_0.png").stat().st_size > 0


def test_compare_lists_both_runs_with_their_differing_params(local_sweep, capsys):
    from ocrdet.tools.compare import main as compare_main

    sweep_dir, uri = local_sweep
    compare_main(["--tracking-uri", uri, "-e", "local", "--sweep", str(sweep_dir)])
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["run", "name", "status", "neck._target_", "neck.shortcut", "best", "val/hmean"]
    assert len(rows) == 2
    by_name = {" ".join(r.split()[1:3]): r.split() for r in rows}
    assert by_name["0: neck=rse_fpn"][4:] == ["ocrdet.models.necks.rse_fpn.RSEFPN", "True", "0.000000"]
    assert by_name["1: neck=db_fpn"][4:] == ["ocrdet.models.necks.db_fpn.DBFPN", "-", "0.000000"]


def test_joblib_launcher_runs_the_sweep_in_parallel_processes(store, local_sweep):
    root, uri = store  # after local_sweep: the store exists, so the parallel jobs only race for the parent run
    launcher = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    sweep_dir = sweep(root, uri, "joblib", ["optim.lr=1e-3,5e-4"], launcher)
    _, _, children = children_of_one_parent(uri, "joblib", sweep_dir)
    assert [c.data.params["optim.lr"] for c in children] == ["0.001", "0.0005"]
    assert [c.info.run_name for c in children] == ["0: optim.lr=0.001", "1: optim.lr=0.0005"]
    assert len({c.data.tags["ocrdet.run_dir"] for c in children}) == 2


def test_slurm_launcher_config_composes(tmp_path):
    out = run_cli(["-m", "ocrdet.train", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra",
                   "--package", "hydra.launcher"], cwd=tmp_path)
    lines = set(out.stdout.splitlines())
    assert {"_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "partition: gpu",
            "timeout_min: 1440", "gpus_per_node: 1", "tasks_per_node: 1",
            "submitit_folder: ${hydra.sweep.dir}/.submitit/%j"} <= lines


def test_main_returns_the_monitored_metric(tmp_path):
    from ocrdet.config import compose_config
    from ocrdet.train import main

    cfg = compose_config("train", [*TINY, "logger=none"], output_dir=tmp_path / "run")
    value = main(cfg)  # Hydra's decorator calls the function directly when given a config
    assert isinstance(value, float) and 0.0 <= value <= 1.0
