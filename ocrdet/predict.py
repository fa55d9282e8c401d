"""`ocrdet-predict`: text detection on images with trained weights or an exported inference model.

Writes `<output>/det_results.txt` in PaddleOCR's format (`<image name>\\t[{"points": [[x, y], ...]}, ...]`, one line
per image) and `<output>/det_res_<image stem>.png` with the boxes drawn. Images are resized as PaddleOCR's inference
does (long side <= 960 by default, `transforms.resize.*`), and boxes get predict_det's post-filter: corners ordered
clockwise from the top-left, clipped to the image, boxes with a side <= 3 px dropped. When `weights=` is a run whose
post-processing was searched (`ocrdet-eval search=true`), its `search/best_postprocess.yaml` is applied (keys set on
the command line win).
"""
from __future__ import annotations

import datetime
import glob
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from hydra.utils import instantiate  # noqa: E402

from ocrdet.config import CONF_DIR  # noqa: E402
from ocrdet.data.transforms import DecodeImage  # noqa: E402
from ocrdet.export import GRAPH_SUFFIXES  # noqa: E402
from ocrdet.inference import MapFn, dygraph_forward, predictor_forward  # noqa: E402
from ocrdet.interop import format_label_line  # noqa: E402
from ocrdet.postprocess.search import apply_saved_postprocess  # noqa: E402
from ocrdet.utils.visualize import draw_detections, save_image  # noqa: E402

log = logging.getLogger("ocrdet.predict")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
RESULTS_FILE = "det_results.txt"
MIN_SIDE = 3  # predict_det drops boxes with a side of this many pixels or fewer

# An NCHW float32 batch -> shrink-probability maps [N,1,H,W]


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


def is_inference_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f"inference{suffix}").is_file() for suffix in GRAPH_SUFFIXES)


def _default_submodel(cfg: DictConfig) -> str:
    eval_models = (cfg.get("distill") or {}).get("eval_models")
    return str(cfg.submodel or (eval_models[0] if eval_models else "Student"))


def load_map_fn(cfg: DictConfig) -> MapFn:
    """The network as a function image batch -> maps: paddle.inference for an inference dir (or a distillation
    export holding `<dir>/<submodel>/inference.*`), else the configured dygraph model with `cfg.weights` loaded."""
    weights = Path(cfg.weights).expanduser()
    export_dir = weights if is_inference_dir(weights) else weights / _default_submodel(cfg)
    if is_inference_dir(export_dir):
        from ocrdet.export import load_predictor

        predictor = load_predictor(str(export_dir), threads=cfg.threads, mkldnn=cfg.mkldnn)
        log.info("inference model %s (paddle.inference, oneDNN %s)", export_dir, "on" if cfg.mkldnn else "off")
        return predictor_forward(predictor)
    return _dygraph_map_fn(cfg)


def _dygraph_map_fn(cfg: DictConfig) -> MapFn:
    import paddle

    from ocrdet.engine import checkpoint_io
    from ocrdet.models.distillation import DistillationModel
    from ocrdet.models.weights import load_for_inference

    if not (paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count()):
        paddle.set_device("cpu")
        paddle.set_flags({"FLAGS_use_mkldnn": bool(cfg.mkldnn)})
    model = instantiate(cfg.model)
    weights = checkpoint_io.resolve_weights(cfg.weights)
    report = load_for_inference(model, str(weights), prefix=cfg.get("weights_prefix") or "")
    if isinstance(model, DistillationModel):
        model = model.submodel(_default_submodel(cfg))
    log.info("weights %s: %d tensors loaded (dygraph)", weights, len(report.matched))
    return dygraph_forward(model)


def _transform_ops(cfg: DictConfig) -> list[Callable]:
    ops = instantiate(cfg.transforms)
    return [op for op in ops.values() if op is not None]


def run_predict(cfg: DictConfig) -> Path:
    """Detect text in every image of `cfg.input`; returns the results file."""
    images = list_images(cfg.input)
    names = [p.name for p in images]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:  # the results file and the PNGs are keyed by file name, as PaddleOCR's are
        raise ValueError(f"several input images share a file name: {clashes[:5]}; predict each folder separately")
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    ops = _transform_ops(cfg)
    postprocess = instantiate(cfg.postprocess)
    map_fn = load_map_fn(cfg)
    results = out_dir / RESULTS_FILE
    start = time.perf_counter()
    with results.open("w", encoding="utf-8") as handle:
        for done, image_path in enumerate(images, start=1):
            data: dict | None = {"image": image_path.read_bytes()}
            source = None
            for op in ops:
                data = op(data)
                if data is None:
                    raise ValueError(f"{image_path}: not a readable image")
                if isinstance(op, DecodeImage):
                    source = data["image"]  # the decoded BGR image, to draw on (later ops make new arrays)
            source_h, source_w = int(data["shape"][0]), int(data["shape"][1])
            maps = map_fn(np.asarray(data["image"], dtype=np.float32)[None])
            boxes = postprocess(maps, np.asarray(data["shape"])[None])[0]["points"]
            if postprocess.box_type == "quad":
                boxes = filter_boxes(boxes, source_h, source_w)
            else:
                boxes = clip_polygons(boxes, source_h, source_w)
            handle.write(format_label_line(image_path.name, boxes) + "\n")
            if cfg.draw and source is not None:
                save_image(out_dir / f"det_res_{image_path.stem}.png", draw_detections(source, boxes))
            _progress(done, len(images), start, cfg.refresh_rate)
    log.info("wrote %s (%d images)%s", results, len(images), " and the drawn PNGs" if cfg.draw else "")
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
    user_overrides = [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
    apply_saved_postprocess(cfg, user_overrides)
    print(f"results: {run_predict(cfg)}")


if __name__ == "__main__":
    main()
