"""MLflow params: each setting of the config once, under its own key; no Hydra instantiation keys, no copies made by
interpolation, no per-run paths."""
from __future__ import annotations

from ocrdet.cli.config import compose_config
from ocrdet.engine.loggers.sweep import config_params


def test_default_params_hold_each_setting_once(tmp_path):
    cfg = compose_config("train", [], output_dir=tmp_path)
    params = config_params(cfg, {"neck": "rse_fpn"})
    assert params["groups.neck"] == "rse_fpn"
    assert params["neck.out_channels"] == "96" and params["optim.lr"] == "0.002" and params["seed"] == "1024"
    # copies: model.* repeats backbone/neck/head, task.* the model, trainer.seed the seed, crop.size the crop size
    assert not [k for k in params if k.startswith(("model.", "task.model", "task.loss", "paths.", "logger."))]
    assert params["task.eval_forward"] == "predictor"  # the task's own setting stays
    assert "trainer.seed" not in params and "trainer.default_root_dir" not in params
    assert "data.train_transforms.crop.size" not in params and "data.val_transforms.resize.limit_side_len" not in params
    assert not [k for k in params if k.endswith(("_target_", "_partial_"))]
    assert not [v for v in params.values() if v.startswith("/")]
    assert len(params) == 98  # 97 settings + 1 group here; the resolved config flattened had 231 keys


def test_cml_params_keep_the_teacher_and_drop_the_students_copies(tmp_path):
    cfg = compose_config("train", ["experiment=ppocrv3_det_cml"], output_dir=tmp_path)
    params = config_params(cfg)
    assert params["members.teacher.model.neck.out_channels"] == "256"  # the teacher's own groups
    assert params["members.teacher.pretrained"] == "None"
    # the students' models are ${backbone}/${neck}/${head} and Student2's is Student's: logged once, as neck.* etc.
    assert not [k for k in params if k.startswith(("members.student.model", "members.student2.model", "model."))]
    assert params["distill.student"] == "Student" and "members.student.name" not in params
