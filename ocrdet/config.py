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


# Hydra's blocklist leaves loaders of pickles (`paddle.load`, `numpy.load`, ...) callable from a config, and a config
# may come from someone else; ours only needs ocrdet's own classes. A trusted user extends the list from the
# environment (not from a config): OCRDET_TARGET_PREFIXES="mypkg.,otherpkg.models.".
TARGET_PREFIXES = ("ocrdet.",)


def check_targets(cfg: DictConfig) -> None:
    """Refuse any `_target_` outside ocrdet (or OCRDET_TARGET_PREFIXES), naming its config key."""
    import os

    from omegaconf import OmegaConf

    extra = tuple(p.strip() for p in os.environ.get("OCRDET_TARGET_PREFIXES", "").split(",") if p.strip())
    allowed = TARGET_PREFIXES + extra
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            target = node.get("_target_")
            if target is not None and not any(str(target).startswith(p) for p in allowed):
                raise ValueError(
                    f"{key + '.' if key else ''}_target_={target}: only ocrdet's own classes may be instantiated from a "
                    f"config (allowed prefixes {list(allowed)}; extend them with OCRDET_TARGET_PREFIXES in the "
                    "environment if you trust that code)"
                )
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")

    walk(container, "")
