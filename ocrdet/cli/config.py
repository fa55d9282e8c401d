"""Compose ocrdet's Hydra config outside of a `@hydra.main` entry point (scripts, tests, notebooks), and the
resolvers every config of ocrdet uses (registered on import, before any CLI composes)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
T = TypeVar("T")
log = logging.getLogger(__name__)


def launch_dir() -> str:
    """The directory the command was started in. Hydra's `${hydra:runtime.cwd}` says the same but only inside a
    job, while `hydra.sweep.dir` is resolved before any job exists (a `--multirun` needs it first)."""
    return os.getcwd()


def run_dir(base: str, stamp: str, resume: str | None = None, overrides: Sequence[str] = ()) -> str:
    """`<base>/<stamp>` for a new run or sweep. With `resume=auto`, the most recent `<base>/<name>` that was started
    with the same command-line overrides (`resume=` aside) instead, so re-running a killed command with
    `resume=auto` continues it (each sweep job from its own `<sweep dir>/<job>/checkpoints/latest`); a command
    with other overrides starts a new dir.

    A sweep resolves this once in the launcher (with the sweep's overrides) and again in each job (with the job's
    own, possibly in another process or on another node): the launcher's choice is written to
    `<base>/.resume-<stamp>`, which the jobs read (`${now:}` gives every process of one launch the same stamp)."""
    fresh = os.path.join(base, stamp)
    if str(resume) != "auto":
        return fresh
    marker = os.path.join(base, f".resume-{stamp}")
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            return f.read().strip()
    if os.path.isdir(fresh) or not os.path.isdir(base):
        return fresh
    wanted = _without_resume(overrides)
    previous = sorted((e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith(".")), reverse=True)
    chosen = next((os.path.join(base, n) for n in previous if _saved_overrides(os.path.join(base, n)) == wanted), fresh)
    if chosen != fresh:
        tmp = f"{marker}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(chosen)
        os.replace(tmp, marker)
    return chosen


def _without_resume(overrides: Sequence[str]) -> list[str]:
    return [str(o) for o in overrides if not str(o).lstrip("+~").startswith("resume=")]


def _saved_overrides(folder: str) -> list[str] | None:
    """The command-line overrides a run dir (`.hydra/overrides.yaml`) or sweep dir (`multirun.yaml`) was made with,
    in today's keys (`legacy_override`)."""
    sweep, run = os.path.join(folder, "multirun.yaml"), os.path.join(folder, ".hydra", "overrides.yaml")
    try:
        if os.path.isfile(sweep):
            return [legacy_override(o) for o in _without_resume(OmegaConf.load(sweep).hydra.overrides.task)]
        if os.path.isfile(run):
            return [legacy_override(o) for o in _without_resume(OmegaConf.load(run))]
    except Exception:  # an unreadable leftover is no match
        return None
    return None


def register_resolvers() -> None:
    """`${ocrdet.cwd:}` and `${ocrdet.run_dir:base,stamp,resume,overrides}`, cached so that every resolution in a
    process (and the sweep jobs Hydra derives from the sweep config, which copy its cache) sees one value."""
    if not OmegaConf.has_resolver("ocrdet.cwd"):
        OmegaConf.register_new_resolver("ocrdet.cwd", launch_dir, use_cache=True)
    if not OmegaConf.has_resolver("ocrdet.run_dir"):
        OmegaConf.register_new_resolver("ocrdet.run_dir", run_dir, use_cache=True)


register_resolvers()


