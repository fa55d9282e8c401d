"""Files given to weights=, resume=, finetune.pretrained= and ocrdet-extract cannot run code; configs cannot
instantiate loaders of pickles. Each attack writes a marker file if it succeeds."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import paddle
import pytest

from ocrdet.cli.config import compose_config
from ocrdet.engine import checkpoint_io
from ocrdet.engine.safe_pickle import UnsafePickleError, safe_load_file
from tests.conftest import shared_path
from tests.integration.conftest import TINY


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_evil(path: Path, marker: Path) -> Path:
    """A dict of tensors-as-arrays (as paddle.save writes) with one value that runs a command when unpickled."""
    with open(path, "wb") as f:
        pickle.dump({"w": np.ones(2, "float32"), "x": Evil(marker)}, f, protocol=4)
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "pwned"


def test_the_evil_file_does_run_code_under_plain_pickle(tmp_path, marker):
    # the attack itself works, so its absence below means the loader stopped it
    with open(write_evil(tmp_path / "e.pdparams", marker), "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_weights_for_eval_cannot_run_code(tmp_path, marker):
    from ocrdet.cli.eval import run_eval

    evil = write_evil(tmp_path / "evil.pdparams", marker)
    cfg = compose_config("eval", [*TINY[:4], f"weights={evil}"], output_dir=tmp_path / "eval")
    with pytest.raises(UnsafePickleError, match=r"evil.pdparams: refers to posix.system"):
        run_eval(cfg)
    assert not marker.exists()


def test_resume_cannot_run_code_from_states_or_weights(tmp_path, marker):
    from ocrdet.cli.train import run_train

    prefix = tmp_path / "ckpt" / "latest"
    checkpoint_io.save_checkpoint(prefix, {"w": paddle.ones([2])}, {"m": paddle.zeros([2])}, {"loops": {}})
    write_evil(prefix.with_suffix(".states"), marker)
    cfg = compose_config("train", [*TINY, "logger=none", f"resume={prefix}"], output_dir=tmp_path / "run")
    with pytest.raises(UnsafePickleError, match=r"latest.states: refers to posix.system"):
        run_train(cfg)
    with pytest.raises(UnsafePickleError):
        checkpoint_io.load_resume(prefix)
    write_evil(prefix.with_suffix(".pdparams"), marker)
    with pytest.raises(UnsafePickleError, match=r"latest.pdparams: refers to posix.system"):
        checkpoint_io.load_params(prefix)
    assert not marker.exists()


def test_finetune_pretrained_cannot_run_code(tmp_path, marker):
    from ocrdet.cli.train import run_train

    evil = write_evil(tmp_path / "evil.pdparams", marker)
    cfg = compose_config(
        "train", [*TINY, "logger=none", "finetune=pretrained", f"finetune.pretrained={evil}"], output_dir=tmp_path / "r"
    )
    with pytest.raises(UnsafePickleError, match="evil.pdparams"):
        run_train(cfg)
    assert not marker.exists()


def test_extract_cannot_run_code(tmp_path, marker, capsys):
    from ocrdet.cli.extract import main

    evil = write_evil(tmp_path / "evil.pdparams", marker)
    with pytest.raises(UnsafePickleError, match="evil.pdparams"):
        main([str(evil), "--model", "Student", "-o", str(tmp_path / "out")])
    assert not marker.exists()


@pytest.mark.parametrize(
    "target, argument",
    [("paddle.load", "path"), ("numpy.load", "file"), ("ocrdet.engine.checkpoint_io.read_states", "params")],
)
def test_a_config_cannot_instantiate_a_pickle_loader(tmp_path, marker, target, argument):
    from ocrdet.cli.train import run_train

    evil = write_evil(tmp_path / "evil.pdparams", marker)
    evil.with_suffix(".states").write_bytes(evil.read_bytes())
    node = f"{{_target_:{target},{argument}:{evil}}}"
    if target == "numpy.load":
        node = node[:-1] + ",allow_pickle:true}"
    cfg = compose_config("train", [*TINY, "logger=none", "~data.train", f"+data.train={node}"], output_dir=tmp_path / "r")
    if target.startswith("ocrdet."):  # our own reader is an allowed target, but it loads through the restricted unpickler
        with pytest.raises(Exception, match="evil.states: refers to posix.system"):  # wrapped by Hydra
            run_train(cfg)
    else:
        with pytest.raises(ValueError, match=rf"data.train._target_={target}: only ocrdet's own classes"):
            run_train(cfg)
    assert not marker.exists()


def test_released_paddleocr_weights_and_our_checkpoints_stay_readable(tmp_path):
    state = checkpoint_io.load_params(shared_path("weights", "ch_PP-OCRv3_det_student.pdparams"))
    assert all(isinstance(v, paddle.Tensor) for v in state.values()) and len(state) > 200
    prefix = tmp_path / "latest"
    opt = {"m_moment1_0": paddle.ones([2]), "LR_Scheduler": {"last_epoch": 3, "last_lr": 0.5}}
    states = {"loops": {"epoch": 1}, "rng": {"numpy": np.random.get_state()}, "best": np.float32(0.5)}
    checkpoint_io.save_checkpoint(prefix, {"w": paddle.ones([2])}, opt, states)
    params, optimizer, loaded = checkpoint_io.load_resume(prefix)
    np.testing.assert_array_equal(params["w"].numpy(), [1, 1])
    assert optimizer["LR_Scheduler"] == {"last_epoch": 3, "last_lr": 0.5}
    np.testing.assert_array_equal(loaded["rng"]["numpy"][1], np.random.get_state()[1])
    assert loaded["best"] == np.float32(0.5)
    assert safe_load_file(str(prefix) + ".states")["loops"] == {"epoch": 1}
