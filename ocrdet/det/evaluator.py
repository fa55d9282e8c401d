"""Detection evaluation that keeps the CPU busy: the model forward runs in this process while DBPostProcess and the
ICDAR metric for earlier images run in a pool of worker processes, and the next samples load in a thread.

    with PooledEvaluator(postprocess, DetMetric(), workers=1) as evaluator:
        result = evaluator.evaluate(predictor_forward(load_predictor(model_dir)), dataset)
    result.metrics  # {"precision", "recall", "hmean"}, the same as DetMetric over the same images

`workers=0` runs everything in order in this process (the reference, and the timing of each part). This module
imports no Paddle at the top: spawned workers load only numpy, OpenCV, pyclipper and shapely.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from ocrdet.metrics.det_metric import DetMetric, evaluate_image
from ocrdet.postprocess.db_postprocess import DBPostProcess

# An NCHW float32 batch of one image -> its shrink-probability map [1,1,H,W].
MapFn = Callable[[np.ndarray], np.ndarray]

_WORKER: Dict[str, Any] = {}  # per worker process: the post-process and metric thresholds


def score_image(
    prob_map: np.ndarray,
    shape: np.ndarray,
    gt_polys: Sequence[np.ndarray],
    gt_ignore: Sequence[bool],
    postprocess: DBPostProcess,
    iou_thresh: float,
    area_precision_thresh: float,
) -> np.ndarray:
    """DBPostProcess + the ICDAR match of one image: its metric counts [gt_care, det_care, matched] (int64)."""
    boxes = postprocess(prob_map, np.asarray(shape).reshape(1, 4))[0]["points"]
    counts = evaluate_image(gt_polys, gt_ignore, boxes, iou_thresh, area_precision_thresh)
    return np.array([counts.gt_care, counts.det_care, counts.matched], dtype=np.int64)


def _init_worker(postprocess: DBPostProcess, iou_thresh: float, area_precision_thresh: float) -> None:
    import cv2

    cv2.setNumThreads(1)  # the forward in the main process owns the other cores
    _WORKER.update(postprocess=postprocess, iou=iou_thresh, area=area_precision_thresh)


def _score_in_worker(
    prob_map: np.ndarray, shape: np.ndarray, gt_polys: Sequence[np.ndarray], gt_ignore: Sequence[bool]
) -> Tuple[np.ndarray, float]:
    start = time.perf_counter()
    counts = score_image(prob_map, shape, gt_polys, gt_ignore, _WORKER["postprocess"], _WORKER["iou"], _WORKER["area"])
    return counts, time.perf_counter() - start


def _ready() -> bool:
    return True


@dataclass
class EvalTiming:
    """Seconds spent, summed over the images of one `evaluate` call."""

    images: int = 0
    total: float = 0.0  # wall time of the call
    forward: float = 0.0  # the model forward, in this process
    post: float = 0.0  # post-process + metric: in this process, or summed over the workers when pooled
    wait_load: float = 0.0  # this process waiting for the next sample
    wait_post: float = 0.0  # this process waiting for worker results (pooled only)

    @property
    def images_per_s(self) -> float:
        return self.images / self.total if self.total else 0.0

    @property
    def post_share(self) -> float:
        """Post-process + metric time over the wall time (may exceed the blocking part when pooled)."""
        return self.post / self.total if self.total else 0.0


@dataclass
class EvalResult:
    counts: np.ndarray  # summed [gt_care, det_care, matched], DetMetric's state
    timing: EvalTiming = field(default_factory=EvalTiming)

    @property
    def metrics(self) -> Dict[str, float]:
        metric = DetMetric()
        metric.merge_state(self.counts)
        return metric.compute()


class PooledEvaluator:
    """Evaluates a forward function over an eval data set, post-processing in `workers` processes (0: inline).

    Args:
        postprocess: the DBPostProcess of the eval config (it is pickled to the workers).
        metric: supplies the IoU thresholds; its own state is not touched.
        workers: post-processing processes; 0 scores each image in this process right after its forward.
        prefetch: samples loaded ahead in a thread (decode + resize + normalize release the GIL in OpenCV/numpy).
    """

    def __init__(self, postprocess: DBPostProcess, metric: DetMetric, workers: int = 1, prefetch: int = 2) -> None:
        self.postprocess = postprocess
        self.iou_thresh = metric.iou_thresh
        self.area_precision_thresh = metric.area_precision_thresh
        self.workers = int(workers)
        self.prefetch = max(1, int(prefetch))
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="ocrdet-eval-load")
        self._pool: Optional[ProcessPoolExecutor] = None
        if self.workers > 0:
            # spawn, not fork: the parent holds Paddle's OpenMP threads, which a forked child must not inherit
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(postprocess, self.iou_thresh, self.area_precision_thresh),
            )
            # start every worker now, so start-up is not timed as evaluation
            for f in [self._pool.submit(_ready) for _ in range(self.workers)]:
                f.result()

    def evaluate(
        self, forward: MapFn, dataset: Any, indices: Optional[Iterable[int]] = None
    ) -> EvalResult:
        """Run `forward` on `dataset[i]["image"][None]` for each index (all by default) and score every map.

        Samples need `image` [3,H,W], `shape` [4], `polys` and `ignore_tags` (ocrdet's eval transforms).
        """
        order = list(range(len(dataset)) if indices is None else indices)
        timing = EvalTiming(images=len(order))
        counts = np.zeros(3, dtype=np.int64)
        start = time.perf_counter()
        loads: Deque[Future] = deque(self._loader.submit(dataset.__getitem__, i) for i in order[: self.prefetch])
        pending: Deque[Future] = deque()
        for n in range(len(order)):
            t = time.perf_counter()
            sample: Mapping[str, Any] = loads.popleft().result()
            timing.wait_load += time.perf_counter() - t
            if n + self.prefetch < len(order):
                loads.append(self._loader.submit(dataset.__getitem__, order[n + self.prefetch]))

            t = time.perf_counter()
            prob_map = forward(np.ascontiguousarray(sample["image"][None], dtype=np.float32))
            timing.forward += time.perf_counter() - t

            args = (prob_map, sample["shape"], sample["polys"], sample["ignore_tags"])
            if self._pool is None:
                t = time.perf_counter()
                counts += score_image(*args, self.postprocess, self.iou_thresh, self.area_precision_thresh)
                timing.post += time.perf_counter() - t
                continue
            pending.append(self._pool.submit(_score_in_worker, *args))
            # Bound the queue (memory: one map each) but never block on the image just submitted.
            while len(pending) > 2 * self.workers:
                self._collect(pending.popleft(), counts, timing)
        while pending:
            self._collect(pending.popleft(), counts, timing)
        timing.total = time.perf_counter() - start
        return EvalResult(counts, timing)

    @staticmethod
    def _collect(future: Future, counts: np.ndarray, timing: EvalTiming) -> None:
        t = time.perf_counter()
        image_counts, seconds = future.result()
        timing.wait_post += time.perf_counter() - t
        timing.post += seconds
        counts += image_counts

    def close(self) -> None:
        self._loader.shutdown(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "PooledEvaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def predictor_forward(predictor: Any) -> MapFn:
    """A `paddle.inference` predictor (ocrdet.det.graph.load_predictor) as a MapFn."""
    from ocrdet.det.graph import predict

    return lambda image: predict(predictor, image)


def dygraph_forward(model: Any) -> MapFn:
    """A dygraph detector as a MapFn: eval mode, no autograd, the `maps` output (what `ocrdet-eval` runs)."""
    import paddle

    model.eval()

    def forward(image: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            return model(paddle.to_tensor(image))["maps"].numpy()

    return forward


def evaluate_exported(
    model_dir: str,
    dataset: Any,
    postprocess: DBPostProcess,
    metric: DetMetric,
    threads: int = 2,
    workers: int = 1,
    indices: Optional[Iterable[int]] = None,
) -> EvalResult:
    """Evaluate an `ocrdet-export` model folder with the oneDNN predictor and a post-processing pool."""
    from ocrdet.det.graph import load_predictor

    with PooledEvaluator(postprocess, metric, workers=workers) as evaluator:
        return evaluator.evaluate(predictor_forward(load_predictor(model_dir, threads=threads)), dataset, indices)
