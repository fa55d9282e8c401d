"""Detection-specific callbacks: PaddleOCR's checkpoint layout; validation images with boxes drawn, best weights and
curve image as run artifacts."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrdet import __version__
from ocrdet.det.visualize import draw_detections, save_image
from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.loggers.mlflow import MLflowLogger
from ocrdet.models.weights import BEST_NAME, EVERY_N_EPOCHS_NAME, LAST_NAME

if TYPE_CHECKING:
    from ocrdet.det.task import DetectionTask
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


class PaddleOCRCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` in PaddleOCR's layout, so its tools and existing run dirs read our files: `best_accuracy`,
    `latest`, `iter_epoch_N` sets whose `.states` carry PaddleOCR's `best_model_dict` (the best validation metrics,
    `best_epoch`, `global_step`), `epoch` and `global_step`, plus the ocrdet version that wrote them."""

    def __init__(self, dirpath: str, **kwargs: Any) -> None:
        """`kwargs`: ModelCheckpoint's monitor, mode, save_last, every_n_epochs."""
        super().__init__(dirpath, best_name=BEST_NAME, last_name=LAST_NAME, every_n_epochs_name=EVERY_N_EPOCHS_NAME,
                         **kwargs)
        self.best_model_dict: dict[str, Any] = {}

    def on_best(self, trainer: Trainer, score: float) -> None:
        self.best_model_dict = {
            **{k.split("/")[-1]: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
            "best_epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
        }

    def on_save_checkpoint(self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any]) -> None:
        checkpoint.update(
            best_model_dict=dict(self.best_model_dict), epoch=trainer.current_epoch, global_step=trainer.global_step,
            ocrdet_version=__version__,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_model_dict": self.best_model_dict,
            "best_model_path": self.best_model_path,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_model_dict = state.get("best_model_dict", {})


class RunArtifacts(Callback):
    """After each evaluation, `num_images` validation images with ground truth (green, don't-care grey) and the
    model's detections at that step (red) under `val_images/step_<N>/`; at the end of fit, the best weights and a
    loss/hmean/lr curve image."""

    def __init__(self, logger: MLflowLogger, run_dir: str | Path, val_dataset: Any = None, num_images: int = 3) -> None:
        self.logger = logger
        self.run_dir = Path(run_dir)
        self.val_dataset = val_dataset
        self.num_images = num_images

    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None:
        # The model and checkpoints are already saved: a failure here (a full disk, a store hiccup) is reported but
        # must not turn a finished training into a failed run.
        self._try("best weights", lambda: self._log_best_weights(trainer))
        self._try("curves", self._log_curves)

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        if trainer.is_global_zero:
            self._try("validation images", lambda: self._log_val_images(module, trainer.global_step))

    @staticmethod
    def _try(what: str, step: Any) -> None:
        try:
            step()
        except Exception:
            log.warning("could not log the %s to MLflow", what, exc_info=True)

    def _log_best_weights(self, trainer: Trainer) -> None:
        checkpoint = trainer.checkpoint_callback
        best = Path(checkpoint.best_model_path) if checkpoint is not None and checkpoint.best_model_path else None
        best = best or self.run_dir / "checkpoints" / f"{BEST_NAME}.pdparams"
        if best.is_file():
            self.logger.log_artifact(str(best), "checkpoints")

    def _log_val_images(self, module: DetectionTask, step: int) -> None:
        if self.val_dataset is None or self.num_images <= 0:
            return
        out_dir = self.run_dir / "val_images" / f"step_{step}"
        count = min(self.num_images, len(self.val_dataset))
        for index in range(count):
            image = render_validation_sample(module, self.val_dataset, index)
            save_image(out_dir / f"val_{index}.png", image)
        if count:
            self.logger.log_artifacts(str(out_dir), f"val_images/step_{step}")

    def _log_curves(self) -> None:
        keys = self.logger.metric_keys()
        histories = {key: self.logger.metric_history(key) for key in keys if _curve_panel(key) is not None}
        if histories:
            path = plot_curves(histories, self.run_dir / "curves.png")
            self.logger.log_artifact(str(path))


def render_validation_sample(module: DetectionTask, dataset: Any, index: int) -> np.ndarray:
    """Sample `index` of a validation dataset as a BGR image with its ground truth and the (first evaluated)
    model's detections drawn."""
    from ocrdet.data.transforms import DecodeImage
    from ocrdet.det.evaluator import dygraph_forward

    sample = dataset[index]
    # the transformed sample holds the normalised network input; draw on the decoded source image instead
    source = DecodeImage()(dataset.load(index))["image"]
    was_training = module.model.training
    try:
        maps = dygraph_forward(module.eval_model(module.eval_models[0]))(sample["image"][None])
    finally:
        if was_training:
            module.model.train()
    boxes = module.postprocess(maps, np.asarray(sample["shape"])[None])[0]["points"]
    return draw_detections(source, boxes, sample["polys"], sample["ignore_tags"])


def _curve_panel(key: str) -> int | None:
    """Which panel a metric goes to: 0 losses, 1 validation hmean, 2 lr; None = not plotted."""
    if key.startswith("train/loss"):
        return 0
    if key.startswith("val/") and key.endswith("hmean"):
        return 1
    if key == "train/lr":
        return 2
    return None


def plot_curves(histories: dict[str, list[tuple[int, float]]], path: str | Path) -> Path:
    """One PNG with three panels (training losses, validation hmean, learning rate) against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    titles = ("training losses", "validation hmean", "learning rate")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    try:
        for key, points in sorted(histories.items()):
            panel = _curve_panel(key)
            if panel is None or not points:
                continue
            steps, values = zip(*points)
            axes[panel].plot(steps, values, label=key, marker="o" if len(points) < 20 else None)
        for axis, title in zip(axes, titles):
            axis.set_title(title)
            axis.set_xlabel("step")
            if axis.lines:
                axis.legend(fontsize=7)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
