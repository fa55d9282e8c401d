"""Extracting one sub-model from a distillation checkpoint (`ocrdet-extract`)."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from ocrdet.models.distillation import DistillationModel
from ocrdet.models.weights import load_pretrained
from ocrdet.cli.extract import extract_submodel, main, submodel_names
from tests.models.builders import build_student


def _state() -> dict:
    def v(x: float) -> paddle.Tensor:
        return paddle.full([2], x)

    return {
        "Student.backbone.w": v(1), "Student.neck.w": v(2), "Student.head.b": v(3),
        "Student2.backbone.w": v(4), "Student2.head.b": v(5),
        "Teacher.backbone.w": v(6), "Teacher.neck.w": v(7), "Teacher.head.b": v(8), "Teacher.head.c": v(9),
    }


def test_extract_keeps_only_the_named_prefix_and_strips_it() -> None:
    state = _state()
    student = extract_submodel(state, "Student")
    assert set(student) == {"backbone.w", "neck.w", "head.b"}  # no Student2.* keys
    assert student["head.b"] is state["Student.head.b"]
    assert set(extract_submodel(state, "Student2")) == {"backbone.w", "head.b"}
    assert len(extract_submodel(state, "Teacher")) == 4
    assert submodel_names(state) == ["Student", "Student2", "Teacher"]


def test_extract_unknown_name_lists_the_names_present() -> None:
    with pytest.raises(KeyError, match="Student, Student2, Teacher"):
        extract_submodel(_state(), "Stud")


def test_cli_writes_the_sub_model_and_prints_the_count(tmp_path, capsys) -> None:
    paddle.save(_state(), str(tmp_path / "best_accuracy.pdparams"))
    out = tmp_path / "out" / "student.pdparams"
    # A run directory resolves to its best_accuracy.pdparams.
    assert main([str(tmp_path), "--model", "Student", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 3 tensors (Student) to {out}\n"
    saved = paddle.load(str(out))
    assert set(saved) == {"backbone.w", "neck.w", "head.b"}
    np.testing.assert_array_equal(saved["head.b"].numpy(), [3, 3])
    assert sorted(p.name for p in out.parent.iterdir()) == ["student.pdparams"]  # no temporary left


def test_cli_accepts_a_prefix_and_appends_the_suffix(tmp_path, capsys) -> None:
    paddle.save(_state(), str(tmp_path / "latest.pdparams"))
    main([str(tmp_path / "latest"), "--model", "Teacher", "-o", str(tmp_path / "teacher")])
    assert capsys.readouterr().out == f"wrote 4 tensors (Teacher) to {tmp_path / 'teacher.pdparams'}\n"
    assert len(paddle.load(str(tmp_path / "teacher.pdparams"))) == 4


def test_cli_unknown_name_exits_non_zero_listing_names(tmp_path, capsys) -> None:
    paddle.save(_state(), str(tmp_path / "best_accuracy.pdparams"))
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "best_accuracy.pdparams"), "--model", "student", "-o", str(tmp_path / "x.pdparams")])
    assert exc.value.code != 0
    assert "sub-models present: Student, Student2, Teacher" in capsys.readouterr().err
    assert not (tmp_path / "x.pdparams").exists()


def test_cli_missing_checkpoint_exits_non_zero(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "absent"), "--model", "Student", "-o", str(tmp_path / "x.pdparams")])
    assert exc.value.code != 0
    assert "absent.pdparams" in capsys.readouterr().err


def test_extracted_student_loads_completely_into_a_student(tmp_path, capsys) -> None:
    paddle.seed(0)
    model = DistillationModel({"Student": build_student(), "Student2": build_student()})
    paddle.save(model.state_dict(), str(tmp_path / "best_accuracy.pdparams"))
    main([str(tmp_path), "--model", "Student", "-o", str(tmp_path / "student.pdparams")])
    fresh = build_student()
    report = load_pretrained(fresh, str(tmp_path / "student.pdparams"))
    assert report.missing == report.unexpected == report.mismatched == []
    assert capsys.readouterr().out.startswith(f"wrote {len(fresh.state_dict())} tensors (Student)")
    np.testing.assert_array_equal(
        fresh.head.binarize.conv3.weight.numpy(), model.submodel("Student").head.binarize.conv3.weight.numpy()
    )
