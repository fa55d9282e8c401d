"""Two gloo ranks launched through paddle.distributed.launch: the same weights as one process on the same global
batch, and sharded evaluation equal to single-process evaluation."""
from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from ocrdet.cli.build import build_data, build_task, build_trainer
from ocrdet.cli.config import compose_config
from ocrdet.cli.eval import run_eval
from ocrdet.cli.launch import METRICS_FILE, launch
from ocrdet.cli.train import run_train
from ocrdet.models.weights import load_for_inference
from tests.conftest import shared_path
from tests.integration.conftest import TINY

# deterministic samples (no random augmentation or crop), one image per rank
COMMON = [
    *TINY,
    "data.train_transforms.augment=null",
    "data.batch_size=1",
    "data.train.num_samples=4",
    "data.val.num_samples=5",  # odd: one rank gets 3 images, the other 2, none padded or counted twice
    "trainer.limit_train_batches=null",
    "logger=none",
    # Adam with epsilon 1 makes each update lr * m / (sqrt(v) + 1), about lr * m for these small gradients: linear
    # in the gradient, so float noise between the two runs' gradients (other summation orders: 1 vs 2 threads,
    # all-reduce vs accumulation) stays as small in the weights as it is in the gradients. With Adam's own 1e-8,
    # m / sqrt(v) turns a 1e-7 gradient difference on a near-zero gradient into a visible update difference
    # (1.03e-5 on one CPU, under 1e-5 on another).
    "optim.epsilon=1.0",
]


def trained_weights(path) -> dict[str, np.ndarray]:
    # BatchNorm running statistics are per rank by design; the trained parameters must agree
    return {k: v.numpy() for k, v in paddle.load(str(path)).items() if not k.endswith(("_mean", "_variance"))}


def initial_weights(cfg) -> dict[str, np.ndarray]:
    """The weights both runs start from (a function of the seed, as in run_train)."""
    from ocrdet.cli.build import build_task
    from ocrdet.engine.trainer import seed_everything

    seed_everything(cfg.seed)
    state = build_task(cfg).model.state_dict()
    return {k: v.numpy() for k, v in state.items() if not k.endswith(("_mean", "_variance"))}


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
def test_two_ranks_equal_one_process_on_the_same_global_batch(tmp_path, compiled):
    """Compiled ranks average their gradients in the Trainer (one all-reduce per optimizer step), eager ranks in
    DataParallel's backward hooks; either way the same weights as one process accumulating the global batch."""
    mode = f"trainer.compile={str(compiled).lower()}"
    # sync_batchnorm reaches each rank's Trainer; on CPU ranks it warns and keeps BatchNorm (no CPU kernel)
    ddp_cfg = compose_config("train", [*COMMON, mode, "trainer.devices=2", "trainer.sync_batchnorm=true"],
                             output_dir=tmp_path / "ddp")
    ddp_metrics = launch(ddp_cfg)
    assert json.loads((tmp_path / "ddp" / METRICS_FILE).read_text()) == ddp_metrics
    assert not list((tmp_path / "ddp" / "checkpoints").glob("*.tmp"))
    assert "no CPU kernel" in (tmp_path / "ddp" / "launch_logs" / "workerlog.0").read_text()

    # one process: two micro-batches of one image accumulated = the two ranks' global batch of two
    single_cfg = compose_config("train", [*COMMON, mode, "trainer.accumulate_grad_batches=2"],
                                output_dir=tmp_path / "one")
    run_train(single_cfg)

    ddp = trained_weights(tmp_path / "ddp" / "checkpoints" / "latest.pdparams")
    one = trained_weights(tmp_path / "one" / "checkpoints" / "latest.pdparams")
    init = initial_weights(single_cfg)
    assert ddp.keys() == one.keys() == init.keys()
    # the largest move of any weight: the scale of an update, which float noise in the gradients is relative to
    update_scale = max(np.abs(one[k] - init[k]).max() for k in one)
    # A wrong reduction (each rank its own gradient, a sum for a mean) is off by ~50-100% of the move of every tensor
    # that learns. Float noise is not uniform: a tensor whose true gradient is zero (a BatchNorm bias feeding the
    # next conv + BatchNorm: its shift is normalised away) or nearly so (an SE unit that ReLU keeps shut) moves by
    # noise alone, amplified by the BatchNorm backward over near-constant features (1/sigma up to ~300): 5e-10 on
    # one CPU, 8e-6 (a third of its move) with MKL's AVX2 kernels on an AMD one. So: the whole update agrees to 1%
    # (noise: 0.14% there), and each tensor that learns (moves by >= 10% of the model's largest move) agrees to
    # 0.1% of its own move, plus 1e-4 of the model's largest move (~1000 float32 eps of it) and one float32 ulp,
    # element by element.
    difference = np.sqrt(sum(float(((ddp[k] - one[k]).astype(np.float64) ** 2).sum()) for k in ddp))
    update = np.sqrt(sum(float(((one[k] - init[k]).astype(np.float64) ** 2).sum()) for k in ddp))
    assert difference <= 1e-2 * update, (difference, update)
    learning = [k for k in ddp if np.abs(one[k] - init[k]).max() >= 0.1 * update_scale]
    assert len(learning) >= 50  # of 199 trained tensors; the bound below is not vacuous
    for key in learning:
        moved = np.abs(one[key] - init[key]).max()
        tolerance = 1e-3 * moved + 1e-4 * update_scale + np.spacing(np.abs(one[key]).astype(np.float32))
        assert np.all(np.abs(ddp[key] - one[key]) <= tolerance), (key, np.abs(ddp[key] - one[key]).max())
    assert update_scale > 1e-4  # training did move the weights

    # the sharded evaluation inside the 2-rank run scored rank 0's model on all 5 images
    eval_cfg = compose_config(
        "eval",
        [*[o for o in COMMON if o.startswith("data.")], f"weights={tmp_path / 'ddp' / 'checkpoints' / 'latest'}",
         "engine=dygraph"],
        output_dir=tmp_path / "eval",
    )
    single_eval = run_eval(eval_cfg)
    assert {f"val/{k}": v for k, v in single_eval.items()} == ddp_metrics


