"""Build the run's objects from a composed config (Hydra's instantiate does the work; this file only wires)."""
from __future__ import annotations

import paddle
from hydra.utils import instantiate
from omegaconf import DictConfig

from ocrdet.data.collate import TrainBatchToFloat, collate_eval, collate_train
from ocrdet.data.loaders import MappedLoader, build_dataloader
from ocrdet.engine.loggers.base import Logger
from ocrdet.engine.module import TrainModule
from ocrdet.engine.trainer import Trainer


def build_task(cfg: DictConfig, with_optimizer: bool = True) -> TrainModule:
    """The task with its model, loss, post-processing, metric and (partial) optimizer."""
    overrides = {} if with_optimizer else {"optimizer": None}
    return instantiate(cfg.task, **overrides)


def build_train_loader(cfg: DictConfig) -> MappedLoader:
    """Workers collate compact batches (uint8 image and binary targets); the main process makes them float32."""
    dataset = instantiate(cfg.data.train)
    loader = build_dataloader(
        dataset,
        batch_size=cfg.data.batch_size,
        collate_fn=collate_train,
        shuffle=True,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
    )
    return MappedLoader(loader, TrainBatchToFloat.for_dataset(dataset))


def build_val_loader(cfg: DictConfig) -> paddle.io.DataLoader | None:
    if cfg.data.get("val") is None:
        return None
    return build_dataloader(
        instantiate(cfg.data.val),
        batch_size=cfg.data.eval_batch_size,
        collate_fn=collate_eval,
        shuffle=False,
        num_workers=cfg.data.eval_num_workers,
        seed=cfg.seed,
        evaluation=True,
    )


def build_logger(cfg: DictConfig) -> Logger | None:
    """The configured loggers, on the global-zero rank only (other ranks never touch the tracking store)."""
    if not cfg.get("logger") or paddle.distributed.get_rank() != 0:
        return None
    loggers = [instantiate(node) for node in cfg.logger.values() if node is not None]
    if len(loggers) > 1:
        raise ValueError("one logger at a time is supported; got " + ", ".join(cfg.logger.keys()))
    return loggers[0] if loggers else None


def build_trainer(cfg: DictConfig, logger: Logger | None) -> Trainer:
    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
