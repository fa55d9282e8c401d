"""The text-detection task: one DB model trained with DBLoss, evaluated with DBPostProcess + the ICDAR metric."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import paddle

from ocrdet.det.evaluator import FORWARDS, Evaluator, model_forwards, named_metrics
from ocrdet.engine import distributed
from ocrdet.engine.kernels import tracing_training_program
from ocrdet.engine.module import TrainModule
from ocrdet.losses.distillation import referenced_model_names


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


class _ForwardLoss(paddle.nn.Layer):
    """Model and loss as one layer: the unit a compiled training step traces (it shares their parameters)."""

    def __init__(self, model: paddle.nn.Layer, loss: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: dict[str, paddle.Tensor]) -> dict[str, paddle.Tensor]:
        return self.loss(self.model(batch["image"]), batch)


class DetectionTask(TrainModule):
    def __init__(
        self,
        model: paddle.nn.Layer,
        loss: paddle.nn.Layer,
        postprocess: Callable[[np.ndarray, np.ndarray], list[dict]],
        metric: Any,
        optimizer: Callable[..., tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]] | None = None,
        eval_models: Sequence[str] | None = None,
        eval_forward: str = "predictor",
        eval_threads: int | None = None,
    ) -> None:
        """`eval_models` names the sub-models of a distillation model to evaluate: the first one's metrics are the
        unprefixed `val/hmean` etc. (checkpoint selection), the others are logged as `val/<name>_hmean`. Leave it
        None for a single model.

        `eval_forward="predictor"` (on CPU) runs validation through the exported oneDNN predictor that `ocrdet-eval`
        and deployment use: each validation exports the current weights in-process and scores the same boxes as the
        dygraph forward (`"dygraph"`, and always on GPU), ~5x faster on CPU because Paddle's dygraph CPU kernels do
        not use oneDNN. `eval_threads`: the predictor's math threads (None: the cores shared by the ranks)."""
        super().__init__()
        _check_submodel_names(model, loss, eval_models)
        self.model = model
        self.loss = loss
        self.postprocess = postprocess
        self.eval_models = list(eval_models) if eval_models else [None]
        self.evaluator = Evaluator(postprocess, metric)  # the one `ocrdet-eval` runs too
        self.optimizer_factory = optimizer
        if eval_forward not in FORWARDS:
            raise ValueError(f"eval_forward={eval_forward!r}: choose one of {list(FORWARDS)}")
        self.eval_forward = eval_forward
        self.eval_threads = eval_threads
        self._compiled: Callable[[dict[str, paddle.Tensor]], dict[str, paddle.Tensor]] | None = None

    def eval_model(self, name: str | None) -> paddle.nn.Layer:
        """The evaluated (sub-)model `name` (None: the model itself)."""
        return self.model if name is None else self.model.submodel(name)

    def compile_training_step(self) -> None:
        """Forward + loss as one static program (PIR), traced once per batch shape (the crop size fixes it; a
        smaller last batch traces once more); its backward runs as one program too. The graph keeps the dygraph
        formulations (see `exporting`), so the losses and gradients equal the eager step's to float rounding.

        oneDNN stays off for the process: with Paddle 3.3.1 a static training program placed on oneDNN fails (its
        transposed conv is inference-only, concat_grad raises dnnl::error, interpolate is unsupported) and where it
        ran (320 crop) it was no faster (0.93x eager); dygraph ignores the flag anyway."""
        paddle.set_flags({"FLAGS_use_mkldnn": False})
        self._compiled = paddle.jit.to_static(_ForwardLoss(self.model, self.loss), full_graph=True)

    def batch_size(self, batch: dict[str, Any]) -> int:
        return int(batch["image"].shape[0])

    def skipped_samples(self, batch: dict[str, Any]) -> int:
        """The training datasets report per sample how many draws they dropped before it (`skipped`)."""
        return int(np.asarray(batch["skipped"]).sum()) if "skipped" in batch else 0

    def training_step(self, batch: dict[str, paddle.Tensor], batch_idx: int) -> dict[str, paddle.Tensor]:
        if self._compiled is not None:
            # tensors only: the loader's bookkeeping (skip reasons) is no program input
            with tracing_training_program():  # a frozen teacher's eval-mode layers are no export
                losses = self._compiled({k: v for k, v in batch.items() if isinstance(v, paddle.Tensor)})
        else:
            losses = self.loss(self.train_model(batch["image"]), batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss")
        return losses

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.evaluator.update(batch)

    def on_validation_epoch_start(self) -> None:
        # the predictor forward exports the current weights once per validation (on CPU; dygraph on a GPU)
        threads = self.eval_threads or max(1, (os.cpu_count() or 1) // distributed.world_size())
        models = {name: self.eval_model(name) for name in self.eval_models}
        self.evaluator.start(model_forwards(models, self.eval_forward, threads))

    def on_validation_epoch_end(self) -> dict[str, float]:
        counts = self.evaluator.finish()
        # each rank scored its own shard: sum the counts so every rank computes the full-set metric
        counts = {name: distributed.sum_across_ranks(state) for name, state in counts.items()}
        return {f"val/{k}": v for k, v in named_metrics(counts, self.evaluator.metric).items()}

    def validation_metric_names(self) -> list[str]:
        zeros = {name: np.zeros(3, dtype=np.int64) for name in self.eval_models}
        return [f"val/{k}" for k in named_metrics(zeros, self.evaluator.metric)]

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured: set the `optim` group")
        optimizer, scheduler = self.optimizer_factory(
            parameters=self.trainable_parameters(),
            steps_per_epoch=self.trainer.steps_per_epoch,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
