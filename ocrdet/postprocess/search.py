"""Post-processing search: score a grid of DBPostProcess settings on probability maps computed once.

The network's forward is nearly all of an evaluation's time, so each image's map is cached and every setting only
re-runs DBPostProcess and the ICDAR metric (`ocrdet.det.evaluator.score_image`, exactly what `ocrdet-eval` runs): a
setting's figures here equal `ocrdet-eval` with that setting. Run it on a validation split, never on test/.

The best setting is saved as `<run dir>/search/best_postprocess.yaml` (`save_best`); `ocrdet-eval` and
`ocrdet-predict` on that run's weights apply it (`apply_saved_postprocess`), keys given on their command line
winning. All numeric work is numpy / OpenCV; no Paddle here.
"""
from __future__ import annotations

import csv
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from ocrdet.det.evaluator import score_image
from ocrdet.metrics.det_metric import DetMetric
from ocrdet.postprocess.db_postprocess import DBPostProcess

log = logging.getLogger(__name__)

# DBPostProcess arguments the grid may vary, in the order settings are enumerated and printed.
SEARCHED = ("thresh", "box_thresh", "unclip_ratio", "use_dilation", "score_mode")
SEARCH_DIR = "search"
BEST_FILE = "best_postprocess.yaml"
RESULTS_FILE = "results.csv"


@dataclass
class CachedImage:
    """One evaluation image reduced to what post-processing and the metric need."""

    prob_map: np.ndarray  # [1,1,H,W] float32, as the forward returned it
    shape: np.ndarray  # [4] src_h, src_w, ratio_h, ratio_w
    gt_polys: Sequence[np.ndarray]
    gt_ignore: Sequence[bool]


@dataclass
class SearchResult:
    setting: Dict[str, Any]  # the SEARCHED values
    counts: np.ndarray  # [gt_care, det_care, matched] summed over the images

    @property
    def metrics(self) -> Dict[str, float]:
        metric = DetMetric()
        metric.merge_state(self.counts)
        return metric.compute()

    def line(self) -> str:
        """`thresh=<t> box_thresh=<b> unclip_ratio=<u> use_dilation=<d> score_mode=<s> precision=<p> recall=<r>
        hmean=<h>`."""
        m = self.metrics
        setting = " ".join(f"{k}={v}" for k, v in self.setting.items())
        return f"{setting} precision={m['precision']:.6f} recall={m['recall']:.6f} hmean={m['hmean']:.6f}"


class PostprocessGrid:
    """The values to try for each searched DBPostProcess argument; settings are their Cartesian product, in
    `SEARCHED` order (the first value of each first); `ocrdet-eval`'s `search_grid` holds the values."""

    def __init__(
        self,
        thresh: Sequence[float],
        box_thresh: Sequence[float],
        unclip_ratio: Sequence[float],
        use_dilation: Sequence[bool],
        score_mode: Sequence[str],
    ) -> None:
        self.values = {
            "thresh": [float(v) for v in thresh],
            "box_thresh": [float(v) for v in box_thresh],
            "unclip_ratio": [float(v) for v in unclip_ratio],
            "use_dilation": [bool(v) for v in use_dilation],
            "score_mode": [str(v) for v in score_mode],
        }
        empty = [k for k, v in self.values.items() if not v]
        if empty:
            raise ValueError(f"search grid: no values for {empty}")

    def settings(self) -> List[Dict[str, Any]]:
        return [dict(zip(SEARCHED, combo)) for combo in itertools.product(*(self.values[k] for k in SEARCHED))]


def cache_maps(
    forward: Callable[[np.ndarray], np.ndarray], dataset: Any, indices: Iterable[int]
) -> List[CachedImage]:
    """Run `forward` once per image (eval samples: `image` [3,H,W], `shape`, `polys`, `ignore_tags`)."""
    cached = []
    for i in indices:
        sample = dataset[i]
        prob_map = forward(np.ascontiguousarray(sample["image"][None], dtype=np.float32))
        cached.append(CachedImage(np.asarray(prob_map), np.asarray(sample["shape"]), sample["polys"],
                                  np.asarray(sample["ignore_tags"], dtype=bool)))
    return cached


