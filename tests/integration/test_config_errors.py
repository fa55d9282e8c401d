"""Bad configuration fails before training starts, naming what is wrong."""
from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException, MissingConfigException
from omegaconf.errors import MissingMandatoryValue

from ocrdet.cli.build import build_task
from ocrdet.cli.config import compose_config


def test_unknown_group_option_lists_the_valid_ones():
    with pytest.raises(MissingConfigException) as error:
        compose_config("train", ["neck=fpn_xl"])
    for option in ("db_fpn", "lk_pan", "rse_fpn"):
        assert option in str(error.value)


def test_unknown_key_in_a_model_section_is_refused_naming_it():
    with pytest.raises(ConfigCompositionException, match="model.neck.out_chanels"):
        compose_config("train", ["model.neck.out_chanels=64"])


def test_constructor_rejects_a_key_it_does_not_take(tmp_path):
    cfg = compose_config("train", ["+loss.gamma=2.0"])
    with pytest.raises(InstantiationException, match="gamma"):
        build_task(cfg)


def test_interpolation_to_a_missing_submodel_name_fails_before_training():
    cfg = compose_config("train", ["distill_mode=cml", "distill.eval_models=[Stduent]"])
    with pytest.raises(InstantiationException, match=r"eval_models refers to sub-model\(s\) \['Stduent'\]"):
        build_task(cfg)
    cfg = compose_config("train", ["distill_mode=dml", "loss.losses.dml.model_name_pairs=[[Student,Teacher]]"])
    with pytest.raises(InstantiationException, match=r"loss refers to sub-model\(s\) \['Teacher'\]"):
        build_task(cfg)


def test_missing_required_value_names_the_key():
    cfg = compose_config("train", ["finetune=pretrained"])
    with pytest.raises(MissingMandatoryValue, match="finetune.pretrained"):
        _ = cfg.finetune.pretrained


# --- values Paddle/numpy would reject deep inside the run, and settings that would silently do nothing -------------
from ocrdet.cli.train import run_train  # noqa: E402
from tests.integration.conftest import TINY  # noqa: E402


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=abc", "data.batch_size='abc': must be an integer >= 1"),
        ("data.batch_size=0", "data.batch_size=0: must be an integer >= 1"),
        ("data.batch_size=-2", "data.batch_size=-2: must be an integer >= 1"),
        ("seed=abc", "seed='abc': must be an integer >= 0"),
        ("data.crop_size=100", "data.crop_size=100: must be a multiple of 32 (the network's stride), e.g. 640"),
    ],
)
def test_bad_values_fail_before_training_naming_the_key(tmp_path, override, message):
    cfg = compose_config("train", [*TINY, "logger=none", override], output_dir=tmp_path)
    with pytest.raises(ValueError) as error:
        run_train(cfg)
    assert str(error.value) == message
    assert not (tmp_path / "checkpoints").exists()


def test_a_misspelt_monitor_fails_listing_the_metrics(tmp_path):
    cfg = compose_config("train", [*TINY, "logger=none", "callbacks.model_checkpoint.monitor=val/hmeen"], output_dir=tmp_path)
    with pytest.raises(ValueError) as error:
        run_train(cfg)
    assert str(error.value) == (
        "callbacks.model_checkpoint.monitor='val/hmeen' is not a metric this task logs; choose one of "
        "['val/precision', 'val/recall', 'val/hmean']"
    )


def test_a_distillation_task_lists_its_prefixed_metrics():
    cfg = compose_config("train", ["distill_mode=dml", "distill.eval_models=[Student,Student2]"])
    assert build_task(cfg).validation_metric_names() == [
        "val/precision", "val/recall", "val/hmean", "val/Student2_precision", "val/Student2_recall", "val/Student2_hmean"
    ]


@pytest.mark.parametrize("override", ["postprocess.box_thresh=2", "postprocess.thresh=-0.1"])
def test_a_threshold_outside_0_1_is_refused_naming_it(override):
    cfg = compose_config("train", [override])
    key, value = override.split("=")
    with pytest.raises(InstantiationException, match=f"{key}={value}: a probability threshold must be in"):
        build_task(cfg)
