"""MLflow params: each setting of the config once, under its own key; no Hydra instantiation keys, no copies made by
interpolation, no per-run paths."""
from __future__ import annotations

from ocrdet.cli.config import compose_config
from ocrdet.engine.loggers.sweep import config_params


def test_default_params_hold_each_setting_once(tmp_path):
    cfg = compose_config("train", [], output_dir=tmp_path)
    params = config_params(cfg, {"neck": "rse_fpn"})
    assert params["groups.neck"] == "rse_fpn"
    assert params["model.neck.out_channels"] == "96" and params["optim.lr"] == "0.002" and params["seed"] == "1024"
    # copies: crop.size is the crop size; the task's parts are top-level keys
    assert not [k for k in params if k.startswith(("task.model", "task.loss", "paths.", "logger."))]
    assert params["task.eval_forward"] == "predictor"  # the task's own setting stays
    assert "trainer.seed" not in params and "trainer.default_root_dir" not in params
    assert "data.seed" not in params and "data.train_transforms.augment.crop.size" not in params
    assert "data.val_transforms.resize.limit_side_len" not in params
    assert not [k for k in params if k.endswith(("_target_", "_partial_"))]
    assert not [v for v in params.values() if v.startswith("/")]
    # 99 settings + 1 group. Before the config redesign (issue 12) 97 + 1: the datasets' `train` flags (data.train.train,
    # data.val.train) are now the data module's, NormalizeImage's on_batch flag is gone (the data module's
    # batch_normalize says where the train images are normalised), and the train pipeline's copy_paste slot (null),
    # finetune.submodels and the trainer's AMP op lists (amp_custom_white_list/black_list) are new; then (issue 14)
    # trainer.cpu_reuse_memory: 99 + 1; then trainer.cpu_kernels: 100 + 1.
    assert len(params) == 101
    assert params["trainer.cpu_reuse_memory"] == "True"
    assert params["trainer.cpu_kernels"] == "True"
    assert params["trainer.amp_custom_black_list"] == "None"


def test_cml_params_keep_the_teacher_and_drop_the_students_copies(tmp_path):
    cfg = compose_config("train", ["experiment=ppocrv3_det_cml"], output_dir=tmp_path)
    params = config_params(cfg)
    assert params["model.members.teacher.neck.out_channels"] == "256"  # the teacher's own groups
    assert params["model.members.teacher.pretrained"] == "None"
    # the students' architecture is model.backbone/neck/head, written (and logged) once for both
    assert params["model.neck.out_channels"] == "96"
    assert not [k for k in params if k.startswith(("model.members.student.neck", "model.members.student2.neck"))]
    assert params["distill.student"] == "Student" and "model.members.student.name" not in params
