"""What an exported model needs beside its graph to run as it was validated: `inference.yml` (PaddleOCR 3.x's layout),
`model.onnx` (paddle2onnx), and the engines that run an export dir or an `.onnx` file.

`inference.yml` holds PaddleOCR's keys, as its `tools/export_model.py` writes them and PaddleX's TextDetection reads
them: `Global.model_name`, `PreProcess.transform_ops` (the eval transforms: DecodeImage, DetResizeForTest,
NormalizeImage, ...), `PostProcess` (DBPostProcess's arguments). `ocrdet-predict` and `ocrdet-eval` given an export take
their resize, normalisation and post-processing from it, except keys set on the command line.

This module imports no Paddle at the top: reading settings and running onnxruntime need none.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Dict, List, Mapping, Optional

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from ocrdet.det.evaluator import MapFn

log = logging.getLogger(__name__)

SETTINGS_FILE = "inference.yml"
ONNX_FILE = "model.onnx"
GRAPH_SUFFIXES = (".json", ".pdmodel")  # Paddle 3 (PIR) / Paddle 2.6
ONNX_OPSET = 14  # paddle2onnx's lowest opset for every op of our graph; onnxruntime >= 1.17 runs it
RESIZE_KEYS = ("limit_side_len", "limit_type", "image_shape", "resize_long")
NORMALIZE_KEYS = ("scale", "mean", "std")
POSTPROCESS_KEYS = ("thresh", "box_thresh", "max_candidates", "unclip_ratio", "use_dilation", "score_mode", "box_type")
# PaddleX's names for PP-OCRv3's two detectors (PaddleOCR 3.x's TextDetection(model_name=...) must match the file)
MODEL_NAMES = {"MobileNetV3": "PP-OCRv3_mobile_det", "ResNet": "PP-OCRv3_server_det"}


@dataclass(frozen=True)
class InferenceSettings:
    """Pre- and post-processing an exported detector was validated with.

    resize: DetResizeForTest's arguments (ocrdet's names, all four keys); normalize: scale, mean, std;
    postprocess: DBPostProcess's arguments.
    """

    model_name: str
    resize: Dict[str, Any]
    normalize: Dict[str, Any]
    postprocess: Dict[str, Any]

    def flat(self) -> Dict[str, Any]:
        """`resize.limit_type`-style keys, the names used in messages and in configs."""
        return {
            f"{part}.{key}": value
            for part in ("resize", "normalize", "postprocess")
            for key, value in getattr(self, part).items()
        }


def _plain(value: Any) -> Any:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def settings_from_config(
    transforms: Mapping[str, Any], postprocess: Mapping[str, Any], model_name: str
) -> InferenceSettings:
    """Settings from an ocrdet eval pipeline (`data.val_transforms`-shaped: `resize`, `normalize`) and a
    `postprocess` config."""
    resize, normalize = transforms["resize"], transforms["normalize"]
    return InferenceSettings(
        model_name=model_name,
        resize={k: _plain(resize.get(k)) for k in RESIZE_KEYS},
        normalize={k: _plain(normalize.get(k)) for k in NORMALIZE_KEYS},
        postprocess={k: _plain(postprocess.get(k)) for k in POSTPROCESS_KEYS},
    )


def default_model_name(model_cfg: Mapping[str, Any]) -> str:
    """PaddleX's model name for a detector config: its backbone decides (MobileNetV3 -> mobile, ResNet -> server)."""
    target = str((model_cfg.get("backbone") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    return next((name for cls, name in MODEL_NAMES.items() if target.startswith(cls)), MODEL_NAMES["MobileNetV3"])


def _resize_args(resize: Mapping[str, Any]) -> Dict[str, Any]:
    """ocrdet's DetResizeForTest arguments as PaddleOCR's keys for the mode ocrdet runs (its first match wins:
    image_shape, resize_long, limit), so that PaddleOCR, which tries image_shape, limit_side_len, resize_long in that
    order, picks the same mode."""
    if resize.get("image_shape") is not None:
        return {"image_shape": list(resize["image_shape"])}
    if resize.get("resize_long") is not None:
        return {"resize_long": int(resize["resize_long"])}
    return {"limit_side_len": int(resize["limit_side_len"]), "limit_type": str(resize["limit_type"])}


def write_settings(path: str | Path, settings: InferenceSettings) -> Path:
    """Write `inference.yml` in PaddleOCR 3.x's layout."""
    normalize = settings.normalize
    document: Dict[str, Any] = {
        "Global": {"model_name": settings.model_name},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": _resize_args(settings.resize)},
                {
                    "NormalizeImage": {
                        "mean": [float(v) for v in normalize["mean"]],
                        "order": "hwc",
                        "scale": float(normalize["scale"]),
                        "std": [float(v) for v in normalize["std"]],
                    }
                },
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {"name": "DBPostProcess", **settings.postprocess},
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def read_settings(path: str | Path) -> InferenceSettings:
    """Read an `inference.yml` (ocrdet's or PaddleOCR's own export) back into settings; absent keys get PaddleOCR's
    defaults, as its DetResizeForTest / NormalizeImage / DBPostProcess have them."""
    path = Path(path)
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    ops: Dict[str, Dict[str, Any]] = {}
    for item in (document.get("PreProcess") or {}).get("transform_ops") or []:
        ((name, args),) = item.items()
        ops[name] = dict(args or {})
    if "DetResizeForTest" not in ops:
        raise ValueError(f"{path}: PreProcess.transform_ops has no DetResizeForTest")
    args = ops["DetResizeForTest"]
    resize: Dict[str, Any] = {"limit_side_len": 736, "limit_type": "min", "image_shape": None, "resize_long": None}
    if "image_shape" in args:
        resize["image_shape"] = list(args["image_shape"])
    elif "limit_side_len" in args:
        resize.update(limit_side_len=int(args["limit_side_len"]), limit_type=str(args.get("limit_type", "min")))
    elif "resize_long" in args:
        resize["resize_long"] = int(args["resize_long"])
    norm = ops.get("NormalizeImage", {})
    scale = norm.get("scale", 1.0 / 255.0)
    if isinstance(scale, str):  # PaddleOCR's configs write `1./255.`
        top, bottom = scale.split("/")
        scale = float(top) / float(bottom)
    normalize = {
        "scale": float(scale),
        "mean": [float(v) for v in norm.get("mean", [0.485, 0.456, 0.406])],
        "std": [float(v) for v in norm.get("std", [0.229, 0.224, 0.225])],
    }
    post = dict(document.get("PostProcess") or {})
    if post.get("name", "DBPostProcess") != "DBPostProcess":
        raise ValueError(f"{path}: PostProcess.name is {post.get('name')!r}; only DBPostProcess models are detectors")
    defaults = {"thresh": 0.3, "box_thresh": 0.7, "max_candidates": 1000, "unclip_ratio": 2.0,
                "use_dilation": False, "score_mode": "fast", "box_type": "quad"}  # fmt: skip
    postprocess = {k: post.get(k, default) for k, default in defaults.items()}
    model_name = str((document.get("Global") or {}).get("model_name", ""))
    return InferenceSettings(model_name, resize, normalize, postprocess)


def differences(recorded: InferenceSettings, other: InferenceSettings) -> List[str]:
    """`key: recorded vs other` for every setting that differs (floats compared as float32, as the ops use them)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return np.float32(a) == np.float32(b)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b

    mine, theirs = recorded.flat(), other.flat()
    return [f"{k}: {mine[k]!r} vs {theirs.get(k)!r}" for k in mine if not same(mine[k], theirs.get(k))]


def apply_settings(
    cfg: DictConfig,
    settings: InferenceSettings,
    transforms_key: str,
    postprocess_key: str = "postprocess",
    explicit: Collection[str] = (),
) -> List[str]:
    """Set the resize and normalisation under `cfg.<transforms_key>` and the post-processing under
    `cfg.<postprocess_key>` to `settings`, except keys given on the command line (`explicit`: override keys such as
    `postprocess.box_thresh`; a parent key counts for its children). Returns the `key=value` pairs it changed."""
    given = {k.lstrip("+~") for k in explicit}
    changed = []
    targets = (
        (f"{transforms_key}.resize", settings.resize),
        (f"{transforms_key}.normalize", settings.normalize),
        (postprocess_key, settings.postprocess),
    )
    for prefix, values in targets:
        node = OmegaConf.select(cfg, prefix)
        if node is None:
            raise ValueError(f"the config has no `{prefix}` to set from {SETTINGS_FILE}")
        for key, value in values.items():
            full = f"{prefix}.{key}"
            if any(full == g or full.startswith(g + ".") for g in given):
                continue
            current = _plain(node.get(key))
            if current != value:
                with open_dict(node):
                    node[key] = value
                changed.append(f"{full}={value!r}")
    return changed


def command_line_keys() -> List[str]:
    """Keys of the overrides given on the command line of the running Hydra job (none outside a job)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [o.split("=", 1)[0] for o in HydraConfig.get().overrides.task]


# --- exported models: where they are, and engines to run them -------------------------------------------------------


@dataclass(frozen=True)
class ExportedModel:
    """An exported model to run: `kind` 'paddle' (a folder with inference.json/.pdmodel) or 'onnx' (a file), and
    the settings of the `inference.yml` beside it (None when there is none)."""

    kind: str
    path: Path
    settings: Optional[InferenceSettings]


def _is_paddle_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f"inference{s}").is_file() for s in GRAPH_SUFFIXES)


def find_exported(weights: str | Path, submodel: str = "Student", engine: str = "auto") -> Optional[ExportedModel]:
    """The exported model `weights` names, or None when it names trained weights (a `.pdparams`, a checkpoint prefix
    or a run dir). Accepts an `.onnx` file, an export dir, or a distillation export dir (`<dir>/<submodel>/`);
    `engine='onnx'` runs an export dir's `model.onnx`, 'paddle' its Paddle graph, 'auto' the Paddle graph when there
    is one."""
    path = Path(weights).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        folder, kind = path.parent, "onnx"
    else:
        folder = path if _is_paddle_dir(path) or (path / ONNX_FILE).is_file() else path / submodel
        if not folder.is_dir() or not (_is_paddle_dir(folder) or (folder / ONNX_FILE).is_file()):
            return None
        kind = "onnx" if engine == "onnx" or (engine == "auto" and not _is_paddle_dir(folder)) else "paddle"
        if kind == "onnx":
            path = folder / ONNX_FILE
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found (export with format=onnx)")
        elif not _is_paddle_dir(folder):
            raise FileNotFoundError(f"{folder}: no inference.json/.pdmodel for engine=paddle")
        else:
            path = folder
    settings_file = folder / SETTINGS_FILE
    settings = read_settings(settings_file) if settings_file.is_file() else None
    return ExportedModel(kind, path, settings)


def onnx_forward(path: str | Path, threads: int = 2) -> MapFn:
    """An onnxruntime CPU session on `path` as a MapFn (NCHW float32 batch -> shrink maps)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda image: session.run(None, {name: np.ascontiguousarray(image, dtype=np.float32)})[0]


def exported_forward(exported: ExportedModel, threads: int = 2, mkldnn: bool = True) -> MapFn:
    """A MapFn running `exported`: onnxruntime for 'onnx', the oneDNN paddle.inference predictor for 'paddle'."""
    if exported.kind == "onnx":
        return onnx_forward(exported.path, threads)
    from ocrdet.det.graph import load_predictor
    from ocrdet.det.evaluator import predictor_forward

    return predictor_forward(load_predictor(str(exported.path), threads=threads, mkldnn=mkldnn))


def convert_to_onnx(model_dir: str | Path, out_file: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Convert the Paddle inference model in `model_dir` to ONNX with paddle2onnx; raise if it wrote nothing."""
    import paddle2onnx

    from ocrdet.det.graph import graph_file

    out_file = Path(out_file)
    graph = Path(graph_file(str(model_dir)))
    # No Python-side optimizer: polygraphy (the default) pip-installs missing modules at run time, and 2.1.0 asks
    # onnxoptimizer for a pass it does not have. onnxruntime folds constants itself when it loads the model.
    from paddle2onnx.utils import logging as p2o_logging

    level, p2o_logging.log_level = p2o_logging.log_level, 1  # its INFO lines name our staging folder; keep warnings
    try:
        paddle2onnx.export(
            str(graph), str(graph.with_suffix(".pdiparams")), str(out_file), opset_version=opset,
            enable_onnx_checker=True, optimize_tool="none",
        )  # fmt: skip
    except SystemExit:  # paddle2onnx logs a conversion error and exits the process
        raise RuntimeError(f"paddle2onnx could not convert {graph} (its log above says why)") from None
    finally:
        p2o_logging.log_level = level
    if not out_file.is_file() or out_file.stat().st_size == 0:
        raise RuntimeError(f"paddle2onnx wrote no {out_file} from {graph} (its log above says why)")
    return out_file


def paddleocr_call(settings: InferenceSettings, model_dir: str | Path) -> str:
    """The PaddleOCR 3.x call that runs this export as validated. PaddleX 3.x's TextDetection takes the resize from
    its model-name defaults (PP-OCRv3_*_det: long side 960), not from inference.yml, so it is passed explicitly."""
    resize = settings.resize
    if resize.get("image_shape") is not None:
        args = ""  # a fixed size: PaddleX takes it from the file
    elif resize.get("resize_long") is not None:
        return f"# resize_long={resize['resize_long']} has no PaddleX 3.x equivalent (it rounds to 32, not 128)"
    else:
        args = f", limit_side_len={resize['limit_side_len']}, limit_type={resize['limit_type']!r}"
    return f"TextDetection(model_name={settings.model_name!r}, model_dir={str(model_dir)!r}{args})"

