"""Detection evaluation, one implementation for every caller: the Trainer's validation (through DetectionTask's
validation hooks), `ocrdet-eval`, `ocrdet-export`'s verification and scripts/bench_eval.py.

An evaluated model is a `MapFn` (an NCHW float32 batch -> shrink-probability maps [N,1,H,W]):

    forwards = model_forwards({None: model}, "predictor")          # or "dygraph"; exported_forward(...) for a file
    with Evaluator(postprocess, DetMetric(), workers=0) as evaluator:
        result = evaluator.evaluate(forwards, dataset)              # or start() / update(batch) / finish()
    result.metrics  # {"precision", "recall", "hmean"} (+ "<name>_hmean", ... for further models)

`start`/`update`/`finish` score batches the caller loads (the Trainer's loader, sharded over ranks); `evaluate` loads
the samples itself, the next ones in a thread while the forward runs. DBPostProcess + the ICDAR metric run inline
(`workers=0`) or in spawned worker processes. This module imports no Paddle at the top: those workers load only
numpy, OpenCV, pyclipper and shapely.
"""
from __future__ import annotations

import copy
import datetime
import logging
import multiprocessing as mp
import os
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from ocrdet.metrics.det_metric import DetMetric, evaluate_image
from ocrdet.postprocess.db_postprocess import DBPostProcess

if TYPE_CHECKING:
    import paddle

# An NCHW float32 batch (numpy, or a paddle Tensor from a loader) -> its shrink-probability maps [N,1,H,W] (numpy).
MapFn = Callable[[Any], np.ndarray]
# How a trained (dygraph) model is run for evaluation: itself, or its current weights in a oneDNN predictor.
FORWARDS = ("predictor", "dygraph")

log = logging.getLogger(__name__)
_WORKER: Dict[str, Any] = {}  # per worker process: the post-process and metric thresholds


