"""MLflow around Hydra: a `--multirun` sweep's parent run, its best child, and a run's settings as params.

A `--multirun` sweep becomes one MLflow parent run (tagged with the sweep dir) with one child run per job. Jobs may
run in parallel processes (joblib) or on other machines (SLURM), so the first job to claim a marker file in the
sweep dir creates the parent, and the others read its id from that file: exactly one parent per sweep dir and
tracking store, with no coordination process.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from ocrdet.engine.loggers.mlflow import get_or_create_experiment, mlflow_client

log = logging.getLogger(__name__)

SWEEP_DIR_TAG = "ocrdet.sweep_dir"
JOB_NUM_TAG = "ocrdet.job_num"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests runs carrying it under their parent
ROLE_TAG = "ocrdet.role"  # "sweep" on parent runs, so tables of trained runs can leave them out
RUN_ID_CHARS = set("0123456789abcdef")


@dataclass
class SweepJob:
    """Where this process sits in a Hydra `--multirun` sweep."""

    sweep_dir: Path
    job_num: int
    overrides: list[str]


def current_sweep_job() -> SweepJob | None:
    """This job's sweep (from Hydra's runtime config), or None outside a `--multirun`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return SweepJob(
        sweep_dir=Path(hydra_cfg.sweep.dir).resolve(),
        job_num=int(hydra_cfg.job.num),
        overrides=list(hydra_cfg.overrides.task),
    )


def find_or_create_parent_run(
    tracking_uri: str | None, experiment_name: str, sweep_dir: str | Path, timeout_s: float = 600.0
) -> str:
    """The id of the sweep's parent run, created by whichever job gets here first.

    The marker file `<sweep_dir>/.mlflow_parent_<hash of store and experiment>` is created with O_EXCL (atomic,
    also on NFS), so one job wins; it creates (or finds by tag, e.g. for jobs appended to an earlier sweep) the
    parent and writes its id into the marker. The others wait for that id instead of touching the store, which also
    keeps parallel jobs from initialising a new SQLite store at the same time.
    """
    sweep_dir = Path(sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    identity = hashlib.sha1(f"{tracking_uri}\n{experiment_name}".encode()).hexdigest()[:10]
    marker = sweep_dir / f".mlflow_parent_{identity}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                content = marker.read_text().strip()
            except FileNotFoundError:  # the creating job failed and removed it: claim it again
                continue
            if len(content) == 32 and set(content) <= RUN_ID_CHARS:
                return content
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{marker}: no parent run id after {timeout_s:.0f} s; the job creating it may have died "
                    "(delete the file to let the next job create the parent)"
                ) from None
            time.sleep(0.25)
            continue
        try:
            run_id = _create_parent_run(tracking_uri, experiment_name, sweep_dir)
            os.write(fd, run_id.encode())
        except BaseException:
            marker.unlink(missing_ok=True)  # let another job try, rather than leave them waiting for nothing
            raise
        finally:
            os.close(fd)
        log.info("MLflow parent run %s for sweep %s", run_id, sweep_dir)
        return run_id


