"""`ocrdet-predict`: text detection on images with trained weights or an exported inference model.

Writes `<output>/det_results.txt` in PaddleOCR's format (`<image name>\\t[{"points": [[x, y], ...]}, ...]`, one line
per image; readable back as a det label file) and `<output>/det_res_<image name>` with the boxes drawn, in the
input's format. An export (a dir from `ocrdet-export`, or its `.onnx`) runs with the resize, normalisation and
post-processing of its `inference.yml`, except keys given on the command line; trained weights run with the config's
(long side <= 960 by default, as PaddleOCR's inference). Boxes get predict_det's post-filter: corners ordered
clockwise from the top-left, clipped to the image, boxes with a side <= 3 px dropped. When `weights=` is a run whose post-processing was
searched (`ocrdet-eval search=true`), its `search/best_postprocess.yaml` is applied (keys set on the command line win).
"""
from __future__ import annotations

import datetime
import glob
import logging
import time
from pathlib import Path
from typing import Callable, Collection, Sequence

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ocrdet.utils.setup import setup_cli

setup_cli()

from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.config import CONF_DIR, check_targets, run_on_weights  # noqa: E402
from ocrdet.data.transforms import DecodeImage  # noqa: E402
from ocrdet.data.transforms.decode import IMAGE_SUFFIXES  # noqa: E402
from ocrdet.det.deploy import apply_settings, command_line_keys, exported_forward, find_exported  # noqa: E402
from ocrdet.det.evaluator import MapFn, dygraph_forward, on_cpu  # noqa: E402
from ocrdet.data.labels import format_label_line  # noqa: E402
from ocrdet.postprocess.search import apply_saved_postprocess  # noqa: E402
from ocrdet.det.visualize import draw_detections, save_image  # noqa: E402

log = logging.getLogger("ocrdet.cli.predict")

RESULTS_FILE = "det_results.txt"
MIN_SIDE = 3  # predict_det drops boxes with a side of this many pixels or fewer
# Taken from the run behind `weights=` (ocrdet.cli.config.adopt_run_config); the resize stays inference's (`transforms`).
PREDICT_RUN_KEYS = ("backbone", "neck", "head", "distill", "members", "model", "postprocess")


def list_images(spec: str | Path) -> list[Path]:
    """The images meant by `spec`: one file, the images directly inside a folder, or a glob pattern (`**`
    recurses); sorted by path. Raises FileNotFoundError when there are none."""
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file()]
    else:
        found = [Path(p) for p in glob.glob(str(path), recursive=True)]
    images = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) at {spec}")
    return images


def order_points_clockwise(points: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left, by predict_det's rule: TL has the smallest
    x + y, BR the largest; of the other two, TR has the smallest y - x and BL the largest."""
    points = np.asarray(points, dtype=np.float32).reshape(4, 2)
    sums = points.sum(axis=1)
    tl, br = int(np.argmin(sums)), int(np.argmax(sums))
    rest = [i for i in range(4) if i not in (tl, br)]
    diffs = points[rest, 1] - points[rest, 0]
    tr, bl = rest[int(np.argmin(diffs))], rest[int(np.argmax(diffs))]
    return points[[tl, tr, br, bl]]


def clip_points(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Points clipped into the image ([0, w-1] x [0, h-1]) and truncated to whole pixels, as predict_det does."""
    points = np.asarray(points, dtype=np.float32)
    clipped = np.clip(points, 0, [width - 1, height - 1])
    return clipped.astype(np.int32).astype(np.float32)


def filter_boxes(boxes: Sequence[np.ndarray] | np.ndarray, height: int, width: int) -> list[np.ndarray]:
    """predict_det's post-filter of quads: order clockwise, clip to the image, drop a box whose top or left side
    (TL-TR, TL-BL), truncated to whole pixels, is <= 3 px. Returns int32 [4,2] boxes."""
    kept = []
    for box in boxes:
        box = clip_points(order_points_clockwise(box), height, width)
        top, left = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[0] - box[3])
        if int(top) <= MIN_SIDE or int(left) <= MIN_SIDE:
            continue
        kept.append(box.astype(np.int32))
    return kept


