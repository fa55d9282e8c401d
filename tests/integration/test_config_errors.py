"""Bad configuration fails before training starts, naming what is wrong."""
from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException, MissingConfigException
from omegaconf.errors import MissingMandatoryValue

from ocrdet.build import build_task
from ocrdet.config import compose_config


def test_unknown_group_option_lists_the_valid_ones():
    with pytest.raises(MissingConfigException) as error:
        compose_config("train", ["neck=fpn_xl"])
    for option in ("db_fpn", "lk_pan", "rse_fpn"):
        assert option in str(error.value)


def test_unknown_key_in_a_model_section_is_refused_naming_it():
    with pytest.raises(ConfigCompositionException, match="neck.out_chanels"):
        compose_config("train", ["neck.out_chanels=64"])


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
