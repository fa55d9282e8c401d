"""One generic training loop: epochs or steps, gradient accumulation, validation scheduling, callbacks, loggers,
precision, checkpoints and exact resume. Argument names follow Lightning's Trainer where one exists.

The loop knows no task: what a batch holds, how a step trains and what validation measures belong to the
`TrainModule`; file layouts and metric names to the callbacks (`ModelCheckpoint`'s names and monitor). Policies the
Trainer applies itself live beside it: devices (`accelerator`), pre-emption signals, non-finite steps and bad data
(`callbacks/preemption.py`, `nonfinite_guard.py`, `bad_samples.py`), configured by the constructor arguments."""
from __future__ import annotations

import itertools
import logging
import math
import random
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import paddle

from ocrdet.engine import checkpoint_io, distributed
from ocrdet.engine.accelerator import (
    cpu_threads_per_rank, select_accelerator, serial_static_executor, setup_cpu_process,
)
from ocrdet.engine.kernels import load_cpu_kernels, use_cpu_kernels
from ocrdet.engine.callbacks.bad_samples import BadSampleGuard
from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.callbacks.nonfinite_guard import NonFiniteGuard, count_nonfinite
from ocrdet.engine.callbacks.preemption import Preemption
from ocrdet.engine.loaders import close_iterator
from ocrdet.engine.loggers.base import Logger
from ocrdet.engine.module import TrainModule
from ocrdet.engine.precision import PrecisionPlugin

