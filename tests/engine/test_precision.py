"""The precision setting reaches auto_cast and the loss scaler, and the scaler state survives a resume."""
from __future__ import annotations

import contextlib

import pytest

from ocrdet.engine import precision as precision_module
from ocrdet.engine.callbacks.base import Callback
from ocrdet.engine.precision import PrecisionPlugin
from ocrdet.engine.trainer import Trainer
from tests.engine.toy import ToyCheckpoint, ToyTask, loader


class RecordingScaler:
    """Stands in for paddle.amp.GradScaler (a no-op on CPU) and counts its calls."""

    instances: list["RecordingScaler"] = []

    def __init__(self, init_loss_scaling: float, use_dynamic_loss_scaling: bool) -> None:
        self.scale_value = init_loss_scaling
        self.dynamic = use_dynamic_loss_scaling
        self.steps = 0
        self.loaded: dict | None = None
        RecordingScaler.instances.append(self)

    def scale(self, loss):
        return loss * self.scale_value

    def unscale_(self, optimizer) -> None:
        for p in optimizer._parameter_list:
            if p.grad is not None:
                p.grad.set_value(p.grad / self.scale_value)

    def step(self, optimizer) -> None:
        optimizer.step()
        self.steps += 1

    def update(self) -> None:
        self.scale_value *= 2.0  # a visible state change per step

    def state_dict(self) -> dict:
        return {"scale": self.scale_value, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.loaded = state
        self.scale_value, self.steps = state["scale"], state["steps"]


@pytest.fixture
def recorded(monkeypatch):
    calls: list[dict] = []

    @contextlib.contextmanager
    def fake_auto_cast(**kwargs):
        calls.append(kwargs)
        yield

    RecordingScaler.instances = []
    monkeypatch.setattr(precision_module.paddle.amp, "auto_cast", fake_auto_cast)
    monkeypatch.setattr(precision_module.paddle.amp, "GradScaler", RecordingScaler)
    return calls


def test_fp32_touches_neither_auto_cast_nor_scaler(recorded, tmp_path):
    trainer = Trainer(max_epochs=1, accelerator="cpu", precision="32", callbacks=[], limit_train_batches=2)
    trainer.fit(ToyTask(), loader())
    assert recorded == [] and RecordingScaler.instances == []


def test_bf16_reaches_auto_cast_with_custom_lists(recorded, caplog):
    plugin = PrecisionPlugin("bf16", "O1", custom_black_list=["pool2d"], custom_white_list=["conv2d"])
    with plugin.autocast():
        pass
    assert recorded == [{"enable": True, "custom_white_list": ["conv2d"], "custom_black_list": ["pool2d"],
                         "level": "O1", "dtype": "bfloat16"}]
    assert plugin.scaler is None  # bf16 keeps fp32's exponent range: no loss scaling
    assert "has no effect on CPU" in caplog.text


def test_custom_lists_reach_auto_cast_from_the_trainer_config(recorded):
    from hydra.utils import instantiate

    from ocrdet.cli.config import compose_config

    cfg = compose_config("train", ["trainer.precision=bf16", "trainer.amp_custom_black_list=[sigmoid]",
                                   "trainer.amp_custom_white_list=[conv2d]", "trainer.accelerator=cpu"])
    trainer = instantiate(cfg.trainer, callbacks=[], logger=None)
    with trainer.precision_plugin.autocast():
        pass
    assert recorded == [{"enable": True, "custom_white_list": ["conv2d"], "custom_black_list": ["sigmoid"],
                         "level": "O1", "dtype": "bfloat16"}]


def test_fp16_scaler_state_is_checkpointed_and_restored(recorded, tmp_path):
    class Stop(Callback):
        def on_train_epoch_end(self, trainer, module):
            trainer.should_stop = trainer.current_epoch == 1

    first = Trainer(max_epochs=2, accelerator="cpu", precision="fp16", amp_level="O2",
                    callbacks=[ToyCheckpoint(str(tmp_path / "ckpt")), Stop()])
    first.fit(ToyTask(), loader())
    assert recorded and all(c["dtype"] == "float16" and c["level"] == "O2" for c in recorded)
    assert first.precision_plugin.scaler.state_dict() == {"scale": 1024.0 * 2**4, "steps": 4}

    second = Trainer(max_epochs=2, accelerator="cpu", precision="fp16", callbacks=[ToyCheckpoint(str(tmp_path / "c2"))])
    second.fit(ToyTask(), loader(), ckpt_path=str(tmp_path / "ckpt" / "latest"))
    scaler = second.precision_plugin.scaler
    assert scaler.loaded == {"scale": 1024.0 * 2**4, "steps": 4}
    assert scaler.state_dict() == {"scale": 1024.0 * 2**8, "steps": 8}


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="trainer.precision='16'"):
        PrecisionPlugin("16")
