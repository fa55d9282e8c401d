"""Parameter counts (spec section 2.8) and output shapes of the PP-OCRv3 detection networks."""
from __future__ import annotations

from functools import partial
from typing import Tuple

import numpy as np
import paddle
import pytest
from paddle import nn

from ocrdet.models.backbones.mobilenet_v3 import MobileNetV3, SEModule, make_divisible
from ocrdet.models.backbones.resnet_vd import ResNetVd
from ocrdet.models.heads.db_head import DBHead
from ocrdet.models.necks.db_fpn import DBFPN
from ocrdet.models.necks.lk_pan import LKPAN
from tests.models.builders import build_student, build_teacher


def counts(layer: nn.Layer) -> Tuple[int, int]:
    """(trainable values, non-trainable values = BN running mean/var)."""
    trainable = sum(int(np.prod(p.shape)) for p in layer.parameters() if not p.stop_gradient)
    frozen = sum(int(np.prod(p.shape)) for p in layer.parameters() if p.stop_gradient)
    return trainable, frozen


@pytest.fixture(scope="module")
def student():
    paddle.seed(0)
    return build_student()


@pytest.fixture(scope="module")
def teacher():
    paddle.seed(0)
    return build_teacher()


def test_student_counts(student) -> None:
    assert counts(student) == (603_418, 12_560)
    assert counts(student.backbone) == (398_480, 12_368)
    assert counts(student.neck) == (158_424, 0)
    assert counts(student.head) == (46_514, 192)
    assert student.backbone.out_channels == [16, 24, 56, 480]


def test_student_with_dbfpn_counts() -> None:
    model = build_student(neck=partial(DBFPN, out_channels=96))
    assert counts(model) == (583_234, 12_560)
    assert counts(model.neck) == (138_240, 0)


def test_teacher_counts(teacher) -> None:
    assert counts(teacher) == (32_895_970, 53_760)
    assert counts(teacher.backbone) == (23_527_264, 53_248)
    assert counts(teacher.neck) == (7_729_152, 0)
    assert counts(teacher.head) == (1_639_554, 512)
    assert teacher.backbone.out_channels == [256, 512, 1024, 2048]


@pytest.mark.parametrize(
    "neck, kernel_list, total",
    [
        (partial(LKPAN, out_channels=256, mode="lite"), (7, 2, 2), 27_950_818),
        (partial(DBFPN, out_channels=256), (3, 2, 2), 25_482_722),
    ],
    ids=["lkpan-lite", "dbfpn256"],
)
def test_teacher_variant_totals(neck, kernel_list, total) -> None:
    assert sum(counts(build_teacher(neck=neck, kernel_list=kernel_list))) == total


def test_paddleocr_key_names(student, teacher) -> None:
    s_keys = set(student.state_dict())
    for key in [
        "backbone.conv.conv.weight",
        "backbone.stage0.0.expand_conv.bn._mean",
        "backbone.stage3.3.conv.weight",
        "neck.ins_conv.0.in_conv.weight",
        "neck.inp_conv.3.se_block.conv2.bias",
        "head.binarize.conv1.weight",
        "head.thresh.conv_bn2._variance",
    ]:
        assert key in s_keys
    t_keys = set(teacher.state_dict())
    for key in [
        "backbone.conv1_1._conv.weight",
        "backbone.conv1_1._batch_norm._mean",
        "backbone.bb_0_0.conv0._batch_norm._variance",
        "backbone.bb_1_0.short._conv.weight",
        "backbone.bb_3_2.conv2._conv.weight",
        "neck.pan_head_conv.2.weight",
        "neck.pan_lat_conv.3.weight",
        "head.thresh.conv3.bias",
    ]:
        assert key in t_keys
    assert "backbone.bb_0_1.short._conv.weight" not in t_keys  # identity shortcut inside a stage


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_output_shapes(name, request) -> None:
    model = request.getfixturevalue(name)
    x = paddle.rand([1, 3, 64, 64])
    with paddle.no_grad():
        model.train()
        train_maps = model(x)["maps"]
        model.eval()
        eval_maps = model(x)["maps"]
    assert list(train_maps.shape) == [1, 3, 64, 64]
    assert list(eval_maps.shape) == [1, 1, 64, 64]
    # P, T and B are probabilities; eval P equals channel 0 only up to BN mode, so just check the range.
    assert float(train_maps.min()) >= 0.0 and float(train_maps.max()) <= 1.0


