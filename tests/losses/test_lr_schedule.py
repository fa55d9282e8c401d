"""The constant schedule (PaddleOCR's Const): linear warmup, then the lr held."""
from __future__ import annotations

import pytest

from ocrdet.engine.optim import warmup_cosine_schedule


def lrs(scheduler, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        values.append(scheduler.get_lr())
        scheduler.step()
    return values


def test_constant_schedule_warms_up_then_holds() -> None:
    assert lrs(warmup_cosine_schedule(1e-3, 4, 40, 0.0, "constant"), 40) == [1e-3] * 40
    warm = lrs(warmup_cosine_schedule(1e-3, 4, 40, 1.0, "constant"), 8)
    assert warm == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3], abs=1e-12)


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="schedule='step'"):
        warmup_cosine_schedule(1e-3, 4, 40, 0.0, "step")
