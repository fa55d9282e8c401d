"""`ocrdet-train`: compose the config, build data/model/task/trainer, fit, return the monitored metric."""
from __future__ import annotations

import contextlib
import importlib
import logging
from pathlib import Path
from typing import Any, Sequence

import hydra
from hydra.utils import instantiate
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ocrdet.utils.setup import setup_cli

setup_cli()

from ocrdet.cli.config import CONF_DIR, check_targets, check_types, check_values, legacy_key  # noqa: E402
from ocrdet.cli.build import build_data, build_logger, build_task, build_trainer  # noqa: E402
from ocrdet.engine.loggers.base import flatten  # noqa: E402
from ocrdet.engine.loggers.mlflow import MLflowLogger  # noqa: E402
from ocrdet.engine import checkpoint_io  # noqa: E402
from ocrdet.cli.launch import is_worker, launch  # noqa: E402
from ocrdet.engine.trainer import seed_everything  # noqa: E402
from ocrdet.models.distillation import DistillationModel  # noqa: E402
from ocrdet.utils.run_lock import run_dir_lock  # noqa: E402
from ocrdet.engine.loggers.redact import install_log_redaction, redact, redact_files  # noqa: E402
from ocrdet.det.callbacks import RunArtifacts  # noqa: E402
from ocrdet.engine.callbacks.throughput import ThroughputMonitor  # noqa: E402
from ocrdet.engine.loggers.sweep import close_parent_run, config_params, join_sweep  # noqa: E402

log = logging.getLogger("ocrdet.cli.train")


def warn_untrained_frozen(model: Any, finetuned: Sequence[str] = ()) -> None:
    """A frozen sub-model (the CML teacher) that got no weights stays at its random initialisation for the whole
    run: the students would learn from noise. `finetuned`: the model keys the finetune weights set."""
    if not isinstance(model, DistillationModel):
        return
    loaded = set(finetuned)
    for name in model.frozen:
        if name in model.load_reports or any(k.startswith(f"{name}.") for k in loaded):
            continue
        log.warning(
            "sub-model %s is frozen but no weights were loaded into it: it stays at its random initialisation, so "
            "the losses that read it train against noise. Give it weights: the `pretrained` of its entry under "
            "`model.members` (model.members.teacher.pretrained=<.pdparams> for CML, e.g. the DML run's Student from "
            "ocrdet-extract) or finetune=cml_checkpoint", name,
        )


def _continue_logger_run(cfg: DictConfig, resume: Path | None) -> None:
    """A resumed job logs into the MLflow run it started (its id is in the checkpoint's states)."""
    if resume is None or not cfg.get("logger") or "mlflow" not in cfg.logger or cfg.logger.mlflow.get("run_id"):
        return
    saved = checkpoint_io.read_states(resume).get("loggers") or [{}]
    if saved[0].get("run_id"):
        OmegaConf.update(cfg, "logger.mlflow.run_id", saved[0]["run_id"])


def run_train(cfg: DictConfig) -> dict[str, float]:
    """Fit once from a composed config; return the trainer's final callback metrics."""
    check_targets(cfg)
    check_values(cfg)
    # before anything reads or writes the run dir; the driver of a multi-rank run holds it for its ranks
    with run_dir_lock(cfg.paths.output_dir) if not is_worker() else contextlib.nullcontext():
        return _run_train(cfg)


def _run_train(cfg: DictConfig) -> dict[str, float]:
    run_dir = Path(cfg.paths.output_dir)
    install_log_redaction()
    # Hydra wrote the composed config and the command-line overrides before this job started
    redact_files([run_dir / ".hydra" / name for name in ("config.yaml", "overrides.yaml", "hydra.yaml")])
    resume = checkpoint_io.resolve_resume(cfg.get("resume"), run_dir)
    check_resume_config(cfg, resume)
    choices = _group_choices()
    # before anything is built: Hydra's instantiate resolves interpolations of the nodes it builds in place
    params = redact(config_params(cfg, choices))
    data = build_data(cfg)  # first: its settings are checked before the model is built (it draws no random numbers)
    seed_everything(cfg.seed)  # before building: the initial weights are a function of the seed
    task = build_task(cfg)
    finetune = instantiate(cfg.finetune) if cfg.get("finetune") else None
    warn_untrained_frozen(task.model, finetune.apply(task.model) if finetune is not None else [])
    train_loader = data.train_dataloader()
    val_loader = data.val_dataloader()
    _continue_logger_run(cfg, resume)
    logger = build_logger(cfg)
    trainer = build_trainer(cfg, logger)
    trainer.hyper_parameters = redact(OmegaConf.to_container(cfg, resolve=True))  # to MLflow params and .states
    if trainer.is_global_zero and logger is not None:
        logger.log_hyperparams(params)
        tags = {**choices, "ocrdet.run_dir": str(run_dir.resolve())}
        if resume is not None:
            tags["ocrdet.resumed_from"] = str(resume.resolve())
        logger.set_tags(tags)
        config_file = run_dir / ".hydra" / "config.yaml"
        if config_file.is_file():
            logger.log_artifact(str(config_file), "config")
        trainer.callbacks.append(ThroughputMonitor())
        if isinstance(logger, MLflowLogger):
            val_dataset = getattr(val_loader, "dataset", None)
            trainer.callbacks.append(RunArtifacts(logger, run_dir, val_dataset, num_images=3))
    log.info("run dir: %s", run_dir)
    metrics = trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_score is not None:
        log.info("best %s=%.6f at %s", checkpoint.monitor, checkpoint.best_score, checkpoint.best_model_path)
    return metrics


