"""One generic training loop: epochs or steps, gradient accumulation, validation scheduling, callbacks, loggers,
precision, checkpoints and exact resume. Argument names follow Lightning's Trainer where one exists."""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import paddle

from ocrdet.engine import checkpoint_io, distributed
from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.finite_guard import StepGuard, count_nonfinite
from ocrdet.engine.loggers.base import Logger
from ocrdet.engine.module import TrainModule
from ocrdet.engine.precision import PrecisionPlugin

log = logging.getLogger(__name__)


def limit_batches(total: int, limit: int | float | None) -> int:
    """Lightning's limit_*_batches: None = all, an int = that many batches, a float in (0, 1] = that fraction."""
    if limit is None:
        return total
    if isinstance(limit, float) and limit <= 1.0:
        return max(1, int(total * limit)) if total else 0
    return min(total, int(limit))


class Trainer:
    def __init__(
        self,
        max_epochs: int | None = None,
        max_steps: int = -1,
        accelerator: str = "auto",
        devices: int = 1,
        nnodes: int = 1,
        master: str | None = None,
        precision: str = "32",
        amp_level: str = "O1",
        accumulate_grad_batches: int = 1,
        check_val_every_n_epoch: int | None = 1,
        val_check_interval: int | float | None = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        log_every_n_steps: int = 10,
        num_sanity_val_steps: int = 0,
        default_root_dir: str = "outputs",
        callbacks: Sequence[Callback] | Mapping[str, Callback] | None = None,
        logger: Logger | Sequence[Logger] | Mapping[str, Logger] | None = None,
        seed: int | None = 1024,
        cpu_onednn: bool = True,
        max_consecutive_nonfinite: int = 5,
        max_bad_fraction: float = 0.05,
        cpu_threads: int | None = None,
        sync_batchnorm: bool = False,
        compile: bool = False,
    ) -> None:
        if max_epochs is None and max_steps <= 0:
            raise ValueError("set trainer.max_epochs or trainer.max_steps")
        if accumulate_grad_batches < 1:
            raise ValueError(f"trainer.accumulate_grad_batches must be >= 1, got {accumulate_grad_batches}")
        _check_val_check_interval(val_check_interval)
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        # devices/nnodes/master are read by ocrdet.cli.launch before the ranks start; here they are a consistency check
        self.devices, self.nnodes, self.master = devices, nnodes, master
        self.accumulate_grad_batches = accumulate_grad_batches
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.val_check_interval = val_check_interval
        self.limit_train_batches = limit_train_batches
        self.limit_val_batches = limit_val_batches
        self.log_every_n_steps = max(1, log_every_n_steps)
        self.num_sanity_val_steps = num_sanity_val_steps
        self.default_root_dir = Path(default_root_dir)
        self.callbacks: list[Callback] = list(
            (callbacks.values() if isinstance(callbacks, Mapping) else callbacks or [])
        )
        self.callbacks = [c for c in self.callbacks if c is not None]
        if isinstance(logger, Mapping):
            logger = list(logger.values())
        self.loggers: list[Logger] = [x for x in ([logger] if isinstance(logger, Logger) else logger or []) if x]
        self.seed = seed
        self.sync_batchnorm = sync_batchnorm
        self.compile = compile
        self._select_device(accelerator, cpu_onednn)
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) // max(1, devices * nnodes))
        if self.accelerator == "cpu":
            _set_cpu_threads(self.cpu_threads)
        self.precision_plugin = PrecisionPlugin(precision, amp_level)

        self.current_epoch = 0
        self.global_step = 0  # optimizer steps taken
        self.batch_idx = 0  # batches seen in the current epoch
        self.num_training_batches = 0
        self.num_val_batches = 0
        self.callback_metrics: dict[str, float] = {}
        self.should_stop = False
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        self.max_bad_fraction = max_bad_fraction
        self.epoch_samples = 0  # samples trained this epoch (this rank)
        self.epoch_skipped = 0  # draws the datasets dropped to produce them (bad images/labels)
        self.nonfinite_steps = 0
        self._consecutive_nonfinite = 0
        self._signal_received: int | None = None
        self.optimizer: paddle.optimizer.Optimizer | None = None
        self.lr_scheduler: paddle.optimizer.lr.LRScheduler | None = None
        self.train_dataloader: Any = None
        self.hyper_parameters: dict[str, Any] = {}
        self.module: TrainModule | None = None

    # ---- environment -------------------------------------------------------------------------------------------
    def _select_device(self, accelerator: str, cpu_onednn: bool) -> None:
        if accelerator == "auto":
            accelerator = "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() else "cpu"
        if accelerator not in ("cpu", "gpu"):
            raise ValueError(f"trainer.accelerator={accelerator!r}: choose auto, cpu or gpu")
        if accelerator == "gpu":
            paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().device_id}")
        else:
            paddle.set_device("cpu")
            # Stack notes measured ~1.25x (MobileNetV3) to ~1.7x (ResNet50) from it; with Paddle 3.3.1 here a dygraph
            # step shows no oneDNN primitive (ONEDNN_VERBOSE) and no difference (bench_train 0.98-1.04x).
            paddle.set_flags({"FLAGS_use_mkldnn": bool(cpu_onednn)})
        self.accelerator = accelerator

    @property
    def world_size(self) -> int:
        return paddle.distributed.get_world_size()

    @property
    def global_rank(self) -> int:
        return paddle.distributed.get_rank()

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch (the unit of PaddleOCR's warmup and T_max)."""
        return math.ceil(self.num_training_batches / self.accumulate_grad_batches)

    @property
    def estimated_stepping_batches(self) -> int:
        """Total optimizer steps this fit will take."""
        by_epochs = self.steps_per_epoch * self.max_epochs if self.max_epochs is not None else None
        if self.max_steps > 0:
            return min(self.max_steps, by_epochs) if by_epochs else self.max_steps
        return by_epochs or 0

    @property
    def checkpoint_callback(self) -> Callback | None:
        from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint

        return next((c for c in self.callbacks if isinstance(c, ModelCheckpoint)), None)

    def _call(self, hook: str, *args: Any) -> None:
        module_hook = getattr(self.module, hook, None)
        if module_hook is not None and hook not in ("on_validation_end", "on_validation_start"):
            module_hook()
        for callback in self.callbacks:
            getattr(callback, hook)(self, self.module, *args)

    def _log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if self.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(metrics, step)

    # ---- fit ---------------------------------------------------------------------------------------------------
    def fit(
        self,
        module: TrainModule,
        train_dataloader: Iterable,
        val_dataloader: Iterable | None = None,
        ckpt_path: str | None = None,
    ) -> dict[str, float]:
        distributed.init_process_group()
        if self.devices * self.nnodes != self.world_size:
            raise ValueError(
                f"trainer.devices={self.devices} x trainer.nnodes={self.nnodes} but {self.world_size} process(es) "
                "are running: start several devices with `ocrdet-train trainer.devices=N`, which launches them"
            )
        if self.seed is not None:
            seed_everything(self.seed, self.global_rank)
        self.module, module.trainer = module, self
        self.train_dataloader = train_dataloader
        self.num_training_batches = limit_batches(len(train_dataloader), self.limit_train_batches)
        if self.num_training_batches == 0:
            raise ValueError("the training dataloader yields no batch: check the dataset and trainer.limit_train_batches")
        module.setup("fit")
        self._check_monitor(val_dataloader)
        if self.sync_batchnorm:
            module.model = distributed.sync_batchnorm(module.model, self.world_size, self.accelerator)
        opt_cfg = module.configure_optimizers()
        self.optimizer = opt_cfg["optimizer"]
        self.lr_scheduler = (opt_cfg.get("lr_scheduler") or {}).get("scheduler")
        module.model, self.optimizer = self.precision_plugin.setup(module.model, self.optimizer)
        if self.compile:
            if self.world_size > 1:  # the DataParallel wrapper averages gradients in dygraph hooks only
                log.info("trainer.compile applies to one process: the %d ranks train eagerly", self.world_size)
            else:
                module.compile_training_step()
        self._guard = StepGuard(module.model, self.optimizer)
        if self.world_size > 1:
            # gradients are averaged over ranks in backward; the module keeps the bare model for eval and checkpoints
            module.distributed_model = paddle.DataParallel(module.model)
        resume_batches = 0
        if ckpt_path:
            resume_batches = self._restore(ckpt_path)
        status = "FINISHED"
        previous_handlers = _install_signal_handlers(self._on_signal)
        try:
            self._call("on_fit_start")
            if self.num_sanity_val_steps and val_dataloader is not None and not ckpt_path:
                self._run_validation(val_dataloader)
            self._fit_loop(train_dataloader, val_dataloader, resume_batches)
            self._call("on_fit_end")
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            for callback in self.callbacks:
                callback.on_exception(self, module, exc)
            raise
        finally:
            _restore_signal_handlers(previous_handlers)
            if self.is_global_zero:
                for logger in self.loggers:
                    logger.finalize(status)
        return dict(self.callback_metrics)

    def _val_every_steps(self) -> int:
        """trainer.val_check_interval in optimizer steps: an int is a step count, a float in (0, 1] a fraction of an
        epoch (Lightning's meaning)."""
        interval = self.val_check_interval
        if isinstance(interval, float):
            return max(1, int(interval * self.steps_per_epoch))
        return int(interval)

    def _check_monitor(self, val_dataloader: Iterable | None) -> None:
        """A monitor naming no metric the task logs would silently never save a best checkpoint."""
        callback = self.checkpoint_callback
        if callback is None or callback.monitor is None:
            return
        names = self.module.validation_metric_names()
        if names is not None and callback.monitor not in names:
            raise ValueError(
                f"callbacks.model_checkpoint.monitor={callback.monitor!r} is not a metric this task logs; choose one "
                f"of {names}"
            )
        if val_dataloader is None:
            log.warning("no validation data: %s is never computed, so no best_accuracy checkpoint is saved",
                        callback.monitor)

    def _epoch_done(self) -> bool:
        return self.max_epochs is not None and self.current_epoch >= self.max_epochs

    def _steps_done(self) -> bool:
        return 0 < self.max_steps <= self.global_step

    def _fit_loop(self, train_dataloader: Iterable, val_dataloader: Iterable | None, resume_batches: int) -> None:
        module = self.module
        while not (self._epoch_done() or self._steps_done() or self.should_stop):
            _set_epoch(train_dataloader, self.current_epoch)
            module.train()
            self._call("on_train_epoch_start")
            self.epoch_samples = self.epoch_skipped = 0
            accumulated = finite_in_step = 0
            # mid-epoch resume: the sampler skips the batches trained before the stop without loading them, so the
            # augmentation streams restored from the checkpoint are not consumed by them
            skipped_by_sampler = _skip_batches(train_dataloader, resume_batches)
            start = resume_batches if skipped_by_sampler else 0
            for batch_idx, batch in enumerate(train_dataloader, start=start):
                if batch_idx >= self.num_training_batches:
                    break
                if batch_idx < resume_batches:  # a loader without a skipping sampler: load and drop
                    continue
                self.batch_idx = batch_idx
                self._count_bad_samples(batch)
                if accumulated == 0:  # what this optimizer step may break, to undo it
                    self._guard.snapshot()
                outputs = self._training_step(batch, batch_idx)
                accumulated += 1
                finite_in_step += "train/nonfinite_steps" not in outputs
                last_batch = batch_idx + 1 == self.num_training_batches
                stepped = False
                if accumulated == self.accumulate_grad_batches or last_batch:
                    if finite_in_step:
                        stepped = self._optimizer_step(batch_idx)
                    else:  # every micro-batch of this step was skipped: no update, no schedule step
                        self.optimizer.clear_grad()
                    accumulated = finite_in_step = 0
                self.batch_idx = batch_idx + 1
                for callback in self.callbacks:
                    callback.on_train_batch_end(self, module, outputs, batch, batch_idx)
                if stepped and self.global_step % self.log_every_n_steps == 0:
                    self._log_metrics(outputs, self.global_step)
                if stepped and self.val_check_interval and self.global_step % self._val_every_steps() == 0:
                    if val_dataloader is not None:
                        self._run_validation(val_dataloader)
                        module.train()
                if accumulated == 0 and self._signal_received is not None:
                    self._save_on_signal()
                if self._steps_done() or self.should_stop:
                    break
            resume_batches = 0
            _skip_batches(train_dataloader, 0)
            self._report_bad_samples()
            epoch_complete = self.batch_idx >= self.num_training_batches
            if epoch_complete:
                self.current_epoch += 1
                self.batch_idx = 0
            if (
                epoch_complete
                and val_dataloader is not None
                and self.check_val_every_n_epoch
                and self.current_epoch % self.check_val_every_n_epoch == 0
                and not self.val_check_interval
            ):
                self._run_validation(val_dataloader)
            self._call("on_train_epoch_end")
            if not epoch_complete:
                break

    def _training_step(self, batch: Any, batch_idx: int) -> dict[str, float]:
        module = self.module
        with self.precision_plugin.autocast():
            result = module.training_step(batch, batch_idx)
        loss = result["loss"]
        if not bool(paddle.isfinite(loss).all()):
            self._skip_nonfinite(f"non-finite loss {loss.item()}", batch_idx)
            return {"train/nonfinite_steps": float(self.nonfinite_steps)}
        module.on_before_backward(loss)
        scaled = loss / self.accumulate_grad_batches if self.accumulate_grad_batches > 1 else loss
        self.precision_plugin.backward(scaled)
        module.on_after_backward()
        outputs = {name: value for name, (value, _) in module.pop_logged().items()}
        outputs.setdefault("train/loss", loss.item())
        outputs["train/lr"] = self.optimizer.get_lr()
        return outputs

    def _skip_nonfinite(self, what: str, batch_idx: int) -> None:
        """A NaN/Inf loss (no backward) or an update that left NaN/Inf in the weights, BN statistics or optimizer
        state: the state from before the step is put back and the step counted; too many in a row stop the run after
        saving that last good state."""
        self._guard.restore()
        self.module.pop_logged()
        self.nonfinite_steps += 1
        self._consecutive_nonfinite += 1
        log.warning(
            "%s at epoch %d batch %d: step undone (%d so far, %d in a row)",
            what, self.current_epoch, batch_idx, self.nonfinite_steps, self._consecutive_nonfinite,
        )
        self._log_metrics({"train/nonfinite_steps": float(self.nonfinite_steps)}, self.global_step)
        if self._consecutive_nonfinite >= self.max_consecutive_nonfinite:
            path = self.save_checkpoint(self._checkpoint_dir() / "latest")
            raise FloatingPointError(
                f"{self._consecutive_nonfinite} non-finite steps in a row (epoch {self.current_epoch}, batch "
                f"{batch_idx}; last: {what}): stopping. The last good state is saved at {path}; lower optim.lr or "
                "check the data"
            )

    def _count_bad_samples(self, batch: Any) -> None:
        """Datasets report in each batch how many draws they dropped (they run in worker processes, whose own
        counters the main process cannot see); too large a share stops the run."""
        if not isinstance(batch, dict) or "image" not in batch:
            return
        self.epoch_samples += int(batch["image"].shape[0])
        if "skipped" in batch:
            self.epoch_skipped += int(np.asarray(batch["skipped"]).sum())
        drawn = self.epoch_samples + self.epoch_skipped
        if self.epoch_skipped and self.epoch_skipped / drawn > self.max_bad_fraction and drawn >= 20:
            raise RuntimeError(
                f"{self.epoch_skipped} of {drawn} samples drawn this epoch were unusable (> trainer.max_bad_fraction="
                f"{self.max_bad_fraction}); the log names each file and reason"
            )

    def _report_bad_samples(self) -> None:
        if self.epoch_skipped:
            log.warning("epoch %d: %d bad samples skipped (reasons above)", self.current_epoch, self.epoch_skipped)
        self._log_metrics(
            {"train/skipped_samples": float(self.epoch_skipped), "train/nonfinite_steps": float(self.nonfinite_steps)},
            self.global_step,
        )

    def _checkpoint_dir(self) -> Path:
        callback = self.checkpoint_callback
        return callback.dirpath if callback is not None else self.default_root_dir / "checkpoints"

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("received %s: saving a resumable checkpoint at the next step boundary", signal.Signals(signum).name)
        self._signal_received = signum

    def _save_on_signal(self) -> None:
        path = self.save_checkpoint(self._checkpoint_dir() / "latest")
        log.warning("saved %s (epoch %d, batch %d); resume with resume=%s", path, self.current_epoch,
                    self.batch_idx, self._checkpoint_dir() / "latest")
        # loader workers (ours) may be blocked in a read or deferring the group's SIGTERM: end them now. Paddle's
        # SIGCHLD handler would report their end as a crash after the save: this process is exiting, so restore the
        # default first.
        children = multiprocessing.active_children()
        if children and hasattr(signal, "SIGCHLD"):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for child in children:
            child.kill()
        raise SystemExit(128 + self._signal_received)

    def _optimizer_step(self, batch_idx: int) -> bool:
        """Step; False when the update was undone for leaving non-finite values (no schedule step either)."""
        self.precision_plugin.unscale(self.optimizer)
        self.module.on_before_optimizer_step(self.optimizer)
        self.precision_plugin.step(self.optimizer)
        self.optimizer.clear_grad()
        bad, total = self._guard.nonfinite()
        if bad:
            self._skip_nonfinite(f"the update left {bad} of {total} tensors non-finite", batch_idx)
            return False
        self._consecutive_nonfinite = 0
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        self.global_step += 1
        return True

    # ---- validation --------------------------------------------------------------------------------------------
    @paddle.no_grad()
    def _run_validation(self, dataloader: Iterable) -> dict[str, float]:
        module = self.module
        distributed.broadcast_running_stats(module.model)
        module.eval()
        self.num_val_batches = limit_batches(len(dataloader), self.limit_val_batches)
        for callback in self.callbacks:
            callback.on_validation_start(self, module)
        module.on_validation_epoch_start()
        for batch_idx, batch in enumerate(dataloader):
            if batch_idx >= self.num_val_batches:
                break
            with self.precision_plugin.autocast():
                module.validation_step(batch, batch_idx)
            for callback in self.callbacks:
                callback.on_validation_batch_end(self, module, batch_idx)
        metrics = module.on_validation_epoch_end()
        self.callback_metrics.update(metrics)
        self._log_metrics(metrics, self.global_step)
        for callback in self.callbacks:
            callback.on_validation_end(self, module)
        return metrics

    def validate(self, module: TrainModule, dataloader: Iterable) -> dict[str, float]:
        """Evaluate `module` once on `dataloader`; return its metrics."""
        self.module, module.trainer = module, self
        module.setup("validate")
        try:
            return self._run_validation(dataloader)
        finally:
            if self.is_global_zero:
                for logger in self.loggers:
                    logger.finalize("FINISHED")

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def save_checkpoint(self, prefix: str | Path, best_model_dict: dict[str, Any] | None = None) -> Path | None:
        """Write `<prefix>.pdparams/.pdopt/.states` (rank 0 only); `.states` holds everything a resume needs."""
        if not self.is_global_zero:
            return None
        bad, total = count_nonfinite(self.module.model.state_dict().values())
        if bad:  # a checkpoint is for resuming or deploying: NaN weights would poison both
            raise FloatingPointError(f"refusing to save {prefix}: {bad} of {total} model tensors are non-finite")
        states: dict[str, Any] = {
            # PaddleOCR's own keys, so its tools can read our files
            "best_model_dict": dict(best_model_dict or {}),
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            # what an exact resume needs
            "loops": {
                "epoch": self.current_epoch, "batch_idx": self.batch_idx, "global_step": self.global_step,
                "nonfinite_steps": self.nonfinite_steps,
            },
            "callbacks": {c.state_key: c.state_dict() for c in self.callbacks},
            "loggers": [logger.state_dict() for logger in self.loggers],
            "amp_scaler": self.precision_plugin.state_dict(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state()},
            "hyper_parameters": self.hyper_parameters,
            "ocrdet_version": _version(),
            # Paddle keys optimizer state by generated tensor names, which differ between processes and model
            # instances; this map lets a resume translate them to the new model's names.
            "param_names": {key: p.name for key, p in self.module.model.named_parameters()},
        }
        self.module.on_save_checkpoint(states)
        optimizer_state = self.optimizer.state_dict() if self.optimizer is not None else None
        return checkpoint_io.save_checkpoint(prefix, self.module.model.state_dict(), optimizer_state, states)

    def _restore(self, ckpt_path: str) -> int:
        # a set torn by a kill between its renames falls back to the one it was replacing
        ckpt_path = str(checkpoint_io.resolve_resume(ckpt_path, self.default_root_dir))
        model_state, optimizer_state, states = checkpoint_io.load_resume(ckpt_path)
        missing, unexpected = self.module.model.set_state_dict(model_state) or ([], [])
        if missing or unexpected:
            raise ValueError(f"{ckpt_path}: checkpoint does not fit the model (missing {missing}, unexpected {unexpected})")
        if "param_names" in states:
            current = {key: p.name for key, p in self.module.model.named_parameters()}
            optimizer_state = rename_optimizer_state(optimizer_state, states["param_names"], current)
        self.optimizer.set_state_dict(optimizer_state)  # restores the LR scheduler too (its "LR_Scheduler" entry)
        loops = states["loops"]
        self.current_epoch, self.global_step = loops["epoch"], loops["global_step"]
        self.batch_idx = loops["batch_idx"]
        self.nonfinite_steps = loops.get("nonfinite_steps", 0)
        self.precision_plugin.load_state_dict(states.get("amp_scaler", {}))
        for callback in self.callbacks:
            if callback.state_key in states.get("callbacks", {}):
                callback.load_state_dict(states["callbacks"][callback.state_key])
        if "rng" in states:
            random.setstate(states["rng"]["python"])
            np.random.set_state(states["rng"]["numpy"])
        self.module.on_load_checkpoint(states)
        if self.max_epochs is not None and self.current_epoch > self.max_epochs:
            raise ValueError(f"{ckpt_path}: already trained {self.current_epoch} epochs > trainer.max_epochs={self.max_epochs}")
        log.info("resumed from %s at epoch %d, step %d", ckpt_path, self.current_epoch, self.global_step)
        return self.batch_idx


def rename_optimizer_state(
    state: dict[str, Any], saved: Mapping[str, str], current: Mapping[str, str]
) -> dict[str, Any]:
    """Rewrite accumulator keys `<saved tensor name>_<acc>` to `<current tensor name>_<acc>` via structured keys."""
    old_to_new = {saved[k]: current[k] for k in saved if k in current}
    # longest first so that "conv_1.w_0" never captures "conv_1.w_0_1"-style names
    names = sorted(old_to_new, key=len, reverse=True)

    def rename(key: str) -> str:
        for old in names:
            if key == old or key.startswith(old + "_"):
                return old_to_new[old] + key[len(old) :]
        return key

    renamed: dict[str, Any] = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            renamed[key] = {rename(k): v for k, v in value.items()}
        else:
            renamed[rename(key) if isinstance(key, str) else key] = value
    return renamed


def _check_val_check_interval(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"trainer.val_check_interval={value!r}: an int (optimizer steps) or a float in (0, 1]")
    if isinstance(value, int) and value < 1:
        raise ValueError(f"trainer.val_check_interval={value}: a step count must be >= 1")
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        raise ValueError(
            f"trainer.val_check_interval={value}: a float is a fraction of an epoch and must be in (0, 1]; use an int "
            "for a number of optimizer steps"
        )


def _set_cpu_threads(threads: int) -> None:
    """Paddle sets OMP_NUM_THREADS=1 when it is unset, leaving all but one core idle on a CPU run."""
    core = getattr(getattr(paddle, "base", None), "core", None) or getattr(getattr(paddle, "fluid", None), "core", None)
    if core is not None and hasattr(core, "set_num_threads"):
        core.set_num_threads(int(threads))


def _install_signal_handlers(handler: Any) -> dict[int, Any]:
    """SIGTERM (cluster pre-emption) and SIGINT save a resumable checkpoint instead of losing the run."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _skip_batches(dataloader: Any, count: int) -> bool:
    """Ask the loader's batch sampler to skip `count` batches of its next epoch; False if it cannot."""
    sampler = getattr(dataloader, "batch_sampler", None)
    if sampler is None or not hasattr(sampler, "skip_batches"):
        return False
    sampler.skip_batches = count
    return True


def _set_epoch(dataloader: Any, epoch: int) -> None:
    """Reseed the shuffle and the workers' augmentation streams for this epoch."""
    sampler = getattr(dataloader, "batch_sampler", None)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    worker_init = getattr(dataloader, "worker_init_fn", None)
    if worker_init is not None and hasattr(worker_init, "epoch"):
        worker_init.epoch = epoch


def seed_everything(seed: int, rank: int = 0) -> None:
    """Same model initialisation on every rank (paddle), rank-specific augmentation streams (numpy, random)."""
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    paddle.seed(seed)


def _version() -> str:
    from ocrdet import __version__

    return __version__
