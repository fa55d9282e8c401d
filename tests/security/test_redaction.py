"""Credentials in URIs never reach MLflow params, logs, `.states` or the run's `.hydra/*.yaml`."""
from __future__ import annotations

import io
import logging

import pytest
from mlflow.tracking import MlflowClient

from ocrdet.cli.config import compose_config
from ocrdet.engine.loggers.mlflow import MLflowLogger
from ocrdet.cli.train import run_train
from ocrdet.engine.loggers.redact import redact_text
from tests.integration.conftest import tiny  # noqa: F401  (fixture)

SECRET_URI = "https://alice:s3cret@mlflow.example.com/api?token=abc123&x=1"


@pytest.mark.parametrize(
    "text, clean",
    [
        (SECRET_URI, "https://***@mlflow.example.com/api?token=***&x=1"),
        ("databricks://tok@host and postgresql://u:p@db:5432/m", "databricks://***@host and postgresql://***@db:5432/m"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("user@example.com, http://host/a@b", "user@example.com, http://host/a@b"),
    ],
)
def test_redact_text(text, clean):
    assert redact_text(text) == clean


def test_a_secret_in_the_config_is_written_nowhere(tmp_path, tiny):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)  # as Hydra writes them before the job runs
    (run_dir / ".hydra" / "config.yaml").write_text(f"logger:\n  mlflow:\n    tracking_uri: {SECRET_URI}\n")
    (run_dir / ".hydra" / "overrides.yaml").write_text(f"- logger.mlflow.tracking_uri={SECRET_URI}\n")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        cfg = compose_config("train", [*tiny, f"+notify_url='{SECRET_URI}'"], output_dir=run_dir)
        run_train(cfg)
        logging.getLogger("ocrdet.test").warning("tracking at %s", SECRET_URI)
    finally:
        logging.getLogger().removeHandler(handler)
    assert "https://***@mlflow.example.com/api?token=***&x=1" in stream.getvalue()
    written = [stream.getvalue()] + [p.read_bytes().decode("latin1") for p in run_dir.rglob("*") if p.is_file()]
    assert [w[:80] for w in written if "s3cret" in w or "abc123" in w] == []
    client = MlflowClient(cfg.logger.mlflow.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.data.params["notify_url"] == "https://***@mlflow.example.com/api?token=***&x=1"


def test_the_logger_state_in_states_holds_no_credential(tmp_path):
    logger = MLflowLogger(experiment_name="t", tracking_uri=f"sqlite:///{tmp_path}/m.db")
    logger.tracking_uri = SECRET_URI  # what a remote server's URI would hold
    assert logger.state_dict()["tracking_uri"] == "https://***@mlflow.example.com/api?token=***&x=1"