# Keys a resume may change freely: where things are written or logged, how fast data loads, how much is printed.
# Anything else changes the run (batch size -> the LR schedule's steps, lr, model, data) and needs consent.
RESUME_FREE_KEYS = (
    "paths.", "resume", "logger.", "callbacks.progress.", "callbacks.model_checkpoint.dirpath",
    "callbacks.model_checkpoint._target_", "data.num_workers",
    "data.eval_num_workers", "trainer.cpu_threads", "trainer.cpu_onednn", "trainer.log_every_n_steps",
    "trainer.default_root_dir", "task_name",
)


def changed_keys(cfg: DictConfig, saved: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, checkpoint's value, value now) for each key whose value differs between `cfg` and a checkpoint's saved
    (resolved) config, except those a resume may change (`RESUME_FREE_KEYS`, `resume_allow_changes`) and copies made
    by interpolation."""
    allowed = [str(k) for k in cfg.get("resume_allow_changes") or []]
    now = flatten(OmegaConf.to_container(cfg, resolve=True))
    before, legacy = upgrade_saved_config(flatten(saved))
    # a key set by interpolation (`task.optimizer: ${optim}`) changes with its source: name only the source
    written = flatten(OmegaConf.to_container(cfg, resolve=False))

    def derived(key: str) -> bool:
        parts = key.split(".")
        return any("${" in str(written.get(".".join(parts[:i]), "")) for i in range(1, len(parts) + 1))

    def moved(key: str) -> bool:
        """A `_target_` whose recorded path no longer exists names code that moved (a release reorganised its
        modules), not a different object: the run can only continue with the new path."""
        if not key.endswith("._target_") or key not in before or _locatable(str(before[key])):
            return False
        log.info("resume: %s moved: %s -> %s", key, before[key], now.get(key))
        return True

    # a checkpoint of the layout before issue 12 names some settings differently and lacks the new keys
    keys = set(now) & set(before) if legacy else set(now) | set(before)
    return [
        (key, before.get(key, "<absent>"), now.get(key, "<absent>")) for key in sorted(keys)
        if now.get(key, "<absent>") != before.get(key, "<absent>")
        and not key.startswith(RESUME_FREE_KEYS)
        and not derived(key)
        and not moved(key)
        and not any(a == "*" or key == a or key.startswith(a + ".") for a in allowed)
    ]


def _locatable(path: str) -> bool:
    """Whether a dotted `_target_` path names something importable (the longest importable module, then attributes)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def check_resume_config(cfg: DictConfig, resume: Path | None) -> None:
    """Refuse to resume with a config that differs from the checkpoint's in a key that changes the run, naming the
    keys and their values, unless `resume_allow_changes` lists them (or holds "*")."""
    if resume is None:
        return
    saved = checkpoint_io.read_states(resume).get("hyper_parameters")
    if not saved:
        log.warning("%s records no config: cannot check that this resume uses the same settings", resume)
        return
    changed = changed_keys(cfg, saved)
    if changed:
        details = ", ".join(f"{k}: {before!r} -> {now!r}" for k, before, now in changed)
        raise ValueError(
            f"resume={resume}: the config differs from the checkpoint's in {details}. A resume continues the same "
            f"run (its LR schedule, data and model); start a new run, or accept the change with "
            f"resume_allow_changes=[{','.join(k for k, _, _ in changed)}]"
        )


def upgrade_saved_config(saved: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A checkpoint's flattened config in today's keys, and whether it was written in the layout before issue 12
    (then only the keys both layouts have can be compared: it lacks the new ones, and its copies under model.*,
    task.* and data.train/val.* have no counterpart)."""
    if not any(key.startswith("task.model.") for key in saved):
        return saved, False
    upgraded: dict[str, Any] = {}
    for key, value in saved.items():
        if key.startswith(("task.model.", "task.loss.", "task.postprocess.", "task.metric.", "task.optimizer.")):
            continue  # copies of the top-level nodes
        key = legacy_key(key)
        if key.endswith("._partial_"):
            continue  # the backbone became a partial: how it is built, not a setting
        upgraded.setdefault(key, value)
    return upgraded, True


def _group_choices() -> dict[str, str]:
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    groups = ("backbone", "neck", "head", "distill_mode", "data", "optim", "finetune", "experiment")
    return {g: str(choices.get(g)) for g in groups if g in choices}


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Train; return the monitored metric (what a sweeper optimises). In a `--multirun` the job's MLflow run
    becomes a child of the sweep's parent run."""
    check_types(cfg)
    parent_run_id = join_sweep(cfg)
    several_ranks = int(cfg.trainer.devices) * int(cfg.trainer.get("nnodes", 1)) > 1
    # Hydra runs here only; the ranks read the resolved config this driver saves (ocrdet.cli.launch)
    if several_ranks and not is_worker():
        with run_dir_lock(cfg.paths.output_dir):
            metrics = launch(cfg)
    else:
        metrics = run_train(cfg)
    checkpoint = cfg.callbacks.get("model_checkpoint") if cfg.get("callbacks") else None
    monitor = checkpoint.get("monitor") if checkpoint else None
    if parent_run_id is not None:
        mode = checkpoint.get("mode", "max") if checkpoint else "max"
        close_parent_run(cfg.logger.mlflow.tracking_uri, parent_run_id, monitor, mode)
    return metrics.get(monitor) if monitor else None


if __name__ == "__main__":
    main()
