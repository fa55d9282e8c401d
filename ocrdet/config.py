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


def _int_at(cfg: DictConfig, key: str, minimum: int) -> None:
    """`key` holds an integer >= minimum, or is absent/null (left to its consumer's default)."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r}: must be an integer >= {minimum}")


def check_values(cfg: DictConfig) -> None:
    """Values Paddle or numpy would otherwise reject deep inside a run without naming the key."""
    from omegaconf import OmegaConf

    from ocrdet.data.transforms.resize_for_test import STRIDE

    for key in ("data.batch_size", "data.eval_batch_size", "trainer.accumulate_grad_batches"):
        _int_at(cfg, key, 1)
    for key in ("data.num_workers", "data.eval_num_workers", "seed"):
        _int_at(cfg, key, 0)
    _int_at(cfg, "trainer.max_epochs", 1)
    crop = OmegaConf.select(cfg, "data.crop_size", default=None, throw_on_missing=False)
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < STRIDE or crop % STRIDE):
        # the network downsamples by 32: other sizes give feature maps the FPN cannot add together
        raise ValueError(f"data.crop_size={crop!r}: must be a multiple of {STRIDE} (the network's stride), e.g. 640")