def as_numpy(value: Any) -> np.ndarray:
    """A paddle Tensor or array-like as numpy (without importing Paddle)."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


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
    """Seconds spent, summed over the images of one evaluation."""

    images: int = 0
    total: float = 0.0  # wall time of `evaluate` (0 when the caller drove start/update/finish)
    forward: float = 0.0  # the model forwards, in this process
    post: float = 0.0  # post-process + metric: in this process, or summed over the workers when pooled
    wait_load: float = 0.0  # this process waiting for the next sample (`evaluate` only)
    wait_post: float = 0.0  # this process waiting for worker results (pooled only)

    @property
    def images_per_s(self) -> float:
        return self.images / self.total if self.total else 0.0

    @property
    def post_share(self) -> float:
        """Post-process + metric time over the wall time (may exceed the blocking part when pooled)."""
        return self.post / self.total if self.total else 0.0

    def line(self, workers: int) -> str:
        """One log line: images, wall time, images/s and the per-image split."""
        per_image = 1000 / max(self.images, 1)
        return (
            f"{self.images} images in {self.total:.1f} s ({self.images_per_s:.2f} images/s; forward "
            f"{self.forward * per_image:.0f} ms/image, post-process+metric {self.post * per_image:.0f} ms/image in "
            f"{workers} worker(s))"
        )


@dataclass
class EvalResult:
    """Summed metric counts [gt_care, det_care, matched] (DetMetric's state) per evaluated model, the first being the
    main one (None: a single model), and the metric that turns counts into figures."""

    counts: Dict[Optional[str], np.ndarray]
    metric: DetMetric = field(default_factory=DetMetric)
    timing: EvalTiming = field(default_factory=EvalTiming)

    @property
    def metrics(self) -> Dict[str, float]:
        """The figures as the Trainer names them: the first model's unprefixed (`hmean`), the others'
        `<name>_hmean`."""
        return named_metrics(self.counts, self.metric)


def named_metrics(counts: Mapping[Optional[str], np.ndarray], metric: DetMetric) -> Dict[str, float]:
    """`precision`, `recall`, `hmean` of the first model's counts, `<name>_precision`, ... of the others'."""
    results: Dict[str, float] = {}
    for i, (name, state) in enumerate(counts.items()):
        scorer = copy.deepcopy(metric)
        scorer.reset()
        scorer.merge_state(state)
        prefix = "" if i == 0 else f"{name}_"
        results.update({f"{prefix}{k}": float(v) for k, v in scorer.compute().items()})
    return results


class Evaluator:
    """Scores evaluated models (`MapFn`s) on eval samples with DBPostProcess and the ICDAR metric.

    Args:
        postprocess: the DBPostProcess of the eval config (pickled to the workers).
        metric: supplies the IoU thresholds and turns counts into P/R/H; its own state is not touched.
        workers: post-processing processes; 0 scores each image in this process right after its forward.
        prefetch: samples `evaluate` loads ahead in a thread (decode + resize + normalize release the GIL).
    """

    def __init__(self, postprocess: DBPostProcess, metric: DetMetric, workers: int = 0, prefetch: int = 2) -> None:
        self.postprocess = postprocess
        self.metric = metric
        self.workers = int(workers)
        self.prefetch = max(1, int(prefetch))
        self._loader: Optional[ThreadPoolExecutor] = None
        self._pool: Optional[ProcessPoolExecutor] = None
        self._forwards: Dict[Optional[str], MapFn] = {}
        self._counts: Dict[Optional[str], np.ndarray] = {}
        self._pending: Deque[Tuple[Optional[str], Future]] = deque()
        self.timing = EvalTiming()
        self._start_pool()  # now, so worker start-up is not timed as evaluation

    # ---- batches the caller loads (the Trainer's validation loop) -------------------------------------------------
    def start(self, forwards: Mapping[Optional[str], MapFn]) -> None:
        """Begin an evaluation of each named forward (the first is the main one) with zeroed counts."""
        if not forwards:
            raise ValueError("no model to evaluate")
        self._start_pool()
        self._forwards = dict(forwards)
        self._counts = {name: np.zeros(3, dtype=np.int64) for name in self._forwards}
        self._pending.clear()
        self.timing = EvalTiming()

    def update(self, batch: Mapping[str, Any]) -> None:
        """Score one batch with every forward: `image` [N,3,H,W], `shape` [N,4], and per image `polys` and
        `ignore_tags` (ocrdet's eval transforms + collate_eval; numpy or paddle Tensors)."""
        shapes = as_numpy(batch["shape"]).reshape(-1, 4)
        gt_polys = [as_numpy(p) for p in batch["polys"]]
        gt_ignore = [as_numpy(t).astype(bool) for t in batch["ignore_tags"]]
        self.timing.images += len(shapes)
        for name, forward in self._forwards.items():
            t = time.perf_counter()
            maps = forward(batch["image"])
            self.timing.forward += time.perf_counter() - t
            for i in range(len(shapes)):
                self._score(name, (maps[i : i + 1], shapes[i], gt_polys[i], gt_ignore[i]))

    def finish(self) -> Dict[Optional[str], np.ndarray]:
        """Wait for the pending images and return the summed counts per model; the forwards are released (a
        predictor's memory goes back before training resumes)."""
        while self._pending:
            self._collect()
        self._forwards = {}
        return dict(self._counts)

    def _score(self, name: Optional[str], args: Tuple[Any, ...]) -> None:
        if self._pool is None:
            t = time.perf_counter()
            self._counts[name] += score_image(*args, self.postprocess, self.metric.iou_thresh,
                                              self.metric.area_precision_thresh)  # fmt: skip
            self.timing.post += time.perf_counter() - t
            return
        self._pending.append((name, self._pool.submit(_score_in_worker, *args)))
        # Bound the queue (memory: one map each) but never block on the image just submitted.
        while len(self._pending) > 2 * self.workers:
            self._collect()

    def _collect(self) -> None:
        name, future = self._pending.popleft()
        t = time.perf_counter()
        counts, seconds = future.result()
        self.timing.wait_post += time.perf_counter() - t
        self.timing.post += seconds
        self._counts[name] += counts

    # ---- a whole data set --------------------------------------------------------------------------------------
    def evaluate(
        self,
        forwards: Mapping[Optional[str], MapFn],
        dataset: Any,
        indices: Optional[Iterable[int]] = None,
        log_every: int = 0,
    ) -> EvalResult:
        """Score `dataset[i]` for each index (all by default) with every forward, one image at a time (eval images
        differ in size), the next samples loading in a thread; progress is logged every `log_every` images (0:
        never)."""
        order = list(range(len(dataset)) if indices is None else indices)
        self.start(forwards)
        if self._loader is None:
            self._loader = ThreadPoolExecutor(1, thread_name_prefix="ocrdet-eval-load")
        start = time.perf_counter()
        loads: Deque[Future] = deque(self._loader.submit(dataset.__getitem__, i) for i in order[: self.prefetch])
        for n in range(len(order)):
            t = time.perf_counter()
            sample: Mapping[str, Any] = loads.popleft().result()
            self.timing.wait_load += time.perf_counter() - t
            if n + self.prefetch < len(order):
                loads.append(self._loader.submit(dataset.__getitem__, order[n + self.prefetch]))
            image = np.ascontiguousarray(sample["image"][None], dtype=np.float32)
            self.update({"image": image, "shape": sample["shape"], "polys": [sample["polys"]],
                         "ignore_tags": [sample["ignore_tags"]]})  # fmt: skip
            if log_every > 0 and (n + 1) % log_every == 0 and n + 1 < len(order):
                self.timing.total = time.perf_counter() - start
                eta = (len(order) - n - 1) / max(self.timing.images_per_s, 1e-9)
                log.info("eval [%d/%d] %.2f images/s | eta %s", n + 1, len(order), self.timing.images_per_s,
                         datetime.timedelta(seconds=int(eta)))  # fmt: skip
        counts = self.finish()
        self.timing.total = time.perf_counter() - start
        return EvalResult(counts, self.metric, self.timing)

    # ---- resources ---------------------------------------------------------------------------------------------
    def _start_pool(self) -> None:
        if self.workers <= 0 or self._pool is not None:
            return
        # spawn, not fork: the parent holds Paddle's OpenMP threads, which a forked child must not inherit
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.postprocess, self.metric.iou_thresh, self.metric.area_precision_thresh),
        )
        for f in [self._pool.submit(_ready) for _ in range(self.workers)]:
            f.result()

    def close(self) -> None:
        if self._loader is not None:
            self._loader.shutdown(wait=True)
            self._loader = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- forwards of trained models --------------------------------------------------------------------------------


