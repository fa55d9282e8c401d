"""`ocrdet-eval`: evaluate weights on the configured data set's validation split.

`weights=` takes a PaddleOCR-layout `.pdparams`, a checkpoint prefix, or a run directory (its best checkpoint).
The last line printed is `precision=<p> recall=<r> hmean=<h>`.
"""
from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from ocrdet.build import build_task, build_trainer, build_val_loader  # noqa: E402
from ocrdet.config import CONF_DIR  # noqa: E402
from ocrdet.engine import checkpoint_io  # noqa: E402
from ocrdet.models.weights import load_for_inference  # noqa: E402

log = logging.getLogger("ocrdet.eval")


def run_eval(cfg: DictConfig) -> dict[str, float]:
    task = build_task(cfg, with_optimizer=False)
    weights = checkpoint_io.resolve_weights(cfg.weights)
    report = load_for_inference(task.model, str(weights), prefix=cfg.get("weights_prefix") or "")
    log.info("loaded %s: %d tensors matched, %d unexpected", weights, len(report.matched), len(report.unexpected))
    loader = build_val_loader(cfg)
    if loader is None:
        raise ValueError("the data config has no `val` split to evaluate")
    trainer = build_trainer(cfg, logger=None)
    metrics = trainer.validate(task, loader)
    return {k.split("/", 1)[-1]: v for k, v in metrics.items()}


@hydra.main(config_path=str(CONF_DIR), config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float:
    metrics = run_eval(cfg)
    print(f"precision={metrics['precision']:.6f} recall={metrics['recall']:.6f} hmean={metrics['hmean']:.6f}")
    return metrics["hmean"]


if __name__ == "__main__":
    main()