def test_predictor_eval_equals_the_dygraph_loop(tmp_path):
    """`ocrdet-eval`'s engines (in-process export into a oneDNN predictor, inline or pooled post-processing; the
    dygraph model) and the Trainer's validation loop with either task.eval_forward (validation inside fit) score the
    same boxes: the released student on the first ICDAR2015 test images."""
    overrides = [
        "data=icdar2015",
        f"data.root={shared_path('data', 'icdar2015')}",
        f"weights={shared_path('weights', 'ch_PP-OCRv3_det_student.pdparams')}",
        "data.val_transforms.resize.limit_side_len=320",  # small inputs keep the dygraph side quick
        "trainer.limit_val_batches=6",
    ]
    runs = {"dygraph": ["engine=dygraph"], "predictor": ["engine=predictor"],
            "predictor_pooled": ["engine=predictor", "eval_workers=1"]}
    got = {name: run_eval(compose_config("eval", [*overrides, *extra], output_dir=tmp_path / name))
           for name, extra in runs.items()}
    for forward in ("predictor", "dygraph"):
        cfg = compose_config("eval", [*overrides, f"task.eval_forward={forward}"], output_dir=tmp_path / forward)
        task = build_task(cfg, with_optimizer=False)
        load_for_inference(task.model, cfg.weights)
        loop = build_trainer(cfg, logger=None).validate(task, build_data(cfg).val_dataloader())
        got[f"loop_{forward}"] = {k.split("/", 1)[-1]: v for k, v in loop.items()}
    assert got["predictor"] == got["dygraph"]
    assert got["predictor_pooled"] == got["dygraph"]
    assert got["loop_predictor"] == got["dygraph"]
    assert got["loop_dygraph"] == got["dygraph"]
    assert got["dygraph"]["hmean"] > 0.3  # boxes found and matched: not a comparison of two empty results
