"""Exporting a training run: the verification figures and a pyfunc model land in its MLflow run, and
`mlflow models serve -m runs:/<id>/model` (127.0.0.1 only) answers an image with its text polygons."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from ocrdet.cli.config import compose_config
from tests.deploy.test_export import ROOT, cli_env

pytestmark = pytest.mark.filterwarnings("ignore")
# thresh 0: the whole map is one region, so any model finds one box that the post-filter clips to the image corners
WHOLE_IMAGE = ["postprocess.thresh=0.0", "postprocess.box_thresh=0.0"]
CORNERS_64 = [[0, 0], [63, 0], [63, 63], [0, 63]]


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A 2-step training run (its MLflow store and artifacts in a temp dir), exported with verification."""
    from mlflow.tracking import MlflowClient

    from ocrdet.cli.export import run_export
    from ocrdet.cli.train import run_train
    from tests.integration.conftest import TINY

    root = tmp_path_factory.mktemp("mlflow_model")
    uri = f"sqlite:///{root}/mlflow.db"
    store = [f"logger.mlflow.tracking_uri={uri}", "logger.mlflow.experiment_name=test",
             f"+logger.mlflow.artifact_location={root / 'artifacts'}"]  # fmt: skip
    run_train(compose_config("train", [*TINY, *store], output_dir=root / "run"))
    tiny_val = ["data=synthetic", "data.val.num_samples=2", "data.val.image_size=64", *WHOLE_IMAGE]
    run_export(compose_config("export", [f"weights={root / 'run'}", f"output_dir={root / 'model'}", *tiny_val]))
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    return root, uri, run


def image_b64() -> str:
    from ocrdet.data.synthetic import render_text_image

    ok, encoded = cv2.imencode(".jpg", render_text_image(np.random.default_rng(0), 64).image)
    assert ok
    return base64.b64encode(encoded.tobytes()).decode("ascii")


def test_verification_figures_go_to_the_training_run(exported_run) -> None:
    root, uri, run = exported_run
    from mlflow.tracking import MlflowClient

    figures = json.loads((root / "model" / "verification.json").read_text())
    assert run.data.metrics["export/paddle_hmean"] == figures["exported (paddle)"]["hmean"]
    client = MlflowClient(uri)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "export")] == ["export/verification.json"]


def test_pyfunc_model_returns_polygons(exported_run) -> None:
    import mlflow

    _, uri, run = exported_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [json.loads(p) for p in model.predict([image_b64()])] == [[CORNERS_64]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_boxes(exported_run) -> None:
    _, uri, run = exported_run
    port = free_port()
    env = {**cli_env(), "MLFLOW_TRACKING_URI": uri}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run.info.run_id}/model",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # start-up on a loaded 2-core machine; a limit, not a measurement
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not come up"
            time.sleep(1)
        body = json.dumps({"inputs": [image_b64()]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        assert [json.loads(polygons) for polygons in answer["predictions"]] == [[CORNERS_64]]
    finally:
        server.terminate()
        server.wait(timeout=60)
