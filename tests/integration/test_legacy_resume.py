"""A checkpoint or run dir written before the config redesign (issue 12) records its config in the old layout
(top-level backbone/neck/head and members, copies under model.* and task.*, `freeze`): a resume with the same
settings in today's keys is accepted, a changed setting is still refused under its new name, and the run's saved
overrides are read in today's keys."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ocrdet.cli.config import compose_config
from ocrdet.cli.train import changed_keys
from tests.integration.conftest import TINY

LEGACY = OmegaConf.to_container(OmegaConf.load(Path(__file__).with_name("legacy") / "cml_config_3d7a42c.yaml"))


def _changed(tmp_path, *overrides: str) -> list[tuple]:
    cfg = compose_config("train", [*TINY, "logger=none", "distill_mode=cml", *overrides], output_dir=tmp_path)
    return changed_keys(cfg, LEGACY)


def test_the_same_settings_in_the_new_layout_resume(tmp_path):
    assert _changed(tmp_path) == []


def test_a_changed_setting_is_named_by_its_new_key(tmp_path):
    assert _changed(tmp_path, "optim.lr=0.1", "model.members.teacher.frozen=false", "model.neck.out_channels=64") == [
        ("model.members.teacher.frozen", True, False),
        ("model.neck.out_channels", 96, 64),
        ("optim.lr", 0.002, 0.1),
    ]


def test_a_run_s_saved_overrides_are_read_in_today_s_keys():
    from ocrdet.cli.config import legacy_override

    saved = ["neck=db_fpn", "neck.out_channels=64", "members.teacher.pretrained=t.pdparams",
             "+members.student.freeze=true",
             "backbone@members.teacher.model.backbone=mobilenet_v3_large_x0_5",
             "transforms@data.train_transforms=db_train_copy_paste", "data.train_transforms.crop.max_tries=7"]
    assert [legacy_override(o) for o in saved] == [
        "neck=db_fpn", "model.neck.out_channels=64", "model.members.teacher.pretrained=t.pdparams",
        "+model.members.student.frozen=true", "backbone@model.members.teacher.backbone=mobilenet_v3_large_x0_5",
        "copy_paste=ppocrv3", "data.train_transforms.augment.crop.max_tries=7",
    ]
    compose_config("train", ["distill_mode=cml", *[legacy_override(o) for o in saved if "+" not in o]])
