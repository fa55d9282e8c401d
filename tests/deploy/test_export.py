"""ocrdet-export of the released student: Paddle files, inference.yml and model.onnx; onnxruntime against the Paddle
predictor on a real image; ocrdet-eval on the export and its .onnx against the weights; PaddleOCR 3.x loading it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ocrdet.cli.config import compose_config
from ocrdet.det.deploy import find_exported, onnx_forward, read_settings
from tests.conftest import shared_path

pytest.importorskip("onnxruntime")
pytest.importorskip("paddle2onnx")
pytestmark = pytest.mark.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The worktree's package first on the path, so console-script modules run this checkout's code; glog's level
    as a user's shell has it (unset)."""
    env = {k: v for k, v in os.environ.items() if k != "GLOG_minloglevel"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def released_export(tmp_path_factory) -> Path:
    """`ocrdet-export weights=<released student> format=onnx -o <dir>`, run as the user runs it."""
    weights = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    out = tmp_path_factory.mktemp("export") / "student"
    done = subprocess.run(
        [sys.executable, "-m", "ocrdet.cli.export", f"weights={weights}", "format=onnx", "-o", str(out),
         f"hydra.run.dir={out.parent / 'hydra'}"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PaddleOCR 3.x: TextDetection(model_name='PP-OCRv3_mobile_det'" in done.stdout
    # quiet: neither Paddle's import-time ccache warning nor its C++ PIR warning on export reach the user
    assert "No ccache found" not in done.stderr and "PIR" not in done.stderr, done.stderr
    return out


def test_export_holds_paddle_files_settings_and_onnx(released_export: Path) -> None:
    assert sorted(p.name for p in released_export.iterdir()) == [
        "inference.json", "inference.pdiparams", "inference.yml", "model.onnx"
    ]  # fmt: skip
    settings = read_settings(released_export / "inference.yml")
    assert settings.resize == {"limit_side_len": 736, "limit_type": "min", "image_shape": None, "resize_long": None}
    assert (settings.postprocess["box_thresh"], settings.postprocess["unclip_ratio"]) == (0.6, 1.5)


def recorded_input(export: Path, image: Path) -> np.ndarray:
    """The image through the pipeline inference.yml records, as ocrdet-predict runs it."""
    from hydra.utils import instantiate

    from ocrdet.det.deploy import apply_settings

    cfg = compose_config("predict", ["weights=x", "input=x"])
    apply_settings(cfg, read_settings(export / "inference.yml"), "transforms")
    data = {"image": image.read_bytes()}
    for op in instantiate(cfg.transforms).values():
        data = op(data)
    return np.asarray(data["image"], dtype=np.float32)[None]


def test_onnxruntime_matches_the_paddle_predictor(released_export: Path) -> None:
    from ocrdet.det.graph import load_predictor, predict

    x = recorded_input(released_export, shared_path("data", "icdar2015", "test", "images", "img_10.jpg"))
    assert x.shape == (1, 3, 736, 1312)
    expected = predict(load_predictor(str(released_export), threads=2), x)
    got = onnx_forward(released_export / "model.onnx", threads=2)(x)
    assert expected.max() > 0.9, "no text response: the comparison would be vacuous"
    assert got.shape == expected.shape == (1, 1, 736, 1312)
    diff = float(np.abs(got - expected).max())
    print(f"onnxruntime vs paddle.inference, img_10 at 736x1312: max abs diff {diff:.2e}")
    # two fp32 engines summing the same ~600k-weight network in different orders; sigmoid outputs in [0, 1]
    assert diff <= 1e-4


@pytest.mark.slow
def test_eval_on_the_onnx_and_the_export_equals_eval_on_the_weights(released_export: Path) -> None:
    from ocrdet.cli.eval import run_eval

    weights = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    shared_path("data", "icdar2015", "test")
    results = {}
    for name, target in (("weights", weights), ("export", released_export), ("onnx", released_export / "model.onnx")):
        cfg = compose_config("eval", ["data=icdar2015", f"weights={target}", "trainer.limit_val_batches=20"])
        results[name] = run_eval(cfg, explicit=[])
    print(json.dumps(results))
    assert find_exported(released_export / "model.onnx").kind == "onnx"
    assert results["onnx"] == results["export"] == results["weights"]
    assert results["weights"]["hmean"] > 0.3  # the released model, scored: not an empty match


def test_paddleocr_3_text_detection_loads_the_export(released_export: Path, tmp_path: Path) -> None:
    """PaddleOCR 3.x (`pip install paddleocr`, not a dependency) runs the export with the recorded resize and gives
    ocrdet-predict's boxes."""
    paddleocr = pytest.importorskip("paddleocr", reason="the paddleocr 3.x package is not installed")
    from ocrdet.cli.predict import run_predict

    image = shared_path("data", "icdar2015", "test", "images", "img_10.jpg")
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # no network: never look for models
    settings = read_settings(released_export / "inference.yml")
    detector = paddleocr.TextDetection(
        model_name=settings.model_name, model_dir=str(released_export), device="cpu",
        limit_side_len=settings.resize["limit_side_len"], limit_type=settings.resize["limit_type"],
    )  # fmt: skip
    theirs = sorted(next(iter(detector.predict(str(image))))["dt_polys"].tolist())
    cfg = compose_config("predict", [f"weights={released_export}", f"input={image}", f"output={tmp_path}", "draw=false"])
    ours = sorted(r["points"] for r in json.loads(run_predict(cfg, explicit=[]).read_text().split("\t")[1]))
    assert len(ours) >= 3
    assert theirs == ours
