"""`ocrdet-from-paddleocr`: print the ocrdet-train command equivalent to a PaddleOCR detection config.

    ocrdet-from-paddleocr configs/det/ch_PP-OCRv3/ch_PP-OCRv3_det_student.yml [-o Key=value ...]

The command starts from the closest ocrdet experiment (ppocrv3_det_student / _cml / _dml) and lists only the
overrides that change its composed config. A key the yml leaves out means PaddleOCR's default for it (its
constructors' defaults: MobileNetV3 with SE, a constant lr, AMP level O2, ...), so those are emitted wherever they
differ from the experiment's. An architecture ocrdet does not have (PPLCNetV3, PPHGNet, PFHeadLocal, ...) is an error
naming it (exit code 2); a pretrained model given as a URL is not converted (nothing is downloaded). Keys not converted (no ocrdet equivalent, or done differently) are printed
after it as `#` comments, each with what to do instead, so the whole output can be pasted into a shell. `-o` applies PaddleOCR-style
`Section.key=value` overrides to the yml first, as PaddleOCR's tools/train.py -o does.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

_ABSENT = object()
_MISSING = object()
_PLAIN = re.compile(r"^[A-Za-z0-9_./:\-]+$")
_KEYWORDS = {"null", "true", "false", "none", "nan", "inf"}

# PaddleOCR names -> (ocrdet group option, the group's keys that map one to one)
BACKBONES = {"MobileNetV3": "mobilenet_v3_large_x0_5", "ResNet": "resnet50_vd", "ResNet_vd": "resnet50_vd"}
NECKS = {"RSEFPN": "rse_fpn", "DBFPN": "db_fpn", "LKPAN": "lk_pan"}
TEACHER_GROUPS = {"backbone": "resnet50_vd", "neck": "lk_pan", "head": "db_k7"}  # conf/distill_mode/cml.yaml
EXPERIMENTS = {"student": "ppocrv3_det_student", "cml": "ppocrv3_det_cml", "dml": "ppocrv3_det_dml"}
DISTILL_LOSS_WEIGHTS = {"DistillationDilaDBLoss": "dila_db", "DistillationDMLLoss": "dml", "DistillationDBLoss": "db"}
# PaddleOCR's constructor defaults for the keys converted: what a key left out of a yml means there.
BACKBONE_DEFAULTS = {"MobileNetV3": {"scale": 0.5, "model_name": "large", "disable_se": False},
                     "ResNet": {"layers": 50}, "ResNet_vd": {"layers": 50}}  # fmt: skip
NECK_DEFAULTS = {"RSEFPN": {"shortcut": True}, "DBFPN": {}, "LKPAN": {"mode": "large"}}
HEAD_DEFAULTS = {"k": 50, "kernel_list": [3, 2, 2]}
DBLOSS_DEFAULTS = {"alpha": 5, "beta": 10, "ohem_ratio": 3}
ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08}
POSTPROCESS_DEFAULTS = {"thresh": 0.3, "box_thresh": 0.7, "max_candidates": 1000, "unclip_ratio": 2.0,
                        "use_dilation": False, "score_mode": "fast", "box_type": "quad"}  # fmt: skip
CROP_DEFAULTS = {"max_tries": 10, "keep_ratio": True, "min_crop_side_ratio": 0.1}
BORDER_DEFAULTS = {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}
SHRINK_DEFAULTS = {"shrink_ratio": 0.4, "min_text_size": 8}
COPY_PASTE_DEFAULTS = {"objects_paste_ratio": 0.2, "limit_paste": True}
NORMALIZE_DEFAULTS = {"scale": 1.0 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
IAA_DEFAULTS = [{"type": "Fliplr", "args": {"p": 0.5}}, {"type": "Affine", "args": {"rotate": [-10, 10]}},
                {"type": "Resize", "args": {"size": [0.5, 3]}}]  # fmt: skip
LR_SCHEDULES = {"Cosine": "cosine", "Const": "constant"}  # PaddleOCR builds Const for an lr block without name
AMP_LEVEL_DEFAULT = "O2"  # tools/train.py: Global.amp_level defaults to O2
SEED_DEFAULT = 1024
# Keys that describe structure ocrdet derives by itself: dropped without a note.
STRUCTURAL = {"name", "model_type", "algorithm", "Transform", "return_all_feats", "in_channels"}


@dataclass
class Conversion:
    """What a PaddleOCR config became: group choices, key=value overrides and the keys left unconverted."""

    groups: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what makes the config untranslatable

    def note(self, key: str, why: str) -> None:
        self.notes.append((key, why))


class UnsupportedConfig(ValueError):
    """The PaddleOCR config uses something ocrdet does not implement (an architecture), so no command is printed."""


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^[a-z][a-z0-9+.-]*://", value.strip(), re.IGNORECASE) is not None


def _local_weights(conv: Conversion, where: str, value: Any) -> Any:
    """`value` when it is a local path; a URL is refused with a note (ocrdet downloads nothing), returning None."""
    if not _is_url(value):
        return value
    conv.note(where, f"{value} is a URL and ocrdet downloads nothing: download it, then pass the local file "
                     f"(-o {where}=<file>)")  # fmt: skip
    print(f"warning: {where}: {value} is a URL; not converted (download it and pass the local file)", file=sys.stderr)
    return None


def _number(value: Any) -> Any:
    """PaddleOCR writes some numbers as expressions (`scale: 1./255.`) and evaluates them; do the same for a/b."""
    if isinstance(value, str) and re.fullmatch(r"\s*[\d.eE+-]+\s*/\s*[\d.eE+-]+\s*", value):
        top, bottom = value.split("/")
        return float(top) / float(bottom)
    return value


def _ops(transforms: Sequence[Any] | None) -> list[tuple[str, dict]]:
    """PaddleOCR's transform list `[{Op: {args} | null}, ...]` as (name, args) pairs."""
    ops = []
    for item in transforms or []:
        ((name, args),) = item.items()
        ops.append((name, dict(args or {})))
    return ops


