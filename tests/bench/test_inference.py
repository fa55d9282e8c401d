"""ocrdet.det.evaluator: the evaluator (inline or pooled, whole data set or batch by batch) scores exactly what
DBPostProcess + DetMetric score image by image."""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pytest

from ocrdet.det.evaluator import Evaluator
from ocrdet.metrics.det_metric import DetMetric
from ocrdet.postprocess.db_postprocess import DBPostProcess


def _dataset(n: int = 5) -> List[Dict[str, np.ndarray]]:
    """Tiny eval samples: the 'image' carries the probability map the fake forward returns (one or two boxes)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        prob = np.zeros((64, 96), "float32")
        polys, ignore = [], []
        for _ in range(1 + i % 2):
            x, y = int(rng.integers(2, 60)), int(rng.integers(2, 40))
            prob[y : y + 12, x : x + 30] = 0.9
            # the map holds the shrunk text region; the unclipped box grows back to about the GT quad
            polys.append(np.array([[x - 3, y - 3], [x + 33, y - 3], [x + 33, y + 15], [x - 3, y + 15]], "float32"))
            ignore.append(False)
        polys.append(np.array([[0, 60], [5, 60], [5, 63], [0, 63]], "float32"))  # a don't-care region
        ignore.append(True)
        image = np.repeat(prob[None], 3, axis=0)
        samples.append({"image": image, "shape": np.array([64, 96, 1.0, 1.0]), "polys": polys, "ignore_tags": ignore})
    return samples


def _forward(image: np.ndarray) -> np.ndarray:
    return image[:, :1]


def _reference(samples, postprocess: DBPostProcess) -> np.ndarray:
    metric = DetMetric()
    for s in samples:
        boxes = postprocess(_forward(s["image"][None]), s["shape"][None])
        metric.update([boxes[0]["points"]], [s["polys"]], [np.asarray(s["ignore_tags"])])
    return metric.state()


@pytest.mark.parametrize("workers", [0, 2])
def test_pooled_evaluator_counts_equal_det_metric(workers: int) -> None:
    samples = _dataset()
    postprocess = DBPostProcess(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5)
    with Evaluator(postprocess, DetMetric(), workers=workers) as evaluator:
        result = evaluator.evaluate({None: _forward}, samples)
        subset = evaluator.evaluate({None: _forward}, samples, indices=[3, 1])
    np.testing.assert_array_equal(result.counts[None], _reference(samples, postprocess))
    assert result.counts[None][2] > 0 and result.metrics["hmean"] > 0  # some matches: not a vacuous comparison
    np.testing.assert_array_equal(subset.counts[None], _reference([samples[3], samples[1]], postprocess))
    assert result.timing.images == 5 and subset.timing.images == 2
    assert result.timing.total > 0 and result.timing.forward >= 0 and result.timing.post > 0


@pytest.mark.parametrize("workers", [0, 1])
def test_batches_of_several_models_score_as_the_whole_data_set(workers: int) -> None:
    """start/update/finish (the Trainer's validation: loader batches of two, two models) count what `evaluate`
    counts per model; the second model's figures are named `<name>_hmean` as the Trainer logs them."""
    samples = _dataset(4)
    postprocess = DBPostProcess(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5)
    forwards = {None: _forward, "Empty": lambda image: np.zeros_like(image[:, :1])}
    with Evaluator(postprocess, DetMetric(), workers=workers) as evaluator:
        whole = evaluator.evaluate(forwards, samples)
        evaluator.start(forwards)
        for i in (0, 2):
            pair = samples[i : i + 2]
            batch = {key: [s[key] for s in pair] for key in ("image", "shape", "polys", "ignore_tags")}
            evaluator.update({**batch, "image": np.stack(batch["image"]), "shape": np.stack(batch["shape"])})
        batched = evaluator.finish()
    np.testing.assert_array_equal(batched[None], _reference(samples, postprocess))
    np.testing.assert_array_equal(batched["Empty"], whole.counts["Empty"])
    np.testing.assert_array_equal(batched[None], whole.counts[None])
    assert set(whole.metrics) == {"precision", "recall", "hmean", "Empty_precision", "Empty_recall", "Empty_hmean"}
    assert whole.metrics["hmean"] > 0 and whole.metrics["Empty_precision"] == 0.0
