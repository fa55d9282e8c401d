"""Every experiment owns its keys: composed as `experiment=<name>` (every file of conf/experiment, as Hydra's
`experiment=glob(*)` would list them), each value the experiment file sets wins over the groups and the primary
config, `task_name` included, so a recipe's runs land in `outputs/<its task_name>/` and its MLflow experiment."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from omegaconf import DictConfig, OmegaConf

from ocrdet.cli.config import CONF_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def own_values(node: DictConfig, prefix: str = "") -> dict[str, object]:
    """The leaf values an experiment file writes itself (its `defaults` list aside)."""
    values: dict[str, object] = {}
    for key, value in node.items_ex(resolve=False):
        if key == "defaults":
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, DictConfig):
            values.update(own_values(value, name))
        else:
            values[name] = value
    return values


def test_every_experiment_is_listed():
    assert EXPERIMENTS == ["finetune_cpu", "ppocrv3_det_cml", "ppocrv3_det_dml", "ppocrv3_det_student", "synthetic_demo"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiment_s_own_values_win(name, tmp_path):
    cfg = compose_config("train", [f"experiment={name}"], output_dir=tmp_path)
    own = own_values(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"))
    assert "task_name" in own or name != "synthetic_demo"
    expected_task = own.get("task_name", name)
    assert cfg.task_name == expected_task == ("train" if name == "synthetic_demo" else name)
    assert cfg.seed == own.get("seed", 1024)
    for key, value in own.items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        assert node._get_node(leaf)._value() == value, key  # as written (an interpolation stays one)
    # the experiment's task_name names the MLflow experiment too
    assert cfg.logger.mlflow.experiment_name == expected_task


def test_cfg_job_shows_the_experiment_s_task_name(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-m", "ocrdet.cli.train", "experiment=ppocrv3_det_dml", "--cfg", "job"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task_name: ppocrv3_det_dml" in out.stdout.splitlines()
    assert "    experiment_name: ${task_name}" in out.stdout.splitlines()
