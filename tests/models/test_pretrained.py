"""Loading PaddleOCR `.pdparams` weights by exact key and shape."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from ocrdet.models.weights import load_pretrained
from tests.conftest import shared_path
from tests.models.builders import build_student


def test_released_student_loads_with_only_thresh_missing() -> None:
    path = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    model = build_student()
    report = load_pretrained(model, str(path))
    assert report.unexpected == []
    assert report.mismatched == []
    # The inference export drops the threshold branch; everything else must be there.
    assert report.missing and all(k.startswith("head.thresh.") for k in report.missing)
    assert sorted(report.missing) == sorted(k for k in model.state_dict() if k.startswith("head.thresh."))
    assert len(report.matched) == 288
    file_w = paddle.load(str(path))["backbone.conv.conv.weight"].numpy()
    np.testing.assert_array_equal(model.backbone.conv.conv.weight.numpy(), file_w)


def test_path_without_suffix_is_accepted() -> None:
    path = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    report = load_pretrained(build_student(), str(path)[: -len(".pdparams")])
    assert report.path == str(path)
    assert len(report.matched) == 288


def test_nothing_matching_raises_naming_the_file(tmp_path) -> None:
    bad = tmp_path / "unrelated.pdparams"
    paddle.save({"fc.weight": paddle.zeros([2, 2])}, str(bad))
    with pytest.raises(ValueError, match="unrelated.pdparams"):
        load_pretrained(build_student(), str(bad))


def test_missing_file_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_pretrained(build_student(), str(tmp_path / "absent"))


def test_prefix_selects_and_strips(tmp_path) -> None:
    model = build_student()
    conv_w = model.backbone.conv.conv.weight
    value = np.full(conv_w.shape, 0.25, "float32")
    state = {
        "Student.backbone.conv.conv.weight": paddle.to_tensor(value),
        "Student.head.binarize.conv3.bias": paddle.to_tensor(np.full([1], 0.5, "float32")),
        "Student.head.binarize.conv3.weight": paddle.zeros([3, 3]),  # wrong shape
        "Student.extra.weight": paddle.zeros([1]),
        "Teacher.backbone.conv.conv.weight": paddle.zeros(conv_w.shape),  # other sub-model: ignored
    }
    path = tmp_path / "best_accuracy.pdparams"
    paddle.save(state, str(path))

    report = load_pretrained(model, str(path), prefix="Student.")
    assert sorted(report.matched) == ["backbone.conv.conv.weight", "head.binarize.conv3.bias"]
    assert report.mismatched == ["head.binarize.conv3.weight"]
    assert report.unexpected == ["extra.weight"]
    np.testing.assert_array_equal(model.backbone.conv.conv.weight.numpy(), value)
    np.testing.assert_array_equal(model.head.binarize.conv3.bias.numpy(), [0.5])

    with pytest.raises(ValueError, match="Student2"):
        load_pretrained(model, str(path), prefix="Student2.")