def search(
    images: Sequence[CachedImage],
    base: DBPostProcess,
    grid: PostprocessGrid,
    metric: DetMetric,
    on_result: Optional[Callable[[SearchResult], None]] = None,
) -> List[SearchResult]:
    """Score every grid setting on the cached maps; the arguments the grid does not vary (max_candidates,
    box_type) are `base`'s. `on_result` sees each result as it is done (to print progress)."""
    results = []
    for setting in grid.settings():
        postprocess = DBPostProcess(
            max_candidates=base.max_candidates, box_type=base.box_type, **setting
        )
        counts = np.zeros(3, dtype=np.int64)
        for image in images:
            counts += score_image(image.prob_map, image.shape, image.gt_polys, image.gt_ignore, postprocess,
                                  metric.iou_thresh, metric.area_precision_thresh)
        result = SearchResult(setting, counts)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def best(results: Sequence[SearchResult]) -> SearchResult:
    """The highest hmean; on a tie the earliest in grid order (max keeps the first maximum)."""
    if not results:
        raise ValueError("no search results")
    return max(results, key=lambda r: r.metrics["hmean"])


def run_dir_of(weights: str | Path) -> Optional[Path]:
    """The ocrdet run dir behind `weights=` (the dir itself, or `<run>/checkpoints/<prefix>[.pdparams]`): a folder
    holding `checkpoints/` or Hydra's `.hydra/`; None for a bare file such as PaddleOCR's released weights."""
    path = Path(str(weights)).expanduser()
    candidates = [path] if path.is_dir() else [path.parent, path.parent.parent]
    for folder in candidates:
        if (folder / "checkpoints").is_dir() or (folder / ".hydra").is_dir():
            return folder
    return None


def save_best(folder: str | Path, results: Sequence[SearchResult], about: str) -> Path:
    """Write `<folder>/search/best_postprocess.yaml` (the best setting, `about` saying what it was chosen on, as a
    comment) and `results.csv` (every setting with its counts and P/R/H). Returns the yaml's path."""
    out = Path(folder) / SEARCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    chosen = best(results)
    best_file = out / BEST_FILE
    header = f"# ocrdet-eval search=true: the best of {len(results)} settings on {about}\n# {chosen.line()}\n"
    best_file.write_text(header + OmegaConf.to_yaml(OmegaConf.create(chosen.setting)), encoding="utf-8")
    with (out / RESULTS_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*SEARCHED, "gt_care", "det_care", "matched", "precision", "recall", "hmean"])
        for r in results:
            m = r.metrics
            writer.writerow([*(r.setting[k] for k in SEARCHED), *r.counts.tolist(),
                             f"{m['precision']:.6f}", f"{m['recall']:.6f}", f"{m['hmean']:.6f}"])
    return best_file


def saved_postprocess(weights: str | Path) -> Optional[Path]:
    """`<run dir>/search/best_postprocess.yaml` of the run behind `weights`, when a search saved one."""
    run = run_dir_of(weights)
    found = run / SEARCH_DIR / BEST_FILE if run is not None else None
    return found if found is not None and found.is_file() else None


def apply_saved_postprocess(cfg: DictConfig, user_overrides: Sequence[str]) -> Optional[Path]:
    """Set `cfg.postprocess` to the saved search result of the run behind `cfg.weights`, except the keys this
    command line sets itself (`postprocess.box_thresh=...`). Returns the file applied, or None."""
    found = saved_postprocess(cfg.weights)
    if found is None:
        return None
    given = {o.split("=", 1)[0].lstrip("+~") for o in user_overrides}
    saved = OmegaConf.load(found)
    with open_dict(cfg):
        for key, value in saved.items():
            if key in SEARCHED and f"postprocess.{key}" not in given and "postprocess" not in given:
                cfg.postprocess[key] = value
    log.info("post-processing from %s: %s", found, ", ".join(f"{k}={cfg.postprocess[k]}" for k in SEARCHED))
    return found
