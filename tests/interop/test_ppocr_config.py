"""ocrdet-from-paddleocr on a yml with the structure and values of PaddleOCR's ch_PP-OCRv3_det_student.yml (spec
section 1), and on a CML variant of it."""
from __future__ import annotations

import copy
import shlex

import pytest
import yaml

from ocrdet.cli.config import compose_config

NORMALIZE = {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": "hwc"}
DATA_DIR = "./train_data/icdar2015/text_localization/"
STUDENT = {
    "Global": {
        "debug": False, "use_gpu": True, "epoch_num": 500, "log_smooth_window": 20, "print_batch_step": 10,
        "save_model_dir": "./output/ch_PP-OCR_V3_det/", "save_epoch_step": 100, "eval_batch_step": [0, 400],
        "cal_metric_during_train": False, "pretrained_model": None, "checkpoints": None, "save_inference_dir": None,
        "use_visualdl": False, "infer_img": "doc/imgs_en/img_10.jpg",
        "save_res_path": "./checkpoints/det_db/predicts_db.txt", "distributed": True,
    },
    "Architecture": {
        "model_type": "det", "algorithm": "DB", "Transform": None,
        "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "large", "disable_se": True},
        "Neck": {"name": "RSEFPN", "out_channels": 96, "shortcut": True},
        "Head": {"name": "DBHead", "k": 50},
    },
    "Loss": {"name": "DBLoss", "balance_loss": True, "main_loss_type": "DiceLoss", "alpha": 5, "beta": 10,
             "ohem_ratio": 3},
    "Optimizer": {"name": "Adam", "beta1": 0.9, "beta2": 0.999,
                  "lr": {"name": "Cosine", "learning_rate": 0.001, "warmup_epoch": 2},
                  "regularizer": {"name": "L2", "factor": 5.0e-05}},
    "PostProcess": {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                    "unclip_ratio": 1.5},
    "Metric": {"name": "DetMetric", "main_indicator": "hmean"},
    "Train": {
        "dataset": {
            "name": "SimpleDataSet", "data_dir": DATA_DIR, "label_file_list": [DATA_DIR + "train_icdar2015_label.txt"],
            "ratio_list": [1.0],
            "transforms": [
                {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
                {"DetLabelEncode": None},
                {"IaaAugment": {"augmenter_args": [
                    {"type": "Fliplr", "args": {"p": 0.5}},
                    {"type": "Affine", "args": {"rotate": [-10, 10]}},
                    {"type": "Resize", "args": {"size": [0.5, 3]}},
                ]}},
                {"EastRandomCropData": {"size": [960, 960], "max_tries": 50, "keep_ratio": True}},
                {"MakeBorderMap": {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}},
                {"MakeShrinkMap": {"shrink_ratio": 0.4, "min_text_size": 8}},
                {"NormalizeImage": dict(NORMALIZE)},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]}},
            ],
        },
        "loader": {"shuffle": True, "drop_last": False, "batch_size_per_card": 8, "num_workers": 4},
    },
    "Eval": {
        "dataset": {
            "name": "SimpleDataSet", "data_dir": DATA_DIR, "label_file_list": [DATA_DIR + "test_icdar2015_label.txt"],
            "transforms": [
                {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": None},
                {"NormalizeImage": dict(NORMALIZE)},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ],
        },
        "loader": {"shuffle": False, "drop_last": False, "batch_size_per_card": 1, "num_workers": 2},
    },
}
DATA_OVERRIDES = [
    f"data.data_dir={DATA_DIR}",
    f"data.train_label_files=[{DATA_DIR}train_icdar2015_label.txt]",
    f"data.val_label_files=[{DATA_DIR}test_icdar2015_label.txt]",
]
NOTES = [
    "# Not converted (no ocrdet equivalent, or done differently):",
    "#   Global.save_model_dir: checkpoints go to <run dir>/checkpoints (force one with callbacks.model_checkpoint.dirpath=)",
    "#   Global.infer_img: ocrdet-predict weights=<run dir> input=<image, folder or glob>",
    "#   Global.save_res_path: ocrdet-predict output=<dir> writes det_results.txt there",
    "#   Global.distributed: ignored, as PaddleOCR ignores it (it follows the launch)",
]


@pytest.fixture(scope="module")
def script():
    from ocrdet.cli import from_paddleocr

    return from_paddleocr


def convert(script, tmp_path, config: dict, capsys, opts=()) -> tuple[list[str], list[str]]:
    path = tmp_path / "det.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    script.main([str(path), *(["-o", *opts] if opts else [])])
    out = capsys.readouterr().out.rstrip("\n").split("\n")
    notes = [line for line in out if line.startswith("#")]
    command = shlex.split(" ".join(line.rstrip("\\") for line in out if not line.startswith("#")))
    return command, notes


