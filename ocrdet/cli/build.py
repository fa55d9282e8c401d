"""Build the run's objects from a composed config (Hydra's instantiate does the work; this file only wires)."""
from __future__ import annotations

import paddle
from hydra.utils import instantiate
from omegaconf import DictConfig

from ocrdet.data.datamodule import DataModule
from ocrdet.engine.loggers.base import Logger
from ocrdet.engine.module import TrainModule
from ocrdet.engine.trainer import Trainer


def build_task(cfg: DictConfig, with_optimizer: bool = True) -> TrainModule:
    """The task (`cfg.task`: its own settings) with its model, loss, post-processing, metric and (partial) optimizer,
    which are top-level keys of the config so that each is overridden by its short name (`postprocess.box_thresh`,
    `optim.lr`) and written once."""
    return instantiate(
        cfg.task,
        model=cfg.model,
        loss=cfg.get("loss"),
        postprocess=cfg.postprocess,
        metric=cfg.metric,
        optimizer=cfg.get("optim") if with_optimizer else None,
    )


def build_data(cfg: DictConfig) -> DataModule:
    """The data module of `cfg.data` (datasets are built when a loader or dataset is asked for), seeded by the run's
    `seed` (the loaders' shuffle and each sample's augmentation, with the epoch)."""
    return instantiate(cfg.data, seed=cfg.seed)


def build_logger(cfg: DictConfig) -> Logger | None:
    """The configured loggers, on the global-zero rank only (other ranks never touch the tracking store)."""
    if not cfg.get("logger") or paddle.distributed.get_rank() != 0:
        return None
    loggers = [instantiate(node) for node in cfg.logger.values() if node is not None]
    if len(loggers) > 1:
        raise ValueError("one logger at a time is supported; got " + ", ".join(cfg.logger.keys()))
    return loggers[0] if loggers else None


def build_trainer(cfg: DictConfig, logger: Logger | None) -> Trainer:
    """`cfg.trainer` with the callbacks, the logger, the run's `seed` and its output dir (each written once, at the
    top level, rather than copied into the trainer's keys)."""
    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=logger, seed=cfg.seed, default_root_dir=cfg.paths.output_dir
    )
