"""Export verification: the export scored with its inference.yml against the dygraph model with the validation
config, on the released student and a few synthetic validation images (128 px)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ocrdet.cli.config import compose_config
from tests.conftest import shared_path
from tests.deploy.test_export import ROOT, cli_env

pytestmark = pytest.mark.filterwarnings("ignore")
VAL = ["data=synthetic", "data.val.num_samples=4", "data.num_workers=0"]


def test_default_export_records_equal_figures(tmp_path) -> None:
    from ocrdet.cli.export import run_export

    weights = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    cfg = compose_config("export", [f"weights={weights}", f"output_dir={tmp_path}", *VAL])
    written = run_export(cfg)
    assert str(tmp_path / "verification.json") in written
    figures = json.loads((tmp_path / "verification.json").read_text())
    assert figures["images"] == 4
    assert figures["settings_differences"] == []
    assert figures["exported (paddle)"] == figures["dygraph"]
    assert figures["dygraph"]["hmean"] > 0.5  # words found: the equality is not between two empty results


def test_export_with_another_resize_than_validation_fails_naming_it(tmp_path) -> None:
    weights = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    done = subprocess.run(
        [sys.executable, "-m", "ocrdet.cli.export", f"weights={weights}", "-o", str(tmp_path / "model"), *VAL,
         "deploy_resize.limit_side_len=32", "deploy_resize.limit_type=max", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert f"{tmp_path / 'model'}: the export does not score what the trained model scores on 4 validation " \
           "images: paddle: P/R/H " in output  # fmt: skip
    assert "inference.yml differs from the validation config in: resize.limit_side_len: 32 vs 128; " \
           "resize.limit_type: 'max' vs 'min' (recorded vs validated). Nothing was written" in output  # fmt: skip
    assert [p.name for p in (tmp_path / "model").iterdir()] == []  # the unverified export never replaced anything