def compose_config(config_name: str, overrides: Sequence[str] = (), output_dir: str | Path = "outputs/compose") -> DictConfig:
    """The composed config for `config_name` ("train" or "eval") with Hydra-style overrides.

    `paths.output_dir` normally comes from Hydra's runtime (only set inside a `@hydra.main` job), so it is pinned.
    """
    pinned = [f"paths.output_dir={Path(output_dir).resolve()}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=[*pinned, *overrides])


# What a trained run decides for every later command on its weights: the architecture (groups and their keys), the
# post-processing and the data (its eval transforms). Overrides of these travel from the run to eval/export/predict.
RUN_KEYS = (
    "backbone", "neck", "head", "distill_mode", "experiment", "postprocess", "data", "distill", "model", "loss", "task",
)

# Keys of the config layout before issue 12 and their names today: prefixes (ending in ".") or whole keys, first
# match wins. Runs and checkpoints written then keep working: their saved overrides and configs are read through it.
LEGACY_KEYS = (
    ("members.teacher.model.", "model.members.teacher."),
    ("model.members.teacher.model.", "model.members.teacher."),
    ("backbone.", "model.backbone."),
    ("neck.", "model.neck."),
    ("head.", "model.head."),
    ("members.", "model.members."),
    ("data.train_transforms.normalize.", "data.batch_normalize."),
    ("data.train_transforms.crop.", "data.train_transforms.augment.crop."),
    ("distill.frozen_bn_eval", "model.frozen_bn_eval"),
    ("data.max_bad_fraction", "trainer.max_bad_fraction"),
    ("finetune.teacher", "finetune.pretrained"),
)
LEGACY_GROUP_OVERRIDES = {"transforms@data.train_transforms=db_train_copy_paste": "copy_paste=ppocrv3"}


def legacy_key(key: str) -> str:
    """A config key of the layout before issue 12 (`members.teacher.freeze`) as today's
    (`model.members.teacher.frozen`); a key of today's layout unchanged."""
    for old, new in LEGACY_KEYS:
        if key.startswith(old) if old.endswith(".") else key == old:
            key = new + key[len(old):]
            break
    return key[: -len("freeze")] + "frozen" if key.endswith(".freeze") else key


def legacy_override(override: str) -> str:
    """A command-line override saved by a run before issue 12, in today's keys (`neck.out_channels=64` ->
    `model.neck.out_channels=64`, `backbone@members.teacher.model.backbone=x` ->
    `backbone@model.members.teacher.backbone=x`)."""
    if override in LEGACY_GROUP_OVERRIDES:
        return LEGACY_GROUP_OVERRIDES[override]
    key, sep, value = override.partition("=")
    sign = key[: len(key) - len(key.lstrip("+~"))]
    name, at, package = key[len(sign):].partition("@")
    if at:
        return f"{sign}{name}@{legacy_key(package + '.')[:-1]}{sep}{value}"
    return f"{sign}{legacy_key(name)}{sep}{value}"


@dataclass
class RunConfig:
    """A trained run found behind a `weights=` value: its dir and the command-line overrides it was trained with."""

    run_dir: Path
    overrides: list[str]

    def describe(self) -> str:
        shown = [o for o in self.overrides if _override_root(o) in RUN_KEYS and _override_root(o) != "data"]
        return f"run {self.run_dir} (trained with {' '.join(shown) or 'the default groups'})"


def find_run(weights: str | Path) -> RunConfig | None:
    """The ocrdet run that wrote `weights` (a run dir, or a checkpoint inside `<run dir>/checkpoints/`), from the
    overrides Hydra saved in `<run dir>/.hydra/overrides.yaml`; None for a bare file such as PaddleOCR's."""
    path = Path(str(weights)).expanduser()
    candidates = [path] if path.is_dir() else []
    if path.suffix in (".pdparams", ".pdopt", ".states") or path.with_name(path.name + ".pdparams").is_file():
        candidates += [path.parent, path.parent.parent]
    for folder in candidates:
        saved = folder / ".hydra" / "overrides.yaml"
        if saved.is_file():
            return RunConfig(folder.resolve(), [legacy_override(str(o)) for o in OmegaConf.load(saved)])
    return None


def _override_root(override: str) -> str:
    """`neck.out_channels=64` -> `neck`; `+data.x=1` -> `data`; `hydra/launcher=x` -> `hydra`."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split("@", 1)[0].split("/", 1)[0].split(".", 1)[0]


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _covered(run_override: str, user_keys: set[str]) -> bool:
    """The user's command line decides this key: the same key, a parent key, or (for a key inside a group) the
    group itself (`data=icdar2015` replaces every `data.*` override of the run)."""
    key = _override_key(run_override)
    parts = key.split(".")
    return any(".".join(parts[:i]) in user_keys for i in range(1, len(parts) + 1))


def adopt_run_config(cfg: DictConfig, user_overrides: Sequence[str], keys: Sequence[str]) -> RunConfig | None:
    """Rebuild `keys` of this command's config (e.g. `model`, `postprocess`, `data`) as the run behind
    `cfg.weights` had them: its training config is composed again from its saved overrides, with this command
    line's overrides of the same keys on top (they win), and those nodes replace this command's. Returns the run,
    or None when the weights are no ocrdet run (a PaddleOCR file: the command-line groups apply as they are)."""
    run = find_run(cfg.weights)
    if run is None:
        return None
    travelling = [o for o in user_overrides if _override_root(o) in RUN_KEYS]
    user_keys = {_override_key(o) for o in travelling}
    inherited = [o for o in run.overrides if _override_root(o) in RUN_KEYS and not _covered(o, user_keys)]
    trained = compose(config_name="train", overrides=[*inherited, *travelling])
    with open_dict(cfg):
        for key in keys:
            if key in trained:
                cfg[key] = trained._get_node(key)  # unresolved: interpolations resolve in this command's config
            elif key in cfg:
                del cfg[key]  # e.g. `distill` of a CML default that a student run does not have
    return run


def describe_mismatch(run: RunConfig | None, user_overrides: Sequence[str], error: Exception) -> str:
    """The message for weights that do not fit the model: which run they come from and which of this command's
    overrides changed its architecture."""
    if run is None:
        return str(error)
    changed = [o for o in user_overrides if _override_root(o) in RUN_KEYS and not _override_root(o) == "data"]
    told = f"; this command sets {' '.join(changed)}" if changed else ""
    return f"{error}\nThe weights come from {run.describe()}{told}: drop the conflicting override(s)."


def run_on_weights(cfg: DictConfig, keys: Sequence[str], command: Callable[[DictConfig], T]) -> T:
    """Run an eval/export/predict `command` on `cfg.weights` with `keys` taken from the run that trained them
    (`adopt_run_config`); a model that does not fit the weights is reported with the run's groups."""
    from hydra.core.hydra_config import HydraConfig

    from ocrdet.models.weights import ModelMismatchError

    user = [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
    run = adopt_run_config(cfg, user, keys)
    if run is not None:
        log.info("model, post-processing and data settings from %s", run.describe())
    check_types(cfg)
    try:
        return command(cfg)
    except ModelMismatchError as exc:
        raise ModelMismatchError(describe_mismatch(run, user, exc)) from None


def check_types(cfg: DictConfig) -> None:
    """Check every value given to a constructor (`_target_` nodes) against that constructor's annotations, so
    `trainer.max_steps=ten` fails at once naming the key and the type, not deep inside a loop. Annotations this
    check cannot judge (classes, callables) are left to the constructor."""
    problems: list[str] = []
    _check_node(cfg, "", problems)
    if problems:
        raise TypeError("config values of the wrong type:\n  " + "\n  ".join(problems))


def _check_node(node: DictConfig, path: str, problems: list[str]) -> None:
    hints = _constructor_hints(node.get("_target_")) if "_target_" in node else {}
    for key in node.keys():
        name = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            try:
                _check_node(node[key], name, problems)
            except Exception:  # an interpolation that cannot resolve here (e.g. hydra: outside a job)
                continue
            continue
        if key not in hints or isinstance(child, ListConfig):
            continue
        try:
            value = node[key]
        except Exception:
            continue
        expected = _describe_mismatch(hints[key], value)
        if expected is not None:
            problems.append(f"{name}={value!r}: expected {expected}, got {type(value).__name__}")


def _constructor_hints(target: object) -> dict[str, object]:
    import inspect
    import typing

    from hydra.utils import get_method

    try:
        obj = get_method(str(target)) if isinstance(target, str) else target
        function = obj.__init__ if inspect.isclass(obj) else obj
        return typing.get_type_hints(function)
    except Exception:  # a target Hydra itself will report, or annotations that cannot be evaluated
        return {}


_SIMPLE = {int: "int", float: "float", bool: "bool", str: "str"}


def _describe_mismatch(hint: object, value: object) -> str | None:
    """None when `value` fits `hint` (or the hint is not a plain scalar type); else the expected type's name."""
    import types
    import typing

    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not all(o in _SIMPLE or o is type(None) for o in options):
        return None  # e.g. Sequence[int], a class: the constructor judges
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return None
        if option in (bool, str) and isinstance(value, option):
            return None
    return " or ".join("null" if o is type(None) else _SIMPLE[o] for o in options)

# Hydra's blocklist leaves loaders of pickles (`paddle.load`, `numpy.load`, ...) callable from a config, and a config
# may come from someone else; ours only needs ocrdet's own classes. A trusted user extends the list from the
# environment (not from a config): OCRDET_TARGET_PREFIXES="mypkg.,otherpkg.models.".
TARGET_PREFIXES = ("ocrdet.",)


def check_targets(cfg: DictConfig) -> None:
    """Refuse any `_target_` outside ocrdet (or OCRDET_TARGET_PREFIXES), naming its config key. Walks the nodes
    without resolving the whole config (a command's config may hold interpolations it never uses, e.g. the task's
    `${optim}` in ocrdet-export); an interpolated `_target_` is resolved on its own."""
    extra = tuple(p.strip() for p in os.environ.get("OCRDET_TARGET_PREFIXES", "").split(",") if p.strip())
    allowed = TARGET_PREFIXES + extra

    def walk(node: DictConfig | ListConfig, key: str) -> None:
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
        for k in keys:
            child = node._get_node(k)
            name = f"{key}.{k}" if key else str(k)
            if k == "_target_":
                target = node[k] if OmegaConf.is_interpolation(node, k) else child._value()
                if target is not None and not any(str(target).startswith(p) for p in allowed):
                    raise ValueError(
                        f"{name}={target}: only ocrdet's own classes may be instantiated from a config (allowed "
                        f"prefixes {list(allowed)}; extend them with OCRDET_TARGET_PREFIXES in the environment if you "
                        "trust that code)"
                    )
            elif isinstance(child, (DictConfig, ListConfig)) and not OmegaConf.is_interpolation(node, k):
                walk(child, name)  # an interpolated node is checked where it is defined

    walk(cfg, "")


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
    for key in ("data.batch_size", "data.eval_batch_size", "trainer.accumulate_grad_batches"):
        _int_at(cfg, key, 1)
    for key in ("data.num_workers", "data.eval_num_workers", "seed"):
        _int_at(cfg, key, 0)
    _int_at(cfg, "trainer.max_epochs", 1)
    from ocrdet.data.datamodule import check_crop_size

    check_crop_size(OmegaConf.select(cfg, "data.crop_size", default=None, throw_on_missing=False))
