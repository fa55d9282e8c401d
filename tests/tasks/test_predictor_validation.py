"""task.eval_engine=predictor: the Trainer's validation runs an export of the current weights in a paddle.inference
predictor, with the dygraph validation's metrics."""
from __future__ import annotations

import paddle
import pytest

from ocrdet.build import build_task, build_trainer, build_val_loader
from ocrdet.config import compose_config

pytestmark = pytest.mark.filterwarnings("ignore")


def test_predictor_validation_gives_the_dygraph_metrics(tmp_path):
    # 4 synthetic images; thresholds low enough that the random student's maps give boxes to score
    overrides = ["data.val.num_samples=4", "data.val.image_size=96", "postprocess.thresh=0.5",
                 "postprocess.box_thresh=0.5", "logger=none", "trainer.accelerator=cpu"]
    metrics, used, counts = {}, {}, {}
    for engine in ("dygraph", "predictor"):
        cfg = compose_config("train", [*overrides, f"+task.eval_engine={engine}"], output_dir=tmp_path / engine)
        paddle.seed(0)
        task = build_task(cfg, with_optimizer=False)
        calls = []
        forward = task.forward_eval
        task.forward_eval = lambda image, name=None: calls.append(bool(task._predictors)) or forward(image, name)
        metrics[engine] = build_trainer(cfg, logger=None).validate(task, build_val_loader(cfg))
        used[engine] = calls
        counts[engine] = task.metrics[None].state().tolist()  # gt_care, det_care, matched
    assert used == {"dygraph": [False] * 4, "predictor": [True] * 4}
    assert counts["predictor"] == counts["dygraph"] and counts["dygraph"][1] > 0  # the same boxes, and some
    assert metrics["predictor"] == metrics["dygraph"]
    assert set(metrics["dygraph"]) == {"val/precision", "val/recall", "val/hmean"}


def test_an_unknown_engine_is_refused():
    cfg = compose_config("train", ["+task.eval_engine=onnx"])
    with pytest.raises(Exception, match=r"eval_engine='onnx'; choose one of \['dygraph', 'predictor'\]"):
        build_task(cfg, with_optimizer=False)
