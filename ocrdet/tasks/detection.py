"""The text-detection task: one DB model trained with DBLoss, evaluated with DBPostProcess + the ICDAR metric."""
from __future__ import annotations

import copy
import os
import tempfile
from typing import Any, Callable, Sequence

import numpy as np
import paddle

from ocrdet.engine import distributed
from ocrdet.engine.module import TrainModule
from ocrdet.losses.distillation import referenced_model_names

EVAL_ENGINES = ("dygraph", "predictor")


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, paddle.Tensor) else np.asarray(value)


def _check_submodel_names(model: paddle.nn.Layer, loss: Any, eval_models: Sequence[str] | None) -> None:
    """Fail before training, naming the culprit, when config refers to a sub-model the model does not have."""
    names = getattr(model, "names", None)
    if names is None:
        if eval_models:
            raise ValueError(f"eval_models={list(eval_models)} given for a single model (not a distillation model)")
        return
    referenced = {"eval_models": list(eval_models or [])}
    if isinstance(loss, paddle.nn.Layer):
        referenced["loss"] = referenced_model_names(loss)
    for where, wanted in referenced.items():
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ValueError(f"{where} refers to sub-model(s) {unknown}; the model has {names}")


class DetectionTask(TrainModule):
    def __init__(
        self,
        model: paddle.nn.Layer,
        loss: paddle.nn.Layer,
        postprocess: Callable[[np.ndarray, np.ndarray], list[dict]],
        metric: Any,
        optimizer: Callable[..., tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]] | None = None,
        eval_models: Sequence[str] | None = None,
        eval_engine: str = "dygraph",
    ) -> None:
        """`eval_models` names the sub-models of a distillation model to evaluate: the first one's metrics are the
        unprefixed `val/hmean` etc. (checkpoint selection), the others are logged as `val/<name>_hmean`. Leave it
        None for a single model.

        `eval_engine="predictor"`: each validation exports the evaluated models and runs them in oneDNN
        `paddle.inference` predictors (the same boxes as the dygraph forward, ~5x faster on CPU; ocrdet-eval's
        default engine). CPU and one rank only; elsewhere validation stays dygraph."""
        super().__init__()
        if eval_engine not in EVAL_ENGINES:
            raise ValueError(f"eval_engine={eval_engine!r}; choose one of {list(EVAL_ENGINES)}")
        _check_submodel_names(model, loss, eval_models)
        self.model = model
        self.loss = loss
        self.postprocess = postprocess
        self.eval_models = list(eval_models) if eval_models else [None]
        self.metrics = {name: copy.deepcopy(metric) for name in self.eval_models}
        self.optimizer_factory = optimizer
        self.eval_engine = eval_engine
        self._predictors: dict[str | None, Any] = {}

    def forward_eval(self, image: paddle.Tensor, name: str | None = None) -> np.ndarray:
        """Shrink-probability maps [N,1,H,W] of the evaluated (sub-)model."""
        if name in self._predictors:
            from ocrdet.export import predict

            return predict(self._predictors[name], _numpy(image))
        model = self.model if name is None else self.model.submodel(name)
        return model(image)["maps"].numpy()

    def training_step(self, batch: dict[str, paddle.Tensor], batch_idx: int) -> dict[str, paddle.Tensor]:
        predictions = self.train_model(batch["image"])
        losses = self.loss(predictions, batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss")
        return losses

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        gt_polys = [_numpy(p) for p in batch["polys"]]
        gt_ignore = [_numpy(t).astype(bool) for t in batch["ignore_tags"]]
        shapes = _numpy(batch["shape"])
        for name, metric in self.metrics.items():
            boxes = self.postprocess(self.forward_eval(batch["image"], name), shapes)
            metric.update([b["points"] for b in boxes], gt_polys, gt_ignore)

    def on_validation_epoch_start(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
        trainer = self.trainer
        if self.eval_engine == "predictor" and trainer.accelerator == "cpu" and distributed.world_size() == 1:
            self._load_predictors(trainer.cpu_threads)

    def _load_predictors(self, threads: int) -> None:
        """A predictor per evaluated model, from an export of its current weights (the export copies the model)."""
        from ocrdet.export import export_inference, load_predictor

        with tempfile.TemporaryDirectory(prefix="ocrdet-val-") as tmp:
            for i, name in enumerate(self.eval_models):
                folder = os.path.join(tmp, str(i))
                model = self.model if name is None else self.model.submodel(name)
                export_inference(model, os.path.join(folder, "inference"))
                self._predictors[name] = load_predictor(folder, threads=threads)  # reads the files now

    def on_validation_epoch_end(self) -> dict[str, float]:
        results: dict[str, float] = {}
        for i, (name, metric) in enumerate(self.metrics.items()):
            # each rank scored its own shard: sum the counts so every rank computes the full-set metric
            if distributed.world_size() > 1:
                total = distributed.sum_across_ranks(metric.state())
                metric.reset()
                metric.merge_state(total)
            prefix = "val/" if i == 0 else f"val/{name}_"
            results.update({f"{prefix}{k}": float(v) for k, v in metric.compute().items()})
        self._predictors.clear()
        return results

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured: set the `optim` group")
        optimizer, scheduler = self.optimizer_factory(
            parameters=self.trainable_parameters(),
            steps_per_epoch=self.trainer.steps_per_epoch,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