def clip_polygons(polygons: Sequence[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """box_type=poly: predict_det only clips polygons (no reordering, no size filter)."""
    return [clip_points(p, height, width).astype(np.int32) for p in polygons]


def default_submodel(cfg: DictConfig) -> str:
    """The sub-model a distillation checkpoint or export runs: `submodel`, else the first evaluated one."""
    eval_models = (cfg.get("distill") or {}).get("eval_models")
    return str(cfg.get("submodel") or (eval_models[0] if eval_models else "Student"))


def _dygraph_map_fn(cfg: DictConfig) -> MapFn:
    import paddle

    from ocrdet.models.distillation import DistillationModel
    from ocrdet.models.weights import load_for_inference, resolve_weights

    if on_cpu():
        paddle.set_flags({"FLAGS_use_mkldnn": bool(cfg.mkldnn)})
    model = instantiate(cfg.model)
    weights = resolve_weights(cfg.weights)
    report = load_for_inference(model, str(weights), prefix=cfg.get("weights_prefix") or "")
    if isinstance(model, DistillationModel):
        model = model.submodel(default_submodel(cfg))
    log.info("weights %s: %d tensors loaded (dygraph)", weights, len(report.matched))
    return dygraph_forward(model)


def _transform_ops(cfg: DictConfig) -> list[Callable]:
    ops = instantiate(cfg.transforms)
    return [op for op in ops.values() if op is not None]


def detect(
    image: bytes, ops: Sequence[Callable], map_fn: MapFn, postprocess: Callable, name: str = "image"
) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """One encoded image through the eval transforms `ops`, the network and the post-processing, with predict_det's
    post-filter: (the decoded BGR image, the int32 boxes or polygons in its coordinates)."""
    data: dict | None = {"image": image}
    source = None
    for op in ops:
        data = op(data)
        if data is None:
            raise ValueError(f"{name}: not a readable image")
        if isinstance(op, DecodeImage):
            source = data["image"]  # the decoded BGR image, to draw on (later ops make new arrays)
    height, width = int(data["shape"][0]), int(data["shape"][1])
    maps = map_fn(np.asarray(data["image"], dtype=np.float32)[None])
    boxes = postprocess(maps, np.asarray(data["shape"])[None])[0]["points"]
    if postprocess.box_type == "quad":
        return source, filter_boxes(boxes, height, width)
    return source, clip_polygons(boxes, height, width)


def run_predict(cfg: DictConfig, explicit: Collection[str] | None = None) -> Path:
    """Detect text in every image of `cfg.input`; returns the results file. `explicit`: the override keys given on
    the command line, which an export's inference.yml does not replace (default: the running Hydra job's)."""
    check_targets(cfg)
    images = list_images(cfg.input)
    names = [p.name for p in images]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:  # the results file and the PNGs are keyed by file name, as PaddleOCR's are
        raise ValueError(f"several input images share a file name: {clashes[:5]}; predict each folder separately")
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = find_exported(cfg.weights, default_submodel(cfg))
    if exported is not None and exported.settings is not None:
        given = command_line_keys() if explicit is None else explicit
        changed = apply_settings(cfg, exported.settings, "transforms", explicit=given)
        log.info("settings from %s: %s", exported.path, ", ".join(changed) or "as configured")
    ops = _transform_ops(cfg)
    postprocess = instantiate(cfg.postprocess)
    if exported is None:
        map_fn = _dygraph_map_fn(cfg)
    else:
        map_fn = exported_forward(exported, threads=cfg.threads, mkldnn=cfg.mkldnn)
        log.info("exported model %s (%s)", exported.path, exported.kind)
    results = out_dir / RESULTS_FILE
    start = time.perf_counter()
    with results.open("w", encoding="utf-8") as handle:
        for done, image_path in enumerate(images, start=1):
            source, boxes = detect(image_path.read_bytes(), ops, map_fn, postprocess, str(image_path))
            handle.write(format_label_line(image_path.name, boxes) + "\n")
            if cfg.draw and source is not None:
                save_image(out_dir / f"det_res_{image_path.name}", draw_detections(source, boxes))
            _progress(done, len(images), start, cfg.refresh_rate)
    log.info("wrote %s (%d images)%s", results, len(images), " and the drawn images" if cfg.draw else "")
    return results


def _progress(done: int, total: int, start: float, refresh_rate: int) -> None:
    if done % max(1, refresh_rate) and done != total:
        return
    elapsed = time.perf_counter() - start
    eta = elapsed / done * (total - done)
    log.info(
        "predict [%d/%d] %.2f images/s | eta %s", done, total, done / elapsed, datetime.timedelta(seconds=int(eta))
    )


@hydra.main(config_path=str(CONF_DIR), config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    print(f"results: {run_on_weights(cfg, PREDICT_RUN_KEYS, predict_with_searched_postprocess)}")


def predict_with_searched_postprocess(cfg: DictConfig) -> Path:
    """`run_predict` with the run's searched post-processing applied (after the run's own config was adopted)."""
    user_overrides = [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
    apply_saved_postprocess(cfg, user_overrides)
    return run_predict(cfg)


if __name__ == "__main__":
    main()