def dygraph_forward(model: "paddle.nn.Layer") -> MapFn:
    """A dygraph detector as a MapFn: eval mode, no autograd, the shrink maps."""
    import paddle

    from ocrdet.det.graph import ShrinkMaps

    maps = ShrinkMaps(model)
    model.eval()

    def forward(image: Any) -> np.ndarray:
        with paddle.no_grad():
            return maps(image if isinstance(image, paddle.Tensor) else paddle.to_tensor(image)).numpy()

    return forward


def predictor_forward(predictor: Any) -> MapFn:
    """A `paddle.inference` predictor (ocrdet.det.graph.load_predictor) as a MapFn."""
    from ocrdet.det.graph import predict

    return lambda image: predict(predictor, as_numpy(image))


def on_cpu() -> bool:
    """Whether Paddle runs on the CPU: its current device (the Trainer's choice, else Paddle's default, a GPU when
    it was built with CUDA and sees one)."""
    import paddle

    return paddle.device.get_device() == "cpu"


def model_forwards(
    models: Mapping[Optional[str], "paddle.nn.Layer"], forward: str = "predictor", threads: Optional[int] = None
) -> Dict[Optional[str], MapFn]:
    """A MapFn per model for its current weights. `forward="predictor"` (CPU only) exports each model once into a
    temporary folder and loads it into a oneDNN `paddle.inference` predictor with `threads` math threads (None: all
    cores): ~5x faster than the dygraph forward on CPU, whose kernels skip oneDNN, to the same boxes. The predictor
    is built from files because paddle.inference reads a saved program; they are deleted once it is loaded.
    `"dygraph"` (and any forward on a GPU) runs the models themselves."""
    if forward not in FORWARDS:
        raise ValueError(f"forward={forward!r}: choose one of {list(FORWARDS)}")
    if forward == "dygraph" or not on_cpu():
        return {name: dygraph_forward(model) for name, model in models.items()}
    from ocrdet.det.graph import export_inference, load_predictor

    forwards: Dict[Optional[str], MapFn] = {}
    with tempfile.TemporaryDirectory(prefix="ocrdet-eval-") as tmp:
        for i, (name, model) in enumerate(models.items()):
            folder = os.path.join(tmp, str(i))
            export_inference(model, os.path.join(folder, "inference"))
            predictor = load_predictor(folder, threads=threads or os.cpu_count() or 1)
            forwards[name] = predictor_forward(predictor)
    return forwards