def _create_parent_run(tracking_uri: str | None, experiment_name: str, sweep_dir: Path) -> str:
    client = mlflow_client(tracking_uri)
    experiment_id = get_or_create_experiment(client, experiment_name)
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SWEEP_DIR_TAG}` = '{_quote(str(sweep_dir))}' and tags.`{ROLE_TAG}` = 'sweep'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {SWEEP_DIR_TAG: str(sweep_dir), ROLE_TAG: "sweep"}
    run_id = client.create_run(experiment_id, run_name=sweep_dir.name, tags=tags).info.run_id
    multirun_yaml = sweep_dir / "multirun.yaml"
    if multirun_yaml.is_file():  # the sweep's command-line overrides, for the record
        client.log_artifact(run_id, str(multirun_yaml))
    return run_id


# Keys that say how Hydra builds an object, not a setting; and top-level keys that differ for every run (paths,
# the logger's own run name/id, what was resumed): the latter are tags, never params.
INSTANTIATE_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
PER_RUN_KEYS = frozenset({"paths", "logger", "resume", "resume_allow_changes", "hydra"})
_REFERENCE = re.compile(r"^\$\{[^${}:]+\}$")  # `${a.b}`: a copy of another key, no resolver, no text around it


def config_params(cfg: DictConfig, choices: dict[str, str] | None = None) -> dict[str, str]:
    """The run's settings as MLflow params, each value once: keys as in the config (`neck.out_channels`),
    resolved; interpolation copies (`model.neck: ${neck}`, `trainer.seed: ${seed}`) and values built from the
    run's paths are left out, as are Hydra's instantiation keys and the per-run top-level keys. The chosen
    groups come first as `groups.<group>` (e.g. `groups.neck=db_fpn`), the one place that says which class."""
    params = {f"groups.{group}": str(choice) for group, choice in (choices or {}).items()}

    def walk(node: DictConfig | ListConfig, prefix: str) -> None:
        for key in node.keys():
            if key in INSTANTIATE_KEYS or (not prefix and key in PER_RUN_KEYS):
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            if OmegaConf.is_interpolation(node, key):
                raw = str(node._get_node(key)._value())
                if _REFERENCE.match(raw) or "paths." in raw or "hydra:" in raw or "ocrdet.cwd" in raw:
                    continue
            value = node._get_node(key)
            if isinstance(value, DictConfig) and not OmegaConf.is_interpolation(node, key):
                walk(value, name)
            elif isinstance(value, ListConfig) and _all_references(value):
                continue  # e.g. crop.size: [${data.crop_size}, ${data.crop_size}]
            elif isinstance(value, (DictConfig, ListConfig)):
                params[name] = str(OmegaConf.to_container(value, resolve=True))
            else:
                params[name] = str(node[key])

    walk(cfg, "")
    return params


def _all_references(items: ListConfig) -> bool:
    return len(items) > 0 and all(
        OmegaConf.is_interpolation(items, i) and _REFERENCE.match(str(items._get_node(i)._value()))
        for i in range(len(items))
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def join_sweep(cfg: DictConfig) -> str | None:
    """In a `--multirun` job with the MLflow logger: find or create the sweep's parent run and make this job's run
    its child (tags and a run name from the swept overrides, set in `cfg.logger.mlflow`). Returns the parent id."""
    job = current_sweep_job()
    node = (cfg.get("logger") or {}).get("mlflow")
    if job is None or node is None or node.get("run_id"):  # a resumed run keeps its place
        return None
    parent_id = find_or_create_parent_run(node.tracking_uri, node.experiment_name, job.sweep_dir)
    name = _job_run_name(job)
    tags = OmegaConf.to_container(node.tags, resolve=True) if node.get("tags") is not None else {}
    with open_dict(node):
        node.tags = {
            **tags,
            PARENT_TAG: parent_id,
            SWEEP_DIR_TAG: str(job.sweep_dir),
            JOB_NUM_TAG: str(job.job_num),
        }
        node.run_name = f"{node.run_name}-{job.job_num}" if node.run_name else name
    log.info("sweep job %d: MLflow child of parent run %s", job.job_num, parent_id)
    return parent_id


def _job_run_name(job: SweepJob, limit: int = 200) -> str:
    """`<job num>: <swept overrides>`, e.g. `1: neck=db_fpn optim.lr=0.0005`; the swept keys are the ones given as
    lists in the sweep's multirun.yaml (all overrides when that file cannot tell)."""
    swept = _swept_keys(job.sweep_dir / "multirun.yaml")
    chosen = [o for o in job.overrides if o.split("=", 1)[0].lstrip("+~") in swept] if swept else job.overrides
    name = f"{job.job_num}: {' '.join(chosen)}"
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _swept_keys(multirun_yaml: Path) -> set[str]:
    if not multirun_yaml.is_file():
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OmegaConf.load(multirun_yaml).hydra.overrides.task
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def close_parent_run(tracking_uri: str | None, parent_id: str, monitor: str | None = None, mode: str = "max") -> None:
    """Summarise the sweep on its parent run and mark it finished as of now. No single job knows when the last one
    ends, so each finishing job rewrites the summary over the children so far: the best child's `monitor` value
    (logged on the parent under the same key, so a collapsed sweep charts it) and tags naming that child."""
    client = mlflow_client(tracking_uri)
    if monitor:
        children = child_runs(client, parent_id)
        best = best_run(client, children, monitor, mode)
        if best is not None:
            run, value = best
            client.log_metric(parent_id, monitor, value, step=len(children))
            for key, tag in (("run_id", run.info.run_id), ("run_name", run.info.run_name),
                             ("job_num", run.data.tags.get(JOB_NUM_TAG, ""))):
                client.set_tag(parent_id, f"ocrdet.best_child.{key}", tag)
    client.set_terminated(parent_id, status="FINISHED")


def child_runs(client: Any, parent_id: str) -> list[Any]:
    """The runs nested under `parent_id` (MLflow's parent tag)."""
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'", max_results=10000)


def best_run(client: Any, runs: list[Any], monitor: str, mode: str = "max") -> tuple[Any, float] | None:
    """Of `runs`, the one with the best `monitor` value over its whole history, and that value; ties go to the
    lowest job number (the first of equals, as Hydra numbers the jobs)."""
    pick = max if mode == "max" else min
    scored = []
    for run in sorted(runs, key=lambda r: int(r.data.tags.get(JOB_NUM_TAG, 0))):
        history = [m.value for m in client.get_metric_history(run.info.run_id, monitor)]
        if history:
            scored.append((run, pick(history)))
    if not scored:
        return None
    return pick(scored, key=lambda item: item[1])


def find_training_run(states: dict[str, Any]) -> tuple[Any, str] | None:
    """(MLflow client, run id) of the training run that wrote a checkpoint, from its `.states` (they keep the
    logger's run id and tracking URI), or None for weights without them (a released `.pdparams`). Takes the states,
    not the file, so this module (and `ocrdet-compare`) never imports paddle."""
    saved = next((s for s in states.get("loggers") or [] if isinstance(s, dict) and s.get("run_id")), None)
    if saved is None:
        return None
    return mlflow_client(saved.get("tracking_uri")), str(saved["run_id"])
