"""inference.yml: PaddleOCR 3.x's layout, read back to the same settings, PaddleOCR's defaults for absent keys, and
command-line keys that an export's settings do not replace. No Paddle needed."""
from __future__ import annotations

import yaml

from ocrdet.cli.config import compose_config
from ocrdet.det.deploy import (
    InferenceSettings,
    apply_settings,
    default_model_name,
    differences,
    read_settings,
    settings_from_config,
    write_settings,
)


def ppocrv3_settings() -> InferenceSettings:
    cfg = compose_config("export", ["weights=x", "output_dir=x"])
    return settings_from_config(cfg.eval_transforms, cfg.postprocess, default_model_name(cfg.model))


def test_inference_yml_has_paddleocr_layout_and_reads_back(tmp_path) -> None:
    settings = ppocrv3_settings()
    path = write_settings(tmp_path / "inference.yml", settings)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["Global"] == {"model_name": "PP-OCRv3_mobile_det"}
    ops = document["PreProcess"]["transform_ops"]
    assert [next(iter(op)) for op in ops] == [
        "DecodeImage", "DetLabelEncode", "DetResizeForTest", "NormalizeImage", "ToCHWImage", "KeepKeys"
    ]  # fmt: skip
    assert ops[0]["DecodeImage"] == {"channel_first": False, "img_mode": "BGR"}
    assert ops[2]["DetResizeForTest"] == {"limit_side_len": 736, "limit_type": "min"}
    assert ops[3]["NormalizeImage"]["mean"] == [0.485, 0.456, 0.406]
    assert document["PostProcess"] == {
        "name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000, "unclip_ratio": 1.5,
        "use_dilation": False, "score_mode": "fast", "box_type": "quad",
    }  # fmt: skip
    assert read_settings(path) == settings
    assert differences(read_settings(path), settings) == []


def test_paddleocr_written_file_gets_paddleocr_defaults(tmp_path) -> None:
    # as PaddleOCR's export writes a det_mv3_db model: its Eval transforms, scale as an expression, no unclip_ratio
    text = """
Global: {model_name: PP-OCRv3_mobile_det}
PreProcess:
  transform_ops:
  - DecodeImage: {img_mode: BGR, channel_first: false}
  - DetResizeForTest: {image_shape: [736, 1280]}
  - NormalizeImage: {scale: 1./255., mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: hwc}
PostProcess: {name: DBPostProcess, thresh: 0.3, box_thresh: 0.6}
"""
    (tmp_path / "inference.yml").write_text(text, encoding="utf-8")
    settings = read_settings(tmp_path / "inference.yml")
    assert settings.resize["image_shape"] == [736, 1280]
    assert settings.normalize["scale"] == 1 / 255
    assert settings.postprocess["unclip_ratio"] == 2.0  # DBPostProcess's own default
    assert settings.postprocess["max_candidates"] == 1000


def test_differences_name_each_setting() -> None:
    settings = ppocrv3_settings()
    other = InferenceSettings(
        settings.model_name, {**settings.resize, "limit_type": "max", "limit_side_len": 960},
        settings.normalize, {**settings.postprocess, "box_thresh": 0.5},
    )  # fmt: skip
    assert differences(other, settings) == [
        "resize.limit_side_len: 960 vs 736", "resize.limit_type: 'max' vs 'min'", "postprocess.box_thresh: 0.5 vs 0.6"
    ]  # fmt: skip


def test_apply_settings_leaves_command_line_keys_alone() -> None:
    cfg = compose_config("predict", ["weights=x", "input=x", "postprocess.box_thresh=0.5"])
    base = ppocrv3_settings()  # resize 736 min, box_thresh 0.6, unclip 1.5
    settings = InferenceSettings(base.model_name, base.resize, base.normalize, {**base.postprocess, "unclip_ratio": 2.0})
    changed = apply_settings(cfg, settings, "transforms", explicit=["postprocess.box_thresh", "+transforms.resize"])
    assert changed == ["postprocess.unclip_ratio=2.0"]
    assert (cfg.transforms.resize.limit_side_len, cfg.transforms.resize.limit_type) == (960, "max")  # parent given
    assert cfg.postprocess.box_thresh == 0.5  # given

    cfg = compose_config("predict", ["weights=x", "input=x"])
    changed = apply_settings(cfg, settings, "transforms")
    assert changed == [
        "transforms.resize.limit_side_len=736", "transforms.resize.limit_type='min'", "postprocess.unclip_ratio=2.0"
    ]  # fmt: skip
