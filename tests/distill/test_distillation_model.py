"""DistillationModel: prefixed keys, per-sub-model pretrained weights, a frozen teacher's gradients and BN mode."""
from __future__ import annotations

from typing import Dict

import numpy as np
import paddle
import pytest
from paddle import nn

from ocrdet.models.distillation import DistillationModel
from tests.conftest import shared_path
from tests.models.builders import build_student, build_teacher


def _cml(frozen_bn_eval: bool = True) -> DistillationModel:
    paddle.seed(0)
    return DistillationModel(
        {"Student": build_student(), "Teacher": build_teacher()}, frozen=["Teacher"], frozen_bn_eval=frozen_bn_eval
    )


def _bn_stats(model: nn.Layer) -> Dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items() if k.endswith(("._mean", "._variance"))}


def _x() -> paddle.Tensor:
    return paddle.to_tensor(np.random.RandomState(0).rand(1, 3, 32, 32).astype("float32"))


def test_state_dict_keys_carry_the_sub_model_prefix_in_order() -> None:
    paddle.seed(0)
    parts = {"Student": build_student(), "Student2": build_student(), "Teacher": build_teacher()}
    expected = [f"{name}.{key}" for name, part in parts.items() for key in part.state_dict()]
    model = DistillationModel(parts, frozen=["Teacher"])
    keys = list(model.state_dict())
    assert keys == expected
    for key in (  # spec 2.1's examples of PaddleOCR's distillation checkpoint keys
        "Student.backbone.conv.conv.weight",
        "Student.backbone.stage0.0.expand_conv.bn._mean",
        "Student.neck.ins_conv.0.se_block.conv1.bias",
        "Student.head.binarize.conv2.weight",
        "Student2.head.binarize.conv2.weight",
        "Teacher.backbone.conv1_1._conv.weight",
        "Teacher.backbone.bb_0_0.conv0._batch_norm._variance",
        "Teacher.neck.pan_lat_conv.3.weight",
        "Teacher.head.thresh.conv3.bias",
    ):
        assert key in keys
    assert model.names == ["Student", "Student2", "Teacher"]
    assert model.submodel("Teacher") is parts["Teacher"]


def test_unknown_names_are_rejected_with_the_valid_ones() -> None:
    model = DistillationModel({"Student": build_student()})
    with pytest.raises(KeyError, match=r"'Teacher'.*\['Student'\]"):
        model.submodel("Teacher")
    with pytest.raises(ValueError, match="frozen.*Teacher"):
        DistillationModel({"Student": build_student()}, frozen=["Teacher"])
    with pytest.raises(ValueError, match="pretrained.*Student2"):
        DistillationModel({"Student": build_student()}, pretrained={"Student2": "x.pdparams"})


def test_pretrained_loads_per_sub_model() -> None:
    path = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    paddle.seed(0)
    model = DistillationModel(
        {"Student": build_student(), "Student2": build_student()}, pretrained={"Student": str(path), "Student2": None}
    )
    assert list(model.load_reports) == ["Student"]
    report = model.load_reports["Student"]
    assert len(report.matched) == 288 and report.unexpected == [] and report.mismatched == []
    file_w = paddle.load(str(path))["backbone.conv.conv.weight"].numpy()
    state = model.state_dict()
    np.testing.assert_array_equal(state["Student.backbone.conv.conv.weight"].numpy(), file_w)
    assert not np.array_equal(state["Student2.backbone.conv.conv.weight"].numpy(), file_w)


def test_frozen_teacher_gets_no_gradient() -> None:
    model = _cml()
    model.train()
    teacher, student = model.submodel("Teacher"), model.submodel("Student")
    assert all(p.stop_gradient for p in teacher.parameters())
    # BN running statistics are stop_gradient parameters in Paddle; every other student parameter trains.
    trainable = [p for n, p in student.named_parameters() if not n.endswith(("._mean", "._variance"))]
    assert trainable and not any(p.stop_gradient for p in trainable)

    out = model(_x())
    assert out["Teacher"]["maps"].stop_gradient
    # A student loss that reads the teacher's map, as the distillation losses do.
    loss = paddle.mean((out["Student"]["maps"][:, 0] - out["Teacher"]["maps"][:, 0]) ** 2)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.backbone.conv.conv.weight.grad is not None


def test_frozen_teacher_stays_in_eval_mode_and_keeps_its_bn_statistics() -> None:
    model = _cml(frozen_bn_eval=True)
    teacher = model.submodel("Teacher")
    before = _bn_stats(teacher)
    model.train()
    assert model.submodel("Student").training
    assert not teacher.training and not any(layer.training for layer in teacher.sublayers())

    out = model(_x())
    assert out["Teacher"]["maps"].shape == [1, 1, 32, 32]  # eval-mode head: shrink map only
    assert out["Student"]["maps"].shape == [1, 3, 32, 32]
    after = _bn_stats(teacher)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_frozen_teacher_stays_in_eval_mode_when_a_parent_calls_train() -> None:
    # Paddle's Layer.train() sets `training` on every descendant without calling their train(): the task that
    # holds the model must not be able to put the teacher back in train mode.
    class Holder(nn.Layer):
        def __init__(self, model: nn.Layer) -> None:
            super().__init__()
            self.model = model

    model = _cml(frozen_bn_eval=True)
    holder = Holder(model)
    teacher = model.submodel("Teacher")
    before = _bn_stats(teacher)
    holder.train()
    model(_x())
    assert not teacher.training
    after = _bn_stats(teacher)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_paddleocr_mode_teacher_bn_statistics_drift() -> None:
    model = _cml(frozen_bn_eval=False)
    teacher = model.submodel("Teacher")
    weights_before = teacher.backbone.conv1_1._conv.weight.numpy().copy()
    before = _bn_stats(teacher)
    model.train()
    assert teacher.training
    out = model(_x())
    assert out["Teacher"]["maps"].shape == [1, 3, 32, 32]
    after = _bn_stats(teacher)
    changed = {k for k in before if not np.array_equal(after[k], before[k])}
    # (At 32x32 the last ResNet stage works on 1x1 maps of one image, and its running stats do not move.)
    for key in ("backbone.conv1_1._batch_norm._mean", "backbone.conv1_1._batch_norm._variance",
                "backbone.bb_2_0.conv1._batch_norm._mean", "head.binarize.conv_bn1._variance"):
        assert key in changed
    np.testing.assert_array_equal(teacher.backbone.conv1_1._conv.weight.numpy(), weights_before)


def test_eval_puts_every_sub_model_in_eval_mode() -> None:
    model = DistillationModel({"Student": build_student(), "Student2": build_student()})
    model.train()
    assert model.submodel("Student2").training
    model.eval()
    assert not model.training and not any(layer.training for layer in model.sublayers())
