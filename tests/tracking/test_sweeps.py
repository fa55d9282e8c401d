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
    args = ["-m", "ocrdet.cli.train", "--multirun", *launcher, *TINY, *swept, f"logger.mlflow.tracking_uri={uri}",
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
        params = child.data.params
        assert params["groups.neck"] == neck and params["data.crop_size"] == "64"
        # each setting once: no Hydra instantiation keys, no interpolation copies, no per-run paths
        assert not [k for k in params if "_target_" in k or "_partial_" in k]
        assert "neck.out_channels" not in params and "trainer.seed" not in params  # the key is model.neck.*
        assert not [k for k, v in params.items() if v.startswith("/") or k.startswith(("paths.", "logger."))]
        assert len(params) == len(set(params))
        # Lightning's provenance tags
        assert tags["mlflow.source.name"] and tags["mlflow.user"]
        assert len(tags["mlflow.source.git.commit"]) == 40 and tags["ocrdet.git.dirty"] in ("true", "false")
        assert {"train/loss", "train/loss_shrink_maps", "train/loss_threshold_maps", "train/loss_binary_maps",
                "train/lr", "train/samples_per_s", "val/precision", "val/recall", "val/hmean"} <= set(child.data.metrics)
        run_id = child.info.run_id
        top = {a.path for a in client.list_artifacts(run_id)}
        assert top == {"checkpoints", "config", "curves.png", "val_images"}
        # the validation images of each evaluation, under its step (one evaluation at the end of 2 steps here)
        assert [a.path for a in client.list_artifacts(run_id, "val_images")] == ["val_images/step_2"]
        assert [a.path for a in client.list_artifacts(run_id, "val_images/step_2")] == [
            "val_images/step_2/val_0.png", "val_images/step_2/val_1.png"]
        assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/best_accuracy.pdparams"]
        assert [a.path for a in client.list_artifacts(run_id, "config")] == ["config/config.yaml"]
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["multirun.yaml"]
    assert (sweep_dir / "0" / "val_images" / "step_2" / "val_0.png").stat().st_size > 0
    # the parent's summary: the best child's val/hmean (ties, e.g. all 0 after 2 steps: the first job) and its tags
    best = max(children, key=lambda c: client.get_metric_history(c.info.run_id, "val/hmean")[-1].value)
    assert parent.data.metrics["val/hmean"] == best.data.metrics["val/hmean"]
    assert parent.data.tags["ocrdet.best_child.run_id"] == best.info.run_id
    assert parent.data.tags["ocrdet.best_child.job_num"] == best.data.tags["ocrdet.job_num"]


def test_compare_lists_both_runs_with_their_differing_params(local_sweep, capsys):
    from ocrdet.cli.compare import main as compare_main

    sweep_dir, uri = local_sweep
    compare_main(["--tracking-uri", uri, "-e", "local", "--sweep", str(sweep_dir)])
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["run", "name", "status", "groups.neck", "model.neck.shortcut", "best", "val/hmean"]
    assert len(rows) == 2
    by_name = {" ".join(r.split()[1:3]): r.split() for r in rows}
    assert by_name["0: neck=rse_fpn"][4:] == ["rse_fpn", "True", "0.000000"]
    assert by_name["1: neck=db_fpn"][4:] == ["db_fpn", "-", "0.000000"]


def test_joblib_launcher_runs_the_sweep_in_parallel_processes(store, local_sweep):
    root, uri = store  # after local_sweep: the store exists, so the parallel jobs only race for the parent run
    launcher = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    sweep_dir = sweep(root, uri, "joblib", ["optim.lr=1e-3,5e-4"], launcher)
    _, _, children = children_of_one_parent(uri, "joblib", sweep_dir)
    assert [c.data.params["optim.lr"] for c in children] == ["0.001", "0.0005"]
    assert [c.info.run_name for c in children] == ["0: optim.lr=0.001", "1: optim.lr=0.0005"]
    assert len({c.data.tags["ocrdet.run_dir"] for c in children}) == 2


def test_slurm_launcher_config_composes(tmp_path):
    out = run_cli(["-m", "ocrdet.cli.train", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra",
                   "--package", "hydra.launcher"], cwd=tmp_path)
    lines = set(out.stdout.splitlines())
    assert {"_target_: hydra_plugins.ocrdet_submitit.launcher.SubmititLauncher", "cluster: slurm", "partition: gpu",
            "timeout_min: 1440", "gpus_per_node: 1", "tasks_per_node: 1",
            "submitit_folder: ${hydra.sweep.dir}/.submitit/%j"} <= lines


def test_main_returns_the_monitored_metric(tmp_path):
    from ocrdet.cli.config import compose_config
    from ocrdet.cli.train import main

    cfg = compose_config("train", [*TINY, "logger=none"], output_dir=tmp_path / "run")
    value = main(cfg)  # Hydra's decorator calls the function directly when given a config
    assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_a_killed_sweep_resumes_each_job_from_its_own_checkpoint(tmp_path):
    """Kill a 2-job sweep during its second job, re-run the same command with resume=auto: the same sweep dir is
    reused (nothing pinned), job 0 (finished) returns at once, job 1 continues from its own `latest` into its own
    MLflow child, and the step counters continue instead of restarting."""
    import signal
    import time

    from mlflow.tracking import MlflowClient

    from ocrdet.engine.checkpoint_io import read_states

    steps_per_epoch, epochs = 2, 5  # job 1 is killed after its first epoch's checkpoint, well before its last
    command = [sys.executable, "-m", "ocrdet.cli.train", "--multirun", *TINY, f"trainer.max_epochs={epochs}",
               "optim.lr=1e-3,5e-4"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    sweeps = tmp_path / "outputs" / "train" / "multiruns"
    deadline = time.monotonic() + 600
    try:
        while not list(sweeps.glob("*/1/checkpoints/latest.states")):  # job 1 has saved its first epoch
            assert proc.poll() is None, "the sweep ended before it could be killed: " + proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (sweep_dir,) = sweeps.iterdir()  # before the resume: no marker yet
    killed_at = read_states(sweep_dir / "1" / "checkpoints" / "latest.pdparams")["global_step"]
    assert 0 < killed_at < steps_per_epoch * epochs

    run_cli([*command[1:], "resume=auto"], cwd=tmp_path)
    assert [p.name for p in sweeps.iterdir() if not p.name.startswith(".")] == [sweep_dir.name]  # the same sweep
    log = (sweep_dir / "1" / "train.log").read_text()
    assert f"step {killed_at}" in log.split("resumed", 1)[1].splitlines()[0]
    for job in ("0", "1"):
        assert read_states(sweep_dir / job / "checkpoints" / "latest.pdparams")["global_step"] == steps_per_epoch * epochs

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    parents = [r for r in runs if r.data.tags.get("ocrdet.role") == "sweep"]
    children = sorted((r for r in runs if r not in parents), key=lambda r: int(r.data.tags["ocrdet.job_num"]))
    assert len(parents) == 1 and len(children) == 2  # no new runs: the jobs logged into their own children
    steps = [m.step for m in client.get_metric_history(children[1].info.run_id, "train/loss")]
    assert sorted(set(steps)) == list(range(1, steps_per_epoch * epochs + 1))
    assert all(c.info.status == "FINISHED" for c in children)