def _map_keys(
    conv: Conversion, where: str, args: dict, mapping: dict[str, str], skip: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Mapped keys become values; a mapped key absent from `args` gets PaddleOCR's default from `defaults`."""
    for key, value in args.items():
        if key in mapping:
            conv.values[mapping[key]] = _number(value)
        elif key not in skip and key not in STRUCTURAL:
            conv.note(f"{where}.{key}", "no ocrdet equivalent")
    for key, value in (defaults or {}).items():
        if key not in args and key in mapping:
            conv.values[mapping[key]] = value


def _architecture(conv: Conversion, arch: dict, where: str, prefix: str) -> dict[str, str]:
    """Backbone/Neck/Head of one model into overrides under `prefix` (`model.` or `model.members.teacher.`); returns the
    group options it corresponds to."""
    groups: dict[str, str] = {}
    backbone = dict(arch.get("Backbone") or {})
    name = backbone.pop("name", None)
    if name in BACKBONES:
        groups["backbone"] = BACKBONES[name]
        keys = ("scale", "model_name", "disable_se", "in_channels") if name == "MobileNetV3" else ("layers", "in_channels")
        mapping = {k: f"{prefix}backbone.{k}" for k in keys}
        _map_keys(conv, f"{where}.Backbone", backbone, mapping, defaults=BACKBONE_DEFAULTS[name])
    else:
        conv.errors.append(f"{where}.Backbone.name: {name} is not implemented in ocrdet (MobileNetV3, ResNet_vd are)")
    neck = dict(arch.get("Neck") or {})
    name = neck.pop("name", None)
    if name in NECKS:
        groups["neck"] = NECKS[name]
        keys = {"RSEFPN": ("out_channels", "shortcut"), "DBFPN": ("out_channels",), "LKPAN": ("out_channels", "mode")}
        mapping = {k: f"{prefix}neck.{k}" for k in keys[name]}
        _map_keys(conv, f"{where}.Neck", neck, mapping, defaults=NECK_DEFAULTS[name])
    else:
        conv.errors.append(f"{where}.Neck.name: {name} is not implemented in ocrdet (RSEFPN, DBFPN, LKPAN are)")
    head = dict(arch.get("Head") or {})
    name = head.pop("name", None)
    if name == "DBHead":
        kernels = list(head.get("kernel_list", [3, 2, 2]))
        groups["head"] = "db_k7" if kernels == [7, 2, 2] else "db"
        mapping = {"k": f"{prefix}head.k", "kernel_list": f"{prefix}head.kernel_list"}
        _map_keys(conv, f"{where}.Head", head, mapping, defaults=HEAD_DEFAULTS)
    else:
        conv.errors.append(f"{where}.Head.name: {name} is not implemented in ocrdet (DBHead is)")
    return groups


def _global(conv: Conversion, section: dict, distill_mode: str) -> None:
    simple = {
        "epoch_num": "trainer.max_epochs",
        "log_smooth_window": "callbacks.progress.smooth_window",
        "save_epoch_step": "callbacks.model_checkpoint.every_n_epochs",
        "seed": "seed",
    }
    advice = {
        "cal_metric_during_train": "training-batch metrics are not computed; val/* metrics are logged at each eval",
        "use_visualdl": "metrics and curves go to MLflow (logger.mlflow.*)",
        "use_wandb": "metrics and curves go to MLflow (logger.mlflow.*)",
        "save_inference_dir": "after training: ocrdet-export weights=<run dir> -o <dir>",
        "infer_img": "ocrdet-predict weights=<run dir> input=<image, folder or glob>",
        "save_res_path": "ocrdet-predict output=<dir> writes det_results.txt there",
        "distributed": "ignored, as PaddleOCR ignores it (it follows the launch)",
        "d2s_train_image_shape": "dygraph-to-static training is not supported; training runs in dygraph",
        "debug": "no ocrdet equivalent",
        # Mapping it to callbacks.model_checkpoint.dirpath would make every job of a sweep write the same folder.
        "save_model_dir": "checkpoints go to <run dir>/checkpoints (force one with callbacks.model_checkpoint.dirpath=)",
    }
    for key, value in section.items():
        where = f"Global.{key}"
        if key in simple:
            if value is not None and value != "":
                conv.values[simple[key]] = value
        elif key == "use_gpu":
            if not value:
                conv.values["trainer.accelerator"] = "cpu"  # true: trainer.accelerator=auto picks a GPU if any
        elif key == "print_batch_step":
            conv.values["callbacks.progress.refresh_rate"] = value
            conv.values["trainer.log_every_n_steps"] = value
        elif key == "eval_batch_step":
            start, interval = (value if isinstance(value, (list, tuple)) else [0, value])[:2]
            conv.values["trainer.val_check_interval"] = interval
            conv.values["trainer.check_val_every_n_epoch"] = None
            if start:
                conv.note(where, f"evaluation starts with the first interval; PaddleOCR waits until step {start}")
        elif key == "pretrained_model":
            value = _local_weights(conv, where, value)
            if not value:
                continue
            if distill_mode == "dml":
                conv.note(where, "a leftover in the DML recipe (matches no key); use model.members.student.pretrained=...")
            elif distill_mode == "cml":
                conv.groups["finetune"] = "cml_checkpoint"
                conv.values["finetune.pretrained"] = value
            else:
                conv.groups["finetune"] = "pretrained"
                conv.values["finetune.pretrained"] = value
        elif key == "checkpoints":
            value = _local_weights(conv, where, value)
            if value:
                conv.groups.setdefault("finetune", "cml_checkpoint" if distill_mode == "cml" else "pretrained")
                conv.values["finetune.pretrained"] = value
                conv.note(where, "loaded as weights only: ocrdet resumes (resume=<run dir>) its own checkpoints only")
        elif key in ("use_amp", "amp_level"):
            continue  # below: the level only means something with AMP on
        elif key in ("amp_dtype", "scale_loss", "use_dynamic_loss_scaling", "amp_custom_black_list"):
            if key != "amp_dtype":
                conv.note(where, "AMP loss scaling is Paddle's GradScaler default")
        elif key in advice:
            if value not in (None, False, ""):
                conv.note(where, advice[key])
        else:
            conv.note(where, "no ocrdet equivalent")
    if section.get("use_amp"):
        conv.values["trainer.precision"] = "bf16" if section.get("amp_dtype") == "bfloat16" else "fp16"
        conv.values["trainer.amp_level"] = section.get("amp_level") or AMP_LEVEL_DEFAULT
    else:
        conv.values["trainer.precision"] = "32"
    conv.values.setdefault("seed", SEED_DEFAULT)


def _detect_mode(arch: dict) -> str:
    if arch.get("algorithm") != "Distillation" and arch.get("name") != "DistillationModel":
        return "student"
    models = arch.get("Models") or {}
    return "cml" if any((m or {}).get("freeze_params") for m in models.values()) else "dml"


def _distillation(conv: Conversion, arch: dict, mode: str) -> None:
    models = dict(arch.get("Models") or {})
    trained = [n for n, m in models.items() if not (m or {}).get("freeze_params")]
    frozen = [n for n, m in models.items() if (m or {}).get("freeze_params")]
    roles = ["student", "student2"]
    for role, name in zip(roles, trained):
        if name != ("Student" if role == "student" else "Student2"):
            conv.values[f"distill.{role}"] = name
    if len(trained) != 2 or len(frozen) > 1:
        conv.note("Architecture.Models", f"ocrdet has two trained sub-models and at most one frozen; got {list(models)}")
    first = models[trained[0]] if trained else {}
    conv.groups.update(_architecture(conv, first, f"Architecture.Models.{trained[0] if trained else '?'}", "model."))
    for role, name in zip(roles, trained):
        model = models[name] or {}
        if role == "student2" and _arch_part(model) != _arch_part(first):
            conv.note(f"Architecture.Models.{name}", "ocrdet's Student2 always has the Student's architecture")
        if _local_weights(conv, f"Architecture.Models.{name}.pretrained", model.get("pretrained")):
            conv.values[f"model.members.{role}.pretrained"] = model["pretrained"]
    if frozen:
        name = frozen[0]
        teacher = models[name] or {}
        if name != "Teacher":
            conv.values["distill.teacher"] = name
        groups = _architecture(conv, teacher, f"Architecture.Models.{name}", "model.members.teacher.")
        for group, option in groups.items():
            if option != TEACHER_GROUPS[group]:
                conv.groups[f"{group}@model.members.teacher.{group}"] = option
        if _local_weights(conv, f"Architecture.Models.{name}.pretrained", teacher.get("pretrained")):
            conv.values["model.members.teacher.pretrained"] = teacher["pretrained"]


def _arch_part(model: dict) -> tuple:
    return tuple(repr(model.get(k)) for k in ("Backbone", "Neck", "Head"))


def _loss(conv: Conversion, section: dict, mode: str) -> None:
    if mode == "student":
        args = dict(section)
        if args.get("name") != "DBLoss":
            conv.note("Loss.name", f"{args.get('name')}: only DBLoss is implemented")
        for key, default in (("balance_loss", True), ("main_loss_type", "DiceLoss")):
            if args.pop(key, default) != default:
                conv.note(f"Loss.{key}", f"only {key}={default} is implemented")
        args.pop("eps", None)
        _map_keys(conv, "Loss", args, {k: f"loss.{k}" for k in DBLOSS_DEFAULTS}, defaults=DBLOSS_DEFAULTS)
        return
    for item in section.get("loss_config_list") or []:
        ((name, args),) = item.items()
        if name in DISTILL_LOSS_WEIGHTS:
            conv.values[f"loss.weights.{DISTILL_LOSS_WEIGHTS[name]}"] = float((args or {}).get("weight", 1.0))
        else:
            conv.note(f"Loss.loss_config_list.{name}", "not implemented (DilaDB, DML and DB distillation losses are)")


def _optimizer(conv: Conversion, section: dict) -> None:
    if section.get("name", "Adam") != "Adam":
        conv.note("Optimizer.name", f"{section['name']}: only Adam (optim=adam_cosine) is implemented")
    lr = section.get("lr") or {}
    name = lr.get("name", "Const")
    if name in LR_SCHEDULES:
        conv.values["optim.schedule"] = LR_SCHEDULES[name]
    else:
        conv.note("Optimizer.lr.name", f"{name}: only warmup + Cosine or Const is implemented")
    if "learning_rate" in lr:
        conv.values["optim.lr"] = float(lr["learning_rate"])
    conv.values["optim.warmup_epochs"] = float(lr.get("warmup_epoch", 0))
    for key in set(lr) - {"name", "learning_rate", "warmup_epoch"}:
        conv.note(f"Optimizer.lr.{key}", "no ocrdet equivalent")
    regularizer = section.get("regularizer") or {}
    if regularizer and regularizer.get("name") != "L2":
        conv.note("Optimizer.regularizer.name", f"{regularizer.get('name')}: only L2 (optim.weight_decay) exists")
    conv.values["optim.weight_decay"] = float(regularizer.get("factor", 0.0)) if regularizer else 0.0
    for key, default in ADAM_DEFAULTS.items():
        conv.values[f"optim.{key}"] = float(section.get(key, default))
    clip = section.get("clip_norm_global")
    conv.values["optim.grad_clip_norm"] = None if clip is None else float(clip)
    for key in set(section) - {"name", "lr", "regularizer", "beta1", "beta2", "epsilon", "clip_norm_global"}:
        conv.note(f"Optimizer.{key}", "no ocrdet equivalent")


def _postprocess(conv: Conversion, section: dict, mode: str) -> None:
    args = dict(section)
    name = args.pop("name", "DBPostProcess")
    if name not in ("DBPostProcess", "DistillationDBPostProcess"):
        conv.note("PostProcess.name", f"{name}: only DB post-processing is implemented")
    if "model_name" in args:
        names = args.pop("model_name")
        conv.values["distill.eval_models"] = list(names if isinstance(names, list) else [names])
    args.pop("key", None)
    mapping = {k: f"postprocess.{k}" for k in POSTPROCESS_DEFAULTS}
    _map_keys(conv, "PostProcess", args, mapping, defaults=POSTPROCESS_DEFAULTS)


def _metric(conv: Conversion, section: dict) -> None:
    if section.get("main_indicator", "hmean") != "hmean":
        conv.note("Metric.main_indicator", "checkpoints are selected by val/hmean (callbacks.model_checkpoint.monitor)")
    for key in set(section) - {"name", "main_indicator", "base_metric_name", "key"}:
        conv.note(f"Metric.{key}", "no ocrdet equivalent")


def _train_ops(conv: Conversion, ops: list[tuple[str, dict]]) -> None:
    base = "data.train_transforms"
    names = [name for name, _ in ops]
    conv.values["_copy_paste"] = "CopyPaste" in names  # resolved against the composed config later
    for name, args in ops:
        where = f"Train.dataset.transforms.{name}"
        if name in ("DetLabelEncode", "ToCHWImage", "KeepKeys"):
            continue
        if name == "DecodeImage":
            if args.get("img_mode", "BGR") != "BGR" or args.get("channel_first", False):
                conv.note(where, "images are always decoded as HWC BGR")
        elif name == "CopyPaste":
            mapping = {k: f"{base}.copy_paste.{k}" for k in COPY_PASTE_DEFAULTS}
            _map_keys(conv, where, args, mapping, defaults=COPY_PASTE_DEFAULTS)
        elif name == "IaaAugment":
            augmenters = IAA_DEFAULTS if args.get("augmenter_args") is None else args["augmenter_args"]
            # an augmenter left out of the list does not run in PaddleOCR: switch ours off
            conv.values.update({f"{base}.augment.flip_prob": 0.0, f"{base}.augment.rotate": [0, 0],
                                f"{base}.augment.scale": [1.0, 1.0]})  # fmt: skip
            for aug in augmenters:
                kind, aug_args = aug.get("type"), aug.get("args") or {}
                if kind == "Fliplr":
                    conv.values[f"{base}.augment.flip_prob"] = float(aug_args.get("p", 0.5))
                elif kind == "Affine" and set(aug_args) <= {"rotate"}:
                    conv.values[f"{base}.augment.rotate"] = list(aug_args.get("rotate", [-10, 10]))
                elif kind == "Resize" and set(aug_args) <= {"size"}:
                    conv.values[f"{base}.augment.scale"] = [float(s) for s in aug_args.get("size", [0.5, 3.0])]
                else:
                    conv.note(f"{where}.{kind}", f"{aug_args}: IaaAugment supports Fliplr p, Affine rotate, Resize size")
        elif name == "EastRandomCropData":
            size = list(args.pop("size", [640, 640]))
            conv.values["data.crop_size"] = int(size[0])
            if size[0] != size[1]:
                conv.note(f"{where}.size", f"{size}: only square crops (data.crop_size) are supported")
            mapping = {k: f"{base}.augment.crop.{k}" for k in CROP_DEFAULTS}
            _map_keys(conv, where, args, mapping, defaults=CROP_DEFAULTS)
        elif name == "MakeBorderMap":
            mapping = {k: f"{base}.border_map.{k}" for k in BORDER_DEFAULTS}
            _map_keys(conv, where, args, mapping, defaults=BORDER_DEFAULTS)
        elif name == "MakeShrinkMap":
            mapping = {k: f"{base}.shrink_map.{k}" for k in SHRINK_DEFAULTS}
            _map_keys(conv, where, args, mapping, defaults=SHRINK_DEFAULTS)
        elif name == "NormalizeImage":
            _normalize(conv, where, args, "data.batch_normalize")  # the train batch is normalised as a whole
        else:
            conv.note(where, "transform not implemented")


def _normalize(conv: Conversion, where: str, args: dict, target: str) -> None:
    if args.pop("order", "hwc") != "hwc":
        conv.note(f"{where}.order", "normalisation always runs on HWC images")
    _map_keys(conv, where, args, {k: f"{target}.{k}" for k in NORMALIZE_DEFAULTS}, defaults=NORMALIZE_DEFAULTS)


def _eval_ops(conv: Conversion, ops: list[tuple[str, dict]]) -> None:
    for name, args in ops:
        where = f"Eval.dataset.transforms.{name}"
        if name in ("DecodeImage", "DetLabelEncode", "ToCHWImage", "KeepKeys"):
            continue
        if name == "DetResizeForTest":
            defaults = {"limit_side_len": 736, "limit_type": "min", "image_shape": None, "resize_long": None}
            for key, default in defaults.items():
                conv.values[f"data.val_transforms.resize.{key}"] = args.pop(key, default)
            _map_keys(conv, where, args, {})
        elif name == "NormalizeImage":
            _normalize(conv, where, args, "data.val_transforms.normalize")
        else:
            conv.note(where, "transform not implemented")


def _data(conv: Conversion, train: dict, evaluation: dict) -> None:
    train_set, eval_set = dict(train.get("dataset") or {}), dict(evaluation.get("dataset") or {})
    for where, dataset in (("Train", train_set), ("Eval", eval_set)):
        if dataset.get("name", "SimpleDataSet") != "SimpleDataSet":
            conv.note(f"{where}.dataset.name", f"{dataset['name']}: only SimpleDataSet label files are supported")
        ratios = dataset.get("ratio_list", [1.0])
        if any(float(r) != 1.0 for r in (ratios if isinstance(ratios, list) else [ratios])):
            conv.note(f"{where}.dataset.ratio_list", "label files are always used whole")
        if dataset.get("delimiter", "\t") != "\t":
            conv.note(f"{where}.dataset.delimiter", "label files are tab-separated")
    conv.groups["data"] = "paddleocr_label"
    conv.values["data.data_dir"] = train_set.get("data_dir")
    conv.values["data.train_label_files"] = list(train_set.get("label_file_list") or [])
    conv.values["data.val_label_files"] = list(eval_set.get("label_file_list") or [])
    if eval_set.get("data_dir", train_set.get("data_dir")) != train_set.get("data_dir"):
        conv.note("Eval.dataset.data_dir", "train and eval share data.data_dir; write eval paths relative to it")
    _train_ops(conv, _ops(train_set.get("transforms")))
    _eval_ops(conv, _ops(eval_set.get("transforms")))
    for where, loader, size_key, workers_key in (
        ("Train", train.get("loader") or {}, "data.batch_size", "data.num_workers"),
        ("Eval", evaluation.get("loader") or {}, "data.eval_batch_size", "data.eval_num_workers"),
    ):
        for key, value in loader.items():
            if key == "batch_size_per_card":
                conv.values[size_key] = value
            elif key == "num_workers":
                conv.values[workers_key] = value
            elif key == "shuffle" and bool(value) != (where == "Train"):
                conv.note(f"{where}.loader.shuffle", "training always shuffles, evaluation never")
            elif key == "drop_last" and value:
                conv.note(f"{where}.loader.drop_last", "the last partial batch is always kept")
            elif key not in ("shuffle", "drop_last", "use_shared_memory"):
                conv.note(f"{where}.loader.{key}", "no ocrdet equivalent")


def convert(config: dict) -> tuple[str, Conversion]:
    """(experiment, conversion) for a loaded PaddleOCR det config."""
    arch = dict(config.get("Architecture") or {})
    mode = _detect_mode(arch)
    conv = Conversion()
    if mode == "student":
        conv.groups.update(_architecture(conv, arch, "Architecture", "model."))
    else:
        _distillation(conv, arch, mode)
    _global(conv, dict(config.get("Global") or {}), mode)
    _loss(conv, dict(config.get("Loss") or {}), mode)
    _optimizer(conv, dict(config.get("Optimizer") or {}))
    _postprocess(conv, dict(config.get("PostProcess") or {}), mode)
    _metric(conv, dict(config.get("Metric") or {}))
    _data(conv, dict(config.get("Train") or {}), dict(config.get("Eval") or {}))
    for section in set(config) - {"Global", "Architecture", "Loss", "Optimizer", "PostProcess", "Metric", "Train", "Eval"}:
        conv.note(section, "no ocrdet equivalent")
    if conv.errors:
        raise UnsupportedConfig("; ".join(conv.errors))
    return EXPERIMENTS[mode], conv


def hydra_value(value: Any) -> str:
    """A Python value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _KEYWORDS and not re.fullmatch(r"[\d.eE+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lookup(cfg: Any, key: str) -> Any:
    """The resolved value at dotted `key`, `_MISSING` for a mandatory `???` value, `_ABSENT` for no such key."""
    from omegaconf import DictConfig, OmegaConf

    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=_ABSENT) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent.keys():
        return _ABSENT
    if OmegaConf.is_missing(parent, leaf):
        return _MISSING
    value = parent[leaf]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def minimal_overrides(experiment: str, conv: Conversion) -> list[str]:
    """Group choices and key=value overrides that change the experiment's composed config (the others are dropped);
    keys the composed config does not have become notes. The result is checked by composing it."""
    from hydra import compose, initialize_config_dir

    from ocrdet.cli.config import CONF_DIR

    pinned = [f"paths.root_dir={Path.cwd()}", "paths.output_dir=outputs/convert"]  # set by Hydra's runtime otherwise
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def composed(overrides: Sequence[str], with_hydra: bool = False) -> Any:
            return compose("train", [*pinned, f"experiment={experiment}", *overrides], return_hydra_config=with_hydra)

        choices = composed([], with_hydra=True).hydra.runtime.choices
        # a choice the experiment already makes is left out
        groups = [f"{group}={option}" for group, option in conv.groups.items() if choices.get(group) != option]
        base = composed(groups)
        copy_paste = conv.values.pop("_copy_paste", None)
        if copy_paste is not None and copy_paste != (base.data.train_transforms.get("copy_paste") is not None):
            groups.append("copy_paste=ppocrv3" if copy_paste else "data.train_transforms.copy_paste=null")
            base = composed(groups)
        overrides = []
        for key, value in conv.values.items():
            current = _lookup(base, key)
            if current is _ABSENT:
                conv.note(key, "the composed ocrdet config has no such key (the recipe does not use this part)")
            elif current is _MISSING or current != value or type(current) is bool != type(value) is bool:
                overrides.append(f"{key}={hydra_value(value)}")
        composed([*groups, *overrides])  # raises if any override does not fit
    return [f"experiment={experiment}", *groups, *overrides]


def format_command(command: Sequence[str], notes: Sequence[tuple[str, str]]) -> str:
    parts = ["ocrdet-train"] + [shlex.quote(arg) for arg in command]
    text = " \\\n  ".join(parts)
    if notes:
        text += "\n# Not converted (no ocrdet equivalent, or done differently):"
        text += "".join(f"\n#   {key}: {why}" for key, why in notes)
    return text


def apply_dotted(config: dict, assignments: Sequence[str]) -> dict:
    """PaddleOCR's `-o Global.epoch_num=10` overrides, values parsed as YAML."""
    for assignment in assignments:
        key, _, raw = assignment.partition("=")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return config


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a PaddleOCR det config (.yml)")
    parser.add_argument("-o", "--opt", nargs="*", default=[], help="PaddleOCR-style overrides: Global.epoch_num=10")
    args = parser.parse_args(argv)
    config = apply_dotted(yaml.safe_load(args.config.read_text(encoding="utf-8")), args.opt)
    try:
        experiment, conversion = convert(config)
    except UnsupportedConfig as error:
        print(f"error: {args.config}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    command = minimal_overrides(experiment, conversion)
    print(format_command(command, conversion.notes))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
