"""Short real runs a hostile-but-realistic user tried (issue #13): each must end with a clear outcome and files a
careful user can rely on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrdet.cli.config import compose_config
from ocrdet.engine import checkpoint_io
from ocrdet.cli.train import run_train
from tests.integration.conftest import TINY

QUIET = [*TINY, "logger=none"]


def train(tmp_path: Path, overrides: list[str], run: str = "run") -> dict[str, float]:
    return run_train(compose_config("train", [*QUIET, *overrides], output_dir=tmp_path / run))


def test_a_diverging_lr_never_saves_non_finite_weights(tmp_path):
    with pytest.raises(FloatingPointError, match=r"5 non-finite steps in a row .*the update left \d+ of \d+ tensors"):
        train(tmp_path, ["trainer.max_epochs=3", "optim.lr=1e9", "optim.warmup_epochs=0"])
    for prefix in ("latest", "best_accuracy"):
        params = tmp_path / "run" / "checkpoints" / f"{prefix}.pdparams"
        state = checkpoint_io.load_params(params)
        assert [k for k, v in state.items() if not np.isfinite(v.numpy()).all()] == []
    assert checkpoint_io.read_states(tmp_path / "run" / "checkpoints" / "latest.pdparams")["loops"]["nonfinite_steps"] == 5


def test_a_resume_with_a_changed_config_is_refused_naming_the_keys(tmp_path):
    train(tmp_path, [], "first")
    first = tmp_path / "first"
    with pytest.raises(ValueError) as error:
        train(tmp_path, [f"resume={first}", "data.batch_size=1", "optim.lr=0.01"], "second")
    assert str(error.value) == (
        f"resume={first}/checkpoints/latest.pdparams: the config differs from the checkpoint's in data.batch_size: "
        "2 -> 1, optim.lr: 0.002 -> 0.01. A resume continues the same run (its LR schedule, data and model); start a "
        "new run, or accept the change with resume_allow_changes=[data.batch_size,optim.lr]"
    )
    assert not (tmp_path / "second" / "checkpoints").exists()
    # consent given: the run continues (here for one more epoch)
    train(tmp_path, [f"resume={first}", "trainer.max_epochs=2", "resume_allow_changes=[trainer.max_epochs]"], "third")
    states = checkpoint_io.read_states(tmp_path / "third" / "checkpoints" / "latest.pdparams")
    assert states["loops"]["epoch"] == 2


def test_a_frozen_teacher_without_weights_is_a_warning(tmp_path, caplog):
    import logging

    import paddle
    from ocrdet.models.distillation import DistillationModel
    from ocrdet.models.finetune import Finetune
    from ocrdet.cli.train import warn_untrained_frozen

    def model(pretrained=None):
        return DistillationModel({"Student": paddle.nn.Linear(2, 2), "Teacher": paddle.nn.Linear(2, 2)},
                                 frozen=["Teacher"], pretrained=pretrained)

    with caplog.at_level(logging.WARNING):
        warn_untrained_frozen(model())
    assert "sub-model Teacher is frozen but no weights were loaded into it" in caplog.text
    caplog.clear()
    teacher = tmp_path / "teacher.pdparams"
    paddle.save(paddle.nn.Linear(2, 2).state_dict(), str(teacher))
    with caplog.at_level(logging.WARNING):
        warn_untrained_frozen(model({"Teacher": str(teacher)}))  # model.members.teacher.pretrained
        whole = model()
        paddle.save(whole.state_dict(), str(tmp_path / "cml.pdparams"))
        warn_untrained_frozen(whole, Finetune(str(tmp_path / "cml.pdparams")).apply(whole))  # finetune=cml_checkpoint
    assert caplog.text == ""


def test_finetuning_that_loads_few_tensors_is_a_warning(tmp_path, caplog):
    import logging

    import paddle
    from ocrdet.models.finetune import Finetune

    model = paddle.nn.Sequential(paddle.nn.Linear(2, 2), paddle.nn.Linear(2, 2))
    paddle.save({"0.weight": model[0].weight, "0.bias": model[0].bias}, str(tmp_path / "part.pdparams"))
    with caplog.at_level(logging.INFO):
        Finetune(str(tmp_path / "part.pdparams")).apply(model)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"finetune weights {tmp_path / 'part.pdparams'}: 2 matched, 2 missing, 0 unexpected, 0 shape mismatches",
        "not loaded (kept at init): 1.weight, 1.bias",
    ]


def test_a_second_run_in_a_held_run_dir_is_refused(tmp_path):
    import subprocess
    import sys

    from ocrdet.utils.run_lock import RunDirLocked, run_dir_lock

    run_dir = tmp_path / "run"
    # another process holds the run dir (as a live ocrdet-train would) until we close its stdin
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ocrdet.utils.run_lock import run_dir_lock\n"
         f"with run_dir_lock({str(run_dir)!r}):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirLocked, match=rf"{run_dir} is in use by another run \(pid {holder.pid}, lock "):
            train(tmp_path, [])
        assert not (run_dir / "checkpoints").exists()
    finally:
        holder.kill()  # SIGKILL: no handler runs, yet the kernel drops the lock with the process
        holder.wait()
    with run_dir_lock(run_dir), run_dir_lock(run_dir):  # free again, no stale lock; nested in one process is fine
        pass
