"""The Trainer calls the hooks it has in Lightning's documented order, for a fit with validation and for a resume.

EXPECTED_FIT is Lightning's "Hooks" pseudo-code (LightningModule docs, section "Hooks": `fit()`, `fit_loop()`,
`val_loop()`; https://lightning.ai/docs/pytorch/stable/common/lightning_module.html#hooks) kept to the hooks we
have: no prepare_data/configure_model/teardown, batch transfer, zero_grad or gradient-clipping hooks, and
`on_validation_model_eval/train` are our `module.eval()/train()`. Details the pseudo-code leaves open follow
Lightning's loops: the sanity check runs between `on_fit_start` and `on_train_start`, the epoch-end validation
before `on_train_epoch_end`, the checkpoint callback saves after the module's `on_train_epoch_end` (a "monitoring
callback"), and a resume hands the checkpoint to `on_load_checkpoint` after `setup` and before
`configure_optimizers` (`Trainer._run`: `_restore_modules_and_callbacks` precedes `strategy.setup`). Per hook,
callbacks are called before the module ("Hooks in PyTorch Lightning": callbacks, then the LightningModule).
"""
from __future__ import annotations

from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.callbacks.model_checkpoint import ModelCheckpoint
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyTask, loader

TRAIN_BATCH = [
    "on_train_batch_start", "training_step", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
    "on_train_batch_end",
]
VALIDATION = [
    "on_validation_start", "on_validation_epoch_start",
    "on_validation_batch_start", "validation_step", "on_validation_batch_end",
    "on_validation_epoch_end", "on_validation_end",
]
EXPECTED_FIT = [
    "setup", "configure_optimizers", "on_fit_start",
    *VALIDATION,  # the sanity check (num_sanity_val_steps=1)
    "on_train_start",
    "on_train_epoch_start", *TRAIN_BATCH, *TRAIN_BATCH, *VALIDATION, "on_train_epoch_end", "on_save_checkpoint",
    "on_train_end", "on_fit_end",
]
EXPECTED_RESUME = [
    "setup", "on_load_checkpoint", "configure_optimizers", "on_fit_start", "on_train_start",
    "on_train_epoch_start", *TRAIN_BATCH, *TRAIN_BATCH, *VALIDATION, "on_train_epoch_end", "on_save_checkpoint",
    "on_train_end", "on_fit_end",
]
MODULE_HOOKS = sorted(set(EXPECTED_FIT + EXPECTED_RESUME))
STEPS = {"training_step", "validation_step", "configure_optimizers"}  # the module's own, no callback twin


def recording_task(calls: list[tuple[str, str]]) -> ToyTask:
    """A ToyTask whose every hook (and step) records ("module", name) before doing its work."""

    def wrap(name):
        original = getattr(task, name)

        def hook(*args, **kwargs):
            calls.append(("module", name))
            return original(*args, **kwargs)

        return hook

    task = ToyTask()
    for name in MODULE_HOOKS:
        setattr(task, name, wrap(name))
    return task


class Recorder(Callback):
    def __init__(self, calls: list[tuple[str, str]]) -> None:
        self.calls = calls

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name in MODULE_HOOKS and name not in STEPS:
            def hook(*args, **kwargs):
                self.calls.append(("callback", name))
                return value(*args, **kwargs)

            return hook
        return value


def fit(tmp_path, calls, max_epochs: int, ckpt_path: str | None = None, sanity: int = 0) -> Trainer:
    trainer = Trainer(
        accelerator="cpu", seed=3, max_epochs=max_epochs, limit_train_batches=2, limit_val_batches=1,
        num_sanity_val_steps=sanity,
        callbacks=[Recorder(calls), ModelCheckpoint(str(tmp_path / "ckpt"), monitor=None, save_last=True)],
    )
    trainer.fit(recording_task(calls), loader(), loader(shuffle=False), ckpt_path=ckpt_path)
    return trainer


def check_callbacks_come_first(calls: list[tuple[str, str]]) -> None:
    for i, (who, name) in enumerate(calls):
        if who == "module" and name not in STEPS:
            assert calls[i - 1] == ("callback", name), f"module {name} at {i} not preceded by the callbacks' {name}"


def test_a_fit_with_validation_calls_the_hooks_in_lightnings_order(tmp_path):
    calls: list[tuple[str, str]] = []
    fit(tmp_path, calls, max_epochs=1, sanity=1)
    assert [name for who, name in calls if who == "module"] == EXPECTED_FIT
    check_callbacks_come_first(calls)


def test_a_resume_calls_the_hooks_in_lightnings_order(tmp_path):
    fit(tmp_path, [], max_epochs=1)
    calls: list[tuple[str, str]] = []
    trainer = fit(tmp_path, calls, max_epochs=2, ckpt_path=str(tmp_path / "ckpt" / "last"))
    assert trainer.current_epoch == 2 and trainer.global_step == 4
    assert [name for who, name in calls if who == "module"] == EXPECTED_RESUME
    check_callbacks_come_first(calls)