log = logging.getLogger(__name__)
_END = object()  # what next() gives for an exhausted loader


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
        amp_custom_white_list: Sequence[str] | None = None,
        amp_custom_black_list: Sequence[str] | None = None,
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
        cpu_reuse_memory: bool = True,
        cpu_kernels: bool = True,
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
        # devices/nnodes/master are read by the launcher before the ranks start; here they are a consistency check
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
        self._synced_parameters: list[paddle.Tensor] | None = None  # set by fit: compiled steps on several ranks
        self.accelerator = select_accelerator(accelerator, cpu_onednn)
        self.cpu_threads = cpu_threads_per_rank(cpu_threads, devices * nnodes)
        if self.accelerator == "cpu":
            setup_cpu_process(self.cpu_threads, cpu_reuse_memory)
            use_cpu_kernels(cpu_kernels)
            if cpu_kernels:
                load_cpu_kernels()  # built here once per machine (~25 s), not inside the first timed step
        self.precision_plugin = PrecisionPlugin(
            precision, amp_level, custom_white_list=amp_custom_white_list, custom_black_list=amp_custom_black_list
        )
        # the Trainer's own policies: hooks like any callback's, but state in the loop's keys, not `callbacks`
        self.preemption = Preemption()
        self.nonfinite_guard = NonFiniteGuard(max_consecutive_nonfinite)
        self.bad_sample_guard = BadSampleGuard(max_bad_fraction)
        self._policies: list[Callback] = [self.preemption, self.nonfinite_guard, self.bad_sample_guard]

        self.current_epoch = 0
        self.global_step = 0  # optimizer steps taken
        self.batch_idx = 0  # batches seen in the current epoch
        self.accumulated_batches = 0  # micro-batches accumulated toward the next optimizer step
        self.num_training_batches = 0
        self.num_val_batches = 0
        self.callback_metrics: dict[str, float] = {}
        self.should_stop = False
        self.sanity_checking = False
        self.optimizer: paddle.optimizer.Optimizer | None = None
        self.lr_scheduler: paddle.optimizer.lr.LRScheduler | None = None
        self.lr_scheduler_interval = "epoch"
        self.lr_scheduler_frequency = 1
        self.train_dataloader: Any = None
        self.hyper_parameters: dict[str, Any] = {}
        self.module: TrainModule | None = None

    # ---- environment -------------------------------------------------------------------------------------------
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
    def nonfinite_steps(self) -> int:
        """Steps undone for non-finite values over the whole run."""
        return self.nonfinite_guard.nonfinite_steps

    @property
    def checkpoint_callback(self) -> ModelCheckpoint | None:
        return next((c for c in self.callbacks if isinstance(c, ModelCheckpoint)), None)

    @property
    def last_checkpoint_prefix(self) -> Path:
        """Where a save outside the checkpoint callback's schedule (a signal, a stop for NaNs) goes: its last set."""
        callback = self.checkpoint_callback
        if callback is None:
            return self.default_root_dir / "checkpoints" / "last"
        return callback.dirpath / callback.last_name

    def _call_hook(self, hook: str, *args: Any) -> Any:
        """The one hook dispatch: the Trainer's policies, the callbacks in list order, then the module (Lightning's
        order); returns the module's result. At an epoch's end the checkpoint callback comes after the module, as
        Lightning's monitoring callbacks do, so the saved set holds what the module's hook did."""
        callbacks = [*self._policies, *self.callbacks]
        after: list[Callback] = []
        if hook == "on_train_epoch_end":
            after = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        for callback in callbacks:
            getattr(callback, hook)(self, self.module, *args)
        module_hook = getattr(self.module, hook, None)
        result = module_hook(*args) if module_hook is not None else None
        for callback in after:
            getattr(callback, hook)(self, self.module, *args)
        return result

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """To every logger (global-zero rank only), at `step` (default: the optimizer steps taken)."""
        if self.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(metrics, self.global_step if step is None else step)

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
                "are running: start several devices with `trainer.devices=N`, which launches them"
            )
        if self.seed is not None:
            seed_everything(self.seed, self.global_rank)
        self.module, module.trainer = module, self
        self.train_dataloader = train_dataloader
        self.num_training_batches = limit_batches(len(train_dataloader), self.limit_train_batches)
        if self.num_training_batches == 0:
            raise ValueError("the training dataloader yields no batch: check the dataset and trainer.limit_train_batches")
        self._call_hook("setup", "fit")
        self._check_monitor(val_dataloader)
        checkpoint = self._restore_modules_and_callbacks(ckpt_path) if ckpt_path else None
        if self.sync_batchnorm:
            module.model = distributed.sync_batchnorm(module.model, self.world_size, self.accelerator)
        self._configure_optimizers()
        module.model, self.optimizer = self.precision_plugin.setup(module.model, self.optimizer)
        self._synced_parameters = None
        if self.compile:
            if self.accelerator == "cpu":
                serial_static_executor()
            module.compile_training_step()
        if self.world_size > 1 and self.compile:
            # DataParallel averages gradients in dygraph backward hooks, which a compiled backward never calls: the
            # ranks start from rank 0's weights and the Trainer averages the gradients once per optimizer step
            distributed.broadcast_parameters(module.model)
            self._synced_parameters = [p for p in module.model.parameters() if not p.stop_gradient]
        elif self.world_size > 1:
            # gradients are averaged over ranks in backward; the module keeps the bare model for eval and checkpoints
            module.distributed_model = paddle.DataParallel(module.model)
        resume_batches = self._restore_training_state(*checkpoint) if checkpoint else 0
        status = "FINISHED"
        try:
            self._call_hook("on_fit_start")
            if self.num_sanity_val_steps and val_dataloader is not None:
                self._run_sanity_check(val_dataloader)
            self._call_hook("on_train_start")
            self._fit_loop(train_dataloader, val_dataloader, resume_batches)
            self._call_hook("on_train_end")
            self._call_hook("on_fit_end")
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            self._call_hook("on_exception", exc)
            raise
        finally:
            if self.is_global_zero:
                for logger in self.loggers:
                    logger.finalize(status)
        return dict(self.callback_metrics)

    def _configure_optimizers(self) -> None:
        """Lightning's return shapes: an optimizer, or `{"optimizer", "lr_scheduler": scheduler | {"scheduler",
        "interval": "step" | "epoch" (default), "frequency": N}}`."""
        config = self.module.configure_optimizers()
        if isinstance(config, paddle.optimizer.Optimizer):
            config = {"optimizer": config}
        self.optimizer = config["optimizer"]
        scheduler = config.get("lr_scheduler") or {}
        if isinstance(scheduler, paddle.optimizer.lr.LRScheduler):
            scheduler = {"scheduler": scheduler}
        self.lr_scheduler = scheduler.get("scheduler")
        self.lr_scheduler_interval = scheduler.get("interval", "epoch")
        self.lr_scheduler_frequency = int(scheduler.get("frequency", 1))
        if self.lr_scheduler_interval not in ("step", "epoch") or self.lr_scheduler_frequency < 1:
            raise ValueError(
                f"configure_optimizers: lr_scheduler interval={self.lr_scheduler_interval!r} "
                f"frequency={self.lr_scheduler_frequency}: interval is step or epoch, frequency >= 1"
            )

    def _step_scheduler(self, interval: str, count: int) -> None:
        """Step the LR schedule when `count` (optimizer steps or epochs done) completes its frequency."""
        if self.lr_scheduler is not None and self.lr_scheduler_interval == interval:
            if count % self.lr_scheduler_frequency == 0:
                self.lr_scheduler.step()

    def _val_every_steps(self) -> int:
        """trainer.val_check_interval in optimizer steps: an int is a step count, a float in (0, 1] a fraction of an
        epoch (Lightning's meaning)."""
        interval = self.val_check_interval
        if isinstance(interval, float):
            return max(1, int(interval * self.steps_per_epoch))
        return int(interval)

    def _check_monitor(self, val_dataloader: Iterable | None) -> None:
        """A monitor naming no metric the module logs would silently never save a best checkpoint."""
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
            log.warning("no validation data: %s is never computed, so no best checkpoint is saved", callback.monitor)

    def _epoch_done(self) -> bool:
        return self.max_epochs is not None and self.current_epoch >= self.max_epochs

    def _steps_done(self) -> bool:
        return 0 < self.max_steps <= self.global_step

    def _fit_loop(self, train_dataloader: Iterable, val_dataloader: Iterable | None, resume_batches: int) -> None:
        module = self.module
        while not (self._epoch_done() or self._steps_done() or self.should_stop):
            _set_epoch(train_dataloader, self.current_epoch)
            module.train()
            self._call_hook("on_train_epoch_start")
            self.accumulated_batches = finite_in_step = 0
            # mid-epoch resume: the sampler skips the batches trained before the stop without loading them, so the
            # augmentation streams restored from the checkpoint are not consumed by them
            skipped_by_sampler = _skip_batches(train_dataloader, resume_batches)
            start = resume_batches if skipped_by_sampler else 0
            batches = iter(train_dataloader)
            try:
                for batch_idx in itertools.count(start):
                    if batch_idx >= self.num_training_batches:
                        break
                    with self.preemption.waiting_for_data():
                        batch = next(batches, _END)
                    if batch is _END:
                        break
                    with self.preemption.step_lock:  # a signal watcher saving meanwhile waits for the step's end
                        if batch_idx < resume_batches:  # a loader without a skipping sampler: load and drop
                            continue
                        self.batch_idx = batch_idx
                        self._call_hook("on_train_batch_start", batch, batch_idx)
                        outputs = self._training_step(batch, batch_idx)
                        self.accumulated_batches += 1
                        finite_in_step += outputs is not None
                        if outputs is None:  # the loss was non-finite: the step was undone, the callbacks get the count
                            outputs = self.nonfinite_guard.metrics()
                        last_batch = batch_idx + 1 == self.num_training_batches
                        stepped = False
                        if self.accumulated_batches == self.accumulate_grad_batches or last_batch:
                            if self._synced_parameters is not None:
                                finite_in_step = distributed.all_reduce_gradients(
                                    self._synced_parameters, finite_in_step)
                            if finite_in_step:
                                stepped = self._optimizer_step(batch_idx)
                            else:  # every micro-batch of this step was skipped: no update, no schedule step
                                self.optimizer.clear_grad()
                            self.accumulated_batches = finite_in_step = 0
                        self.batch_idx = batch_idx + 1
                        self._call_hook("on_train_batch_end", outputs, batch, batch_idx)
                        if stepped and self.global_step % self.log_every_n_steps == 0:
                            self.log_metrics(outputs)
                        if stepped and self.val_check_interval and self.global_step % self._val_every_steps() == 0:
                            if val_dataloader is not None:
                                self._run_validation(val_dataloader)
                                module.train()
                        if self.accumulated_batches == 0 and self.preemption.requested is not None:
                            self.preemption.save_and_exit(self)
                        if self._steps_done() or self.should_stop:
                            break
            finally:
                # the loader's workers end here, not when the next epoch's iterator replaces it (see close_iterator)
                close_iterator(batches)
                del batches
            resume_batches = 0
            _skip_batches(train_dataloader, 0)
            epoch_health = {**self.bad_sample_guard.epoch_metrics(self.current_epoch), **self.nonfinite_guard.metrics()}
            self.log_metrics(epoch_health)
            epoch_complete = self.batch_idx >= self.num_training_batches
            if epoch_complete:
                self.current_epoch += 1
                self.batch_idx = 0
                self._step_scheduler("epoch", self.current_epoch)
            if (
                epoch_complete
                and val_dataloader is not None
                and self.check_val_every_n_epoch
                and self.current_epoch % self.check_val_every_n_epoch == 0
                and not self.val_check_interval
            ):
                self._run_validation(val_dataloader)
            self._call_hook("on_train_epoch_end")
            if not epoch_complete:
                break

    def _training_step(self, batch: Any, batch_idx: int) -> dict[str, float] | None:
        """Forward and backward of one micro-batch; its logged values, or None when its loss was non-finite (then
        nothing was back-propagated and the state from before the step is back)."""
        module = self.module
        with self.precision_plugin.autocast():
            result = module.training_step(batch, batch_idx)
        loss = result["loss"]
        problem = self.nonfinite_guard.loss_problem(loss)
        if problem is not None:
            module.pop_logged()
            self.nonfinite_guard.undo(self, problem, batch_idx)
            return None
        self._call_hook("on_before_backward", loss)
        scaled = loss / self.accumulate_grad_batches if self.accumulate_grad_batches > 1 else loss
        self.precision_plugin.backward(scaled)
        self._call_hook("on_after_backward")
        outputs = {name: value for name, (value, _) in module.pop_logged().items()}
        outputs.setdefault("train/loss", loss.item())
        outputs["train/lr"] = self.optimizer.get_lr()
        return outputs

    def _optimizer_step(self, batch_idx: int) -> bool:
        """Step; False when the update was undone for leaving non-finite values (no schedule step either)."""
        self.precision_plugin.unscale(self.optimizer)
        self._call_hook("on_before_optimizer_step", self.optimizer)
        self.precision_plugin.step(self.optimizer)
        self.optimizer.clear_grad()
        problem = self.nonfinite_guard.update_problem()
        if problem is not None:
            self.nonfinite_guard.undo(self, problem, batch_idx)
            return False
        self.global_step += 1
        self._step_scheduler("step", self.global_step)
        return True

    # ---- validation --------------------------------------------------------------------------------------------
    def _run_sanity_check(self, dataloader: Iterable) -> None:
        """Lightning's sanity check: `num_sanity_val_steps` validation batches (-1: all) before training, to fail
        fast on a broken validation path; its metrics are neither logged nor judged (no best checkpoint)."""
        self.sanity_checking = True
        try:
            self._call_hook("on_sanity_check_start")
            limit = None if self.num_sanity_val_steps < 0 else self.num_sanity_val_steps
            self._run_validation(dataloader, limit)
            self._call_hook("on_sanity_check_end")
        finally:
            self.sanity_checking = False

    @paddle.no_grad()
    def _run_validation(self, dataloader: Iterable, max_batches: int | None = None) -> dict[str, float]:
        module = self.module
        distributed.broadcast_running_stats(module.model)
        module.eval()
        self.num_val_batches = limit_batches(len(dataloader), self.limit_val_batches)
        if max_batches is not None:
            self.num_val_batches = min(self.num_val_batches, max_batches)
        self._call_hook("on_validation_start")
        self._call_hook("on_validation_epoch_start")
        batches = iter(dataloader)
        try:
            for batch_idx, batch in enumerate(batches):
                if batch_idx >= self.num_val_batches:
                    break
                self._call_hook("on_validation_batch_start", batch, batch_idx)
                with self.precision_plugin.autocast():
                    module.validation_step(batch, batch_idx)
                self._call_hook("on_validation_batch_end", batch_idx)
        finally:
            close_iterator(batches)  # a limited (or sanity) validation stops before the loader's end
        metrics = self._call_hook("on_validation_epoch_end") or {}
        if not self.sanity_checking:
            self.callback_metrics.update(metrics)
            self.log_metrics(metrics)
        self._call_hook("on_validation_end")
        return metrics

    def validate(self, module: TrainModule, dataloader: Iterable) -> dict[str, float]:
        """Evaluate `module` once on `dataloader`; return its metrics."""
        self.module, module.trainer = module, self
        self._call_hook("setup", "validate")
        try:
            return self._run_validation(dataloader)
        finally:
            if self.is_global_zero:
                for logger in self.loggers:
                    logger.finalize("FINISHED")

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def save_checkpoint(self, prefix: str | Path) -> Path | None:
        """Write `<prefix>.pdparams/.pdopt/.states` (rank 0 only); `.states` holds everything a resume needs, plus
        what the callbacks' and the module's `on_save_checkpoint` add (a task's own keys)."""
        if not self.is_global_zero:
            return None
        bad, total = count_nonfinite(self.module.model.state_dict().values())
        if bad:  # a checkpoint is for resuming or deploying: NaN weights would poison both
            raise FloatingPointError(f"refusing to save {prefix}: {bad} of {total} model tensors are non-finite")
        states: dict[str, Any] = {
            "loops": {
                "epoch": self.current_epoch, "batch_idx": self.batch_idx, "global_step": self.global_step,
                "nonfinite_steps": self.nonfinite_guard.nonfinite_steps,
            },
            "callbacks": {c.state_key: c.state_dict() for c in self.callbacks},
            "loggers": [logger.state_dict() for logger in self.loggers],
            "amp_scaler": self.precision_plugin.state_dict(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state()},
            "hyper_parameters": self.hyper_parameters,
            # Paddle keys optimizer state by generated tensor names, which differ between processes and model
            # instances; this map lets a resume translate them to the new model's names.
            "param_names": {key: p.name for key, p in self.module.model.named_parameters()},
        }
        self._call_hook("on_save_checkpoint", states)
        optimizer_state = self.optimizer.state_dict() if self.optimizer is not None else None
        return checkpoint_io.save_checkpoint(prefix, self.module.model.state_dict(), optimizer_state, states)

    def _restore_modules_and_callbacks(self, ckpt_path: str) -> tuple[str, dict, dict, dict]:
        """Read a resumable set and hand its states to the hooks (Lightning's order: before configure_optimizers);
        the tensors are restored once the optimizer exists."""
        # a set torn by a kill between its renames falls back to the one it was replacing
        ckpt_path = str(checkpoint_io.resolve_resume(ckpt_path, self.default_root_dir))
        model_state, optimizer_state, states = checkpoint_io.load_resume(ckpt_path)
        self._call_hook("on_load_checkpoint", states)
        for callback in self.callbacks:
            if callback.state_key in states.get("callbacks", {}):
                callback.load_state_dict(states["callbacks"][callback.state_key])
        return ckpt_path, model_state, optimizer_state, states

    def _restore_training_state(
        self, ckpt_path: str, model_state: dict[str, Any], optimizer_state: dict[str, Any], states: dict[str, Any]
    ) -> int:
        """Weights, optimizer and schedule, loop counters, loss scaler and random streams; returns the batches of
        the current epoch already trained."""
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
        self.nonfinite_guard.nonfinite_steps = loops.get("nonfinite_steps", 0)
        self.precision_plugin.load_state_dict(states.get("amp_scaler", {}))
        if "rng" in states:
            random.setstate(states["rng"]["python"])
            np.random.set_state(states["rng"]["numpy"])
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
