"""Compose ocrdet's Hydra config outside of a `@hydra.main` entry point (scripts, tests, notebooks)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(config_name: str, overrides: Sequence[str] = (), output_dir: str | Path = "outputs/compose") -> DictConfig:
    """The composed config for `config_name` ("train" or "eval") with Hydra-style overrides.

    `paths.*` normally come from Hydra's runtime (only set inside a `@hydra.main` job), so they are pinned here.
    """
    root = Path.cwd()
    pinned = [f"paths.root_dir={root}", f"paths.output_dir={Path(output_dir).resolve()}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=[*pinned, *overrides])
