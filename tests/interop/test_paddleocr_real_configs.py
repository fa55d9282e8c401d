"""ocrdet-from-paddleocr on PaddleOCR's own configs (../shared/fixtures/paddleocr_configs): PaddleOCR's defaults for
the keys they leave out, URLs refused, architectures ocrdet lacks refused by name; every printed command composes."""
from __future__ import annotations

import shlex

import pytest

from ocrdet.cli.config import compose_config
from ocrdet.cli.from_paddleocr import main
from tests.conftest import shared_path

LABELS = "./train_data/icdar2015/text_localization/"
DATA = [
    "data=paddleocr_label", f"data.data_dir={LABELS}", f"data.train_label_files=[{LABELS}train_icdar2015_label.txt]",
    f"data.val_label_files=[{LABELS}test_icdar2015_label.txt]",
]  # fmt: skip


def translate(name: str, capsys, *opts: str) -> tuple[list[str], list[str], str]:
    """(command, note lines, stderr) for one fixture config."""
    main([str(shared_path("fixtures", "paddleocr_configs", name)), *(["-o", *opts] if opts else [])])
    captured = capsys.readouterr()
    lines = captured.out.rstrip("\n").split("\n")
    command = shlex.split(" ".join(line.rstrip("\\") for line in lines if not line.startswith("#")))
    return command, [line for line in lines if line.startswith("#")], captured.err


def test_v3_student_is_its_experiment_and_its_url_is_refused_intact(capsys) -> None:
    command, notes, err = translate("ch_PP-OCRv3_det_student.yml", capsys)
    assert command == ["ocrdet-train", "experiment=ppocrv3_det_student", *DATA]
    url = "https://paddleocr.bj.bcebos.com/pretrained/MobileNetV3_large_x0_5_pretrained.pdparams"
    assert f"#   Global.pretrained_model: {url} is a URL and ocrdet downloads nothing: download it, then pass the " \
           "local file (-o Global.pretrained_model=<file>)" in notes  # fmt: skip
    assert f"Global.pretrained_model: {url} is a URL; not converted" in err
    compose_config("train", command[1:])


def test_v3_cml_and_dml_are_their_experiments(capsys) -> None:
    command, _, _ = translate("ch_PP-OCRv3_det_cml.yml", capsys)
    assert command == ["ocrdet-train", "experiment=ppocrv3_det_cml", *DATA]
    command, _, _ = translate("ch_PP-OCRv3_det_dml.yml", capsys)
    assert command == ["ocrdet-train", "experiment=ppocrv3_det_dml", "data=paddleocr_label",
                       "callbacks.progress.refresh_rate=2", *DATA[1:]]  # fmt: skip
    compose_config("train", command[1:])


def test_use_amp_without_amp_level_means_paddleocrs_o2(capsys) -> None:
    command, _, _ = translate("ch_PP-OCRv3_det_cml.yml", capsys, "Global.use_amp=true")
    assert "trainer.precision=bf16" in command  # the yml's amp_dtype: bfloat16
    assert "trainer.amp_level=O2" in command
    cfg = compose_config("train", command[1:])
    assert (cfg.trainer.precision, cfg.trainer.amp_level) == ("bf16", "O2")


def test_det_mv3_db_keeps_se_and_a_constant_lr(capsys) -> None:
    command, _, _ = translate("det_mv3_db.yml", capsys)
    cfg = compose_config("train", command[1:])
    assert cfg.model.backbone.disable_se is False  # MobileNetV3's default: the yml does not set it
    assert cfg.optim.schedule == "constant"  # `lr: {learning_rate: 0.001}` without a name is PaddleOCR's Const
    assert (cfg.optim.warmup_epochs, cfg.optim.weight_decay) == (0.0, 0.0)
    assert cfg.model.neck._target_.endswith("DBFPN") and cfg.model.neck.out_channels == 256
    assert list(cfg.data.val_transforms.resize.image_shape) == [736, 1280]
    assert cfg.finetune.pretrained == "./pretrain_models/MobileNetV3_large_x0_5_pretrained"


def test_det_r50_vd_db(capsys) -> None:
    command, _, _ = translate("det_r50_vd_db.yml", capsys)
    cfg = compose_config("train", command[1:])
    assert cfg.model.backbone._target_.endswith("ResNetVd") and cfg.model.backbone.layers == 50
    assert (cfg.optim.schedule, cfg.postprocess.box_thresh, cfg.postprocess.unclip_ratio) == ("constant", 0.7, 1.5)


@pytest.mark.parametrize("name, missing", [
    ("ch_PP-OCRv4_det_student.yml", ["Architecture.Backbone.name: PPLCNetV3 is not implemented in ocrdet"]),
    ("ch_PP-OCRv4_det_cml.yml", ["Architecture.Models.Student.Backbone.name: PPLCNetV3 is not implemented"]),
    ("ch_PP-OCRv4_det_teacher.yml", ["Architecture.Backbone.name: PPHGNet_small is not implemented",
                                     "Architecture.Head.name: PFHeadLocal is not implemented in ocrdet"]),
])  # fmt: skip
def test_v4_architectures_are_refused_by_name(name: str, missing: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        translate(name, capsys)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no command to paste
    for text in missing:
        assert text in captured.err