def test_the_student_recipe_becomes_its_experiment_plus_the_label_files(script, tmp_path, capsys):
    command, notes = convert(script, tmp_path, STUDENT, capsys)
    assert command == ["ocrdet-train", "experiment=ppocrv3_det_student", "data=paddleocr_label", *DATA_OVERRIDES]
    assert notes == NOTES
    cfg = compose_config("train", command[1:])
    assert cfg.data.train_label_files == [DATA_DIR + "train_icdar2015_label.txt"]
    assert (cfg.trainer.max_epochs, cfg.trainer.val_check_interval, cfg.optim.weight_decay) == (500, 400, 5e-5)


def test_changed_values_become_overrides_and_unknown_keys_are_listed(script, tmp_path, capsys):
    opts = ["Global.epoch_num=20", "Global.use_gpu=false", "Global.pretrained_model=./student",
            "Global.eval_batch_step=[100,50]", "Architecture.Neck.name=DBFPN", "Optimizer.lr.learning_rate=0.0005",
            "PostProcess.box_thresh=0.5", "Train.loader.batch_size_per_card=4", "Global.use_visualdl=true"]
    config = copy.deepcopy(STUDENT)
    config["Eval"]["dataset"]["transforms"][2] = {"DetResizeForTest": {"limit_side_len": 960, "limit_type": "max"}}
    config["Train"]["dataset"]["transforms"][2]["IaaAugment"]["augmenter_args"].append({"type": "Blur", "args": {}})
    command, notes = convert(script, tmp_path, config, capsys, opts)
    assert command == [
        "ocrdet-train", "experiment=ppocrv3_det_student", "neck=db_fpn", "finetune=pretrained", "data=paddleocr_label",
        "trainer.accelerator=cpu", "trainer.max_epochs=20", "trainer.val_check_interval=50",
        "finetune.pretrained=./student", "optim.lr=0.0005", "postprocess.box_thresh=0.5", *DATA_OVERRIDES,
        "data.val_transforms.resize.limit_side_len=960", "data.val_transforms.resize.limit_type=max", "data.batch_size=4",
    ]
    assert notes == [
        NOTES[0],
        "#   Architecture.Neck.shortcut: no ocrdet equivalent",
        NOTES[1],
        "#   Global.eval_batch_step: evaluation starts with the first interval; PaddleOCR waits until step 100",
        "#   Global.use_visualdl: metrics and curves go to MLflow (logger.mlflow.*)",
        *NOTES[2:],
        "#   Train.dataset.transforms.IaaAugment.Blur: {}: IaaAugment supports Fliplr p, Affine rotate, Resize size",
    ]
    compose_config("train", command[1:])


def test_a_cml_recipe_maps_to_the_cml_experiment(script, tmp_path, capsys):
    config = copy.deepcopy(STUDENT)
    student = {k: config["Architecture"][k] for k in ("Backbone", "Neck", "Head")}
    teacher = {"Backbone": {"name": "ResNet_vd", "in_channels": 3, "layers": 50},
               "Neck": {"name": "LKPAN", "out_channels": 256}, "Head": {"name": "DBHead", "kernel_list": [7, 2, 2], "k": 50}}
    config["Architecture"] = {"name": "DistillationModel", "algorithm": "Distillation", "model_type": "det", "Models": {
        "Student": {"pretrained": "./mv3.pdparams", "freeze_params": False, "return_all_feats": False,
                    "model_type": "det", "algorithm": "DB", **student},
        "Student2": {"pretrained": None, "freeze_params": False, "return_all_feats": False,
                     "model_type": "det", "algorithm": "DB", **copy.deepcopy(student)},
        "Teacher": {"pretrained": "./dml_teacher", "freeze_params": True, "return_all_feats": False,
                    "model_type": "det", "algorithm": "DB", **teacher},
    }}
    config["Loss"] = {"name": "CombinedLoss", "loss_config_list": [
        {"DistillationDilaDBLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}},
        {"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": ["Student", "Student2"]}},
        {"DistillationDBLoss": {"weight": 2.0, "model_name_list": ["Student", "Student2"]}},
    ]}
    config["PostProcess"].update(name="DistillationDBPostProcess", model_name=["Student"], key="head_out")
    config["Train"]["dataset"]["transforms"].insert(2, {"CopyPaste": None})
    command, notes = convert(script, tmp_path, config, capsys)
    assert command == [
        "ocrdet-train", "experiment=ppocrv3_det_cml", "data=paddleocr_label", "model.members.student.pretrained=./mv3.pdparams",
        "model.members.teacher.pretrained=./dml_teacher", "loss.weights.db=2.0", *DATA_OVERRIDES,
    ]
    assert notes == NOTES
    cfg = compose_config("train", command[1:])
    assert cfg.model.members.teacher.pretrained == "./dml_teacher" and cfg.data.train_transforms.copy_paste is not None
