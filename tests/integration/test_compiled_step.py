"""`trainer.compile=true`: the compiled step (forward + loss as one static program, its backward as another) trains
exactly as the eager step does, for the student and for CML, through the Trainer with gradient accumulation and
an exact resume.

Tolerance: the program runs the same CPU kernels as dygraph on the same inputs (oneDNN stays off), so every op's
result is the same; what may differ is the order in which the gradients of a tensor used twice are added (one float
add, 1 ulp = 6e-8 relative), which Adam (scale-free m/sqrt(v)) passes on at most at that relative size to an update
of at most lr. Losses: rtol 1e-6; weights after a few steps of lr <= 2e-3: atol 1e-6. Observed: bit-identical.
"""
from __future__ import annotations

import numpy as np
import paddle
import pytest
from hydra.utils import instantiate

from ocrdet.cli.build import build_task
from ocrdet.cli.config import compose_config
from ocrdet.data.datamodule import TrainBatchToFloat, collate_train
from ocrdet.cli.train import run_train
from tests.integration.conftest import TINY

RTOL_LOSS = 1e-6
ATOL_WEIGHTS = 1e-6


def _task_and_batches(mode: str, batches: int, tmp_path):
    cfg = compose_config("train", [*TINY, f"distill_mode={mode}", "logger=none"], output_dir=tmp_path / mode)
    data_module = instantiate(cfg.data)
    dataset = data_module.train_dataset()
    to_float = TrainBatchToFloat(data_module.batch_normalize)
    data = [
        to_float({k: paddle.to_tensor(v) for k, v in collate_train([dataset[2 * b], dataset[2 * b + 1]]).items()})
        for b in range(batches)
    ]
    return build_task(cfg, with_optimizer=False), data


def _state(model: paddle.nn.Layer) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["student", "cml"])
def test_compiled_steps_equal_eager_steps(mode, tmp_path):
    """Three Adam steps on different batches from the same weights: the same losses, weights and BN statistics."""
    paddle.seed(0)
    eager, batches = _task_and_batches(mode, 2, tmp_path)
    compiled, _ = _task_and_batches(mode, 0, tmp_path)
    compiled.model.set_state_dict(eager.model.state_dict())
    compiled.compile_training_step()
    runs = {}
    for name, task in (("eager", eager), ("compiled", compiled)):
        task.train()
        optimizer = paddle.optimizer.Adam(learning_rate=1e-3, parameters=task.trainable_parameters())
        losses = []
        for step in range(3):
            terms = task.training_step(batches[step % 2], step)
            terms["loss"].backward()
            optimizer.step()
            optimizer.clear_grad()
            # every term, not only the total: the logged terms come from the same program outputs
            losses.append({key: value.item() for key, value in terms.items()})
        runs[name] = (losses, _state(task.model))
    for compiled_terms, eager_terms in zip(runs["compiled"][0], runs["eager"][0]):
        assert compiled_terms.keys() == eager_terms.keys()
        for key, value in eager_terms.items():
            np.testing.assert_allclose(compiled_terms[key], value, rtol=RTOL_LOSS, err_msg=key)
    assert runs["eager"][0][0]["loss"] != runs["eager"][0][2]["loss"]  # the weights moved between steps
    for key, value in runs["eager"][1].items():
        np.testing.assert_allclose(runs["compiled"][1][key], value, rtol=0, atol=ATOL_WEIGHTS, err_msg=key)


DETERMINISTIC = [
    *TINY,
    "data.train_transforms.augment=null",
    "data.train.num_samples=8",
    "trainer.limit_train_batches=null",
    "trainer.accumulate_grad_batches=2",
    "logger=none",
]


def _fit(tmp_path, name: str, extra: list[str]) -> dict[str, np.ndarray]:
    cfg = compose_config("train", [*DETERMINISTIC, *extra], output_dir=tmp_path / name)
    run_train(cfg)
    return {k: v.numpy() for k, v in paddle.load(str(tmp_path / name / "checkpoints" / "latest.pdparams")).items()}


def test_compiled_fit_equals_eager_fit_and_resumes_exactly(tmp_path, request):
    """Two epochs of 4 batches, accumulated by 2, validation after each epoch: the compiled fit ends at the eager
    fit's weights; a compiled fit stopped after one epoch and resumed compiled ends at the eager resume's weights.

    (The first fit ends after one epoch, so its cosine schedule is shorter: the resume changes trainer.max_epochs,
    which the resume check refuses unless allowed, and ends ~1e-3 away from the uninterrupted fit because the LR
    schedule differs, not the step; so the resume is compared path for path, compiled against eager.)

    On CPU the Trainer runs the compiled programs on the serial executor (`serial_static_executor`)."""
    flag = "FLAGS_new_executor_serial_run"
    previous = paddle.get_flags(flag)[flag]
    request.addfinalizer(lambda: paddle.set_flags({flag: previous}))  # process-wide: as the test found it
    paddle.set_flags({flag: False})
    eager = _fit(tmp_path, "eager", ["trainer.max_epochs=2", "trainer.compile=false"])
    assert paddle.get_flags(flag)[flag] is False
    compiled = _fit(tmp_path, "compiled", ["trainer.max_epochs=2", "trainer.compile=true"])
    assert paddle.get_flags(flag)[flag] is True
    _fit(tmp_path, "first", ["trainer.max_epochs=1", "trainer.compile=true"])
    latest = tmp_path / "first" / "checkpoints" / "latest"
    allow = "resume_allow_changes=[trainer.max_epochs,trainer.compile]"
    resumed = _fit(tmp_path, "resumed", ["trainer.max_epochs=2", "trainer.compile=true", f"resume={latest}", allow])
    resumed_eager = _fit(tmp_path, "resumed_eager",
                         ["trainer.max_epochs=2", "trainer.compile=false", f"resume={latest}", allow])
    for key, value in eager.items():
        np.testing.assert_allclose(compiled[key], value, rtol=0, atol=ATOL_WEIGHTS, err_msg=key)
        np.testing.assert_allclose(resumed[key], resumed_eager[key], rtol=0, atol=ATOL_WEIGHTS, err_msg=key)
    first = {k: v.numpy() for k, v in paddle.load(str(latest) + ".pdparams").items()}
    assert any(not np.array_equal(first[k], eager[k]) for k in eager)  # the second epoch changed the weights