def test_eval_skips_threshold_branch() -> None:
    head = DBHead(in_channels=16)
    head.eval()
    called = []
    head.thresh.register_forward_post_hook(lambda *args: called.append(True))
    with paddle.no_grad():
        head(paddle.rand([1, 16, 4, 4]))
    assert not called


def test_binary_map_is_step_of_p_minus_t() -> None:
    paddle.seed(1)
    head = DBHead(in_channels=16, k=50)
    with paddle.no_grad():
        p, t, b = paddle.split(head(paddle.rand([1, 16, 4, 4]))["maps"], 3, axis=1)
    np.testing.assert_allclose(b.numpy(), 1 / (1 + np.exp(-50 * (p.numpy() - t.numpy()))), rtol=1e-5, atol=1e-6)


def test_head_init() -> None:
    head = DBHead(in_channels=16)
    for bn in (head.binarize.conv_bn1, head.thresh.conv_bn2):
        np.testing.assert_array_equal(bn.weight.numpy(), 1.0)
        np.testing.assert_allclose(bn.bias.numpy(), 1e-4)
    bound = 1 / np.sqrt(4)  # U(+-1/sqrt(C/4)) with C/4 = 4
    assert np.abs(head.binarize.conv2.bias.numpy()).max() <= bound
    assert np.abs(head.binarize.conv3.bias.numpy()).max() <= bound


def test_se_gate_is_hardsigmoid_slope_0_2() -> None:
    se = SEModule(8)
    for conv in (se.conv1, se.conv2):
        conv.weight.set_value(np.zeros(conv.weight.shape, "float32"))
    se.conv2.bias.set_value(np.ones([8], "float32"))
    with paddle.no_grad():
        out = se(paddle.ones([1, 8, 2, 2]))
    # clip(0.2 * 1 + 0.5) = 0.7; Paddle's default 1/6 slope would give 0.6667.
    np.testing.assert_allclose(out.numpy(), 0.7, rtol=1e-6)


@pytest.mark.parametrize("v, expected", [(8, 8), (100, 104), (92, 96), (4, 8), (960 * 0.35, 336), (16 * 0.35, 8)])
def test_make_divisible(v, expected) -> None:
    assert make_divisible(v) == expected


@pytest.mark.parametrize(
    "model_name, scale, out_channels",
    [("large", 0.5, [16, 24, 56, 480]), ("large", 1.0, [24, 40, 112, 960]), ("small", 0.35, [8, 8, 16, 200])],
)
def test_mobilenet_variants(model_name, scale, out_channels) -> None:
    net = MobileNetV3(model_name=model_name, scale=scale)
    assert net.out_channels == out_channels
    with paddle.no_grad():
        feats = net(paddle.rand([1, 3, 64, 64]))
    assert [f.shape[1] for f in feats] == out_channels
    assert [f.shape[2] for f in feats] == [16, 8, 4, 2]


@pytest.mark.parametrize("layers, out_channels", [(18, [64, 128, 256, 512]), (34, [64, 128, 256, 512])])
def test_resnet_basic_variants(layers, out_channels) -> None:
    net = ResNetVd(layers=layers)
    assert net.out_channels == out_channels
    with paddle.no_grad():
        feats = net(paddle.rand([1, 3, 64, 64]))
    assert [f.shape[1] for f in feats] == out_channels
    assert [f.shape[2] for f in feats] == [16, 8, 4, 2]


def test_invalid_configs() -> None:
    with pytest.raises(ValueError):
        MobileNetV3(model_name="medium")
    with pytest.raises(ValueError):
        ResNetVd(layers=42)
    with pytest.raises(ValueError):
        LKPAN([16, 24, 56, 480], mode="huge")
