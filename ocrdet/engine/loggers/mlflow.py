"""MLflow logger: one run per training job, the flattened config as params, per-step losses/lr, eval metrics."""
from __future__ import annotations

import logging
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ocrdet.engine.loggers.base import Logger, flatten
from ocrdet.engine.loggers.redact import redact_text

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

_MAX_PARAM_VALUE = 6000  # MLflow 3's limit on a param value's length
_BATCH = 100  # MLflow accepts at most 100 params per log_batch call
_BAD_KEY_CHARS = re.compile(r"[^a-zA-Z0-9_\-./ ]")


class MLflowLogger(Logger):
    def __init__(
        self,
        experiment_name: str = "ocrdet",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        artifact_location: str | None = None,
    ) -> None:
        self.client = mlflow_client(tracking_uri)
        self.tracking_uri = self.client.tracking_uri
        artifact_location = artifact_location or default_artifact_location(self.tracking_uri)
        self.experiment_id = get_or_create_experiment(self.client, experiment_name, artifact_location)
        if run_id:  # a resumed job continues its run
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_tags = {**source_tags(), **dict(tags or {})}
            run = self.client.create_run(self.experiment_id, run_name=run_name or random_run_name(), tags=run_tags)
            self.run_id = run.info.run_id
        log.info("MLflow run %s in %s", self.run_id, redact_text(self.tracking_uri))

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = {k: str(v)[:_MAX_PARAM_VALUE] for k, v in flatten(params).items()}
        existing = self.client.get_run(self.run_id).data.params
        items = [Param(_clean(k), v) for k, v in flat.items() if _clean(k) not in existing]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + _BATCH], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_clean(k), float(v), now, int(step)) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items, synchronous=True)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, path, artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Every file under `local_dir`, kept in its folder structure under `artifact_path`."""
        self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of every logged value of `key`, in step order."""
        return sorted((m.step, m.value) for m in self.client.get_metric_history(self.run_id, _clean(key)))

    def metric_keys(self) -> list[str]:
        return sorted(self.client.get_run(self.run_id).data.metrics)

    def finalize(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tracking_uri": redact_text(self.tracking_uri)}  # .states are shared


def random_run_name() -> str:
    """An MLflow-style name (`adjective-noun-123`) drawn from the OS's entropy: MLflow draws its own from Python's
    global `random`, which the run has seeded, so every run would get the same name."""
    from mlflow.utils.name_utils import _GENERATOR_NOUNS, _GENERATOR_PREDICATES

    rng = random.SystemRandom()
    return f"{rng.choice(_GENERATOR_PREDICATES)}-{rng.choice(_GENERATOR_NOUNS)}-{rng.randrange(1000)}"


def source_tags() -> dict[str, str]:
    """What Lightning's MLFlowLogger records about the code: MLflow's context tags (user, source name and type, and
    the git commit when the entry point sits in a repository), completed with the commit and a dirty flag of the
    repository holding this package (an installed entry point lives in a venv, not beside the code)."""
    from mlflow.tracking.context.registry import resolve_tags

    tags = dict(resolve_tags({}))
    tags["mlflow.source.name"] = os.path.basename(sys.argv[0]) or tags.get("mlflow.source.name", "")
    commit, dirty = _git_state(Path(__file__).resolve().parent)
    if commit:
        tags.setdefault("mlflow.source.git.commit", commit)
        tags["ocrdet.git.dirty"] = str(dirty).lower()
    return tags


def _git_state(folder: Path) -> tuple[str | None, bool]:
    """(HEAD commit, uncommitted changes?) of the repository containing `folder`; (None, False) outside one."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, dirty


def default_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside it (`<store dir>/mlartifacts`), not to MLflow's `./mlruns` in
    whatever directory the command ran; a server or other store keeps its own default."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()


def mlflow_client(tracking_uri: str | None = None) -> "MlflowClient":
    """A client for `tracking_uri` (MLflow's default when None); creates the folder of a `sqlite:///` store."""
    import mlflow  # lazy: importing mlflow costs ~1 s
    from mlflow.tracking import MlflowClient

    if tracking_uri and tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri or mlflow.get_tracking_uri())


def get_or_create_experiment(client: "MlflowClient", name: str, artifact_location: str | None = None) -> str:
    """The id of experiment `name`, created if needed. Parallel sweep jobs may race to create it: the loser of the
    race reads the winner's."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _clean(key: str) -> str:
    return _BAD_KEY_CHARS.sub("_", key)
