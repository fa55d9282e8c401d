"""Checkpoints are written in PaddleOCR's key scheme: the student's `.pdparams` has exactly the released PP-OCRv3
student's keys and shapes plus the threshold branch; distillation checkpoints prefix each sub-model's keys with its
name (`Student.`, `Student2.`, `Teacher.`)."""
from __future__ import annotations

import paddle
import pytest
from hydra.utils import instantiate

from ocrdet.cli.config import compose_config
from ocrdet.engine import checkpoint_io
from ocrdet.cli.train import run_train
from tests.conftest import shared_path
from tests.integration.conftest import TINY

pytestmark = pytest.mark.filterwarnings("ignore")


def shapes(path) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in paddle.load(str(path)).items()}


@pytest.fixture(scope="module")
def student_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    run_train(compose_config("train", [*TINY, "logger=none"], output_dir=out))
    return out / "checkpoints" / "best_accuracy.pdparams"


def test_student_checkpoint_uses_paddleocr_keys(student_checkpoint):
    ours = shapes(student_checkpoint)
    assert ours["backbone.conv.conv.weight"] == [8, 3, 3, 3]
    assert ours["neck.ins_conv.0.in_conv.weight"] == [96, 16, 1, 1]
    assert ours["head.binarize.conv1.weight"] == [24, 96, 3, 3]
    assert ours["head.thresh.conv3.weight"] == [24, 1, 2, 2]
    assert len(ours) == 301


def test_student_checkpoint_matches_the_released_weights_key_for_key(student_checkpoint):
    released = shapes(shared_path("weights", "ch_PP-OCRv3_det_student.pdparams"))
    ours = shapes(student_checkpoint)
    assert {k: ours[k] for k in released} == released
    # inference weights leave out the threshold branch, which only training uses
    extra = sorted(set(ours) - set(released))
    assert len(extra) == 13 and all(k.startswith("head.thresh.") for k in extra)


def test_cml_checkpoint_prefixes_each_sub_model(tmp_path, student_checkpoint):
    model = instantiate(compose_config("train", ["distill_mode=cml"]).model)
    path = checkpoint_io.save_checkpoint(tmp_path / "best_accuracy", model.state_dict(), None, {})
    keys = shapes(path)
    student = shapes(student_checkpoint)
    for name in ("Student", "Student2"):
        assert {k[len(name) + 1 :]: v for k, v in keys.items() if k.startswith(name + ".")} == student
    teacher = {k[len("Teacher.") :]: v for k, v in keys.items() if k.startswith("Teacher.")}
    assert teacher["backbone.conv1_1._conv.weight"] == [32, 3, 3, 3]
    assert teacher["head.binarize.conv1.weight"] == [64, 256, 7, 7]
    assert len(keys) == 2 * len(student) + len(teacher)
