"""Checkpoints in PaddleOCR's layout: `<prefix>.pdparams` (model), `<prefix>.pdopt` (optimizer + LR scheduler) and
`<prefix>.states` (a pickle holding `best_model_dict`, `epoch`, `global_step`, plus what a full resume needs).

Files are written under temporary names and renamed, so a kill during a save leaves the previous checkpoint intact;
`.states` records the hashes of the other two, so a set torn between renames is detected, never half-loaded.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import paddle

from ocrdet.engine.safe_pickle import UnsafePickleError, safe_load_file, safe_paddle_load

SUFFIXES = (".pdparams", ".pdopt", ".states")
# Prefixes PaddleOCR writes, in the order `weights=<dir>` looks for them.
DIR_PREFERENCE = ("best_accuracy", "latest")


def atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary name and rename: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    prefix: str | Path,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any] | None,
    states: dict[str, Any],
) -> Path:
    """Write the three PaddleOCR files for `prefix` (e.g. `.../best_accuracy`); return the `.pdparams` path.

    All three are written to temporary names first (a kill there leaves the previous checkpoint untouched), then
    renamed; `.states` goes last and records the hashes of the other two, so a resume can tell a set torn by a
    kill between the renames from a consistent one.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    params = prefix.with_name(prefix.name + ".pdparams")
    opt = prefix.with_name(prefix.name + ".pdopt")
    staged = []
    paddle.save(model_state, str(params) + ".tmp")
    staged.append(params)
    if optimizer_state is not None:
        paddle.save(optimizer_state, str(opt) + ".tmp")
        staged.append(opt)
    states = {**states, "file_sha256": {p.suffix: _sha256(Path(str(p) + ".tmp")) for p in staged}}
    for path in staged:
        os.replace(str(path) + ".tmp", path)

    def dump_states(p: str) -> None:
        with open(p, "wb") as f:
            pickle.dump(states, f, protocol=4)

    atomic_write(prefix.with_name(prefix.name + ".states"), dump_states)
    return params


def resolve_weights(path: str | Path) -> Path:
    """The `.pdparams` file meant by `path`: the file itself, a PaddleOCR prefix, or a run/checkpoint directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        for folder in (path, path / "checkpoints"):
            for name in DIR_PREFERENCE:
                candidate = folder / f"{name}.pdparams"
                if candidate.is_file():
                    return candidate
        raise FileNotFoundError(f"{path}: no best_accuracy.pdparams or latest.pdparams in this directory")
    if path.suffix in SUFFIXES:
        path = path.with_suffix("")
    params = path.with_name(path.name + ".pdparams")
    if not params.is_file():
        raise FileNotFoundError(f"{params}: weights file not found")
    return params


def load_params(path: str | Path) -> dict[str, Any]:
    """Load a `.pdparams` state dict, with a clear error for a truncated or foreign file."""
    params = resolve_weights(path)
    try:
        state = safe_paddle_load(params)
    except UnsafePickleError:
        raise
    except Exception as exc:  # paddle raises many types for a corrupt file
        raise ValueError(f"{params}: not a readable Paddle state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{params}: expected a non-empty dict of tensors, got {type(state).__name__}")
    return state


def load_resume(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load model state, optimizer state and trainer states of a full-resume checkpoint."""
    params = resolve_weights(path)
    prefix = params.with_suffix("")
    opt_path, states_path = prefix.with_suffix(".pdopt"), prefix.with_suffix(".states")
    for needed in (opt_path, states_path):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing, so {params} cannot be resumed (it is weights only)")
    try:
        states = safe_load_file(states_path)
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise ValueError(f"{states_path}: unreadable trainer state ({exc})") from exc
    if not isinstance(states, dict):
        raise ValueError(f"{states_path}: expected a dict of trainer state, got {type(states).__name__}")
    if "loops" not in states:
        raise ValueError(f"{states_path}: written by PaddleOCR, not ocrdet; use it as weights (finetune) instead")
    for suffix, expected in states.get("file_sha256", {}).items():
        path = prefix.with_suffix(suffix)
        if _sha256(path) != expected:
            raise ValueError(
                f"{path}: does not match {states_path} (a save was interrupted between files); resume from "
                "another checkpoint of the run (e.g. best_accuracy or iter_epoch_N)"
            )
    return load_params(params), safe_paddle_load(opt_path), states


def resolve_resume(resume: str | None, run_dir: str | Path) -> Path | None:
    """`resume=auto`: this run dir's `checkpoints/latest` if it exists (a fresh start otherwise); any other value is
    a checkpoint file, prefix or run directory."""
    if not resume:
        return None
    if str(resume) == "auto":
        latest = Path(run_dir) / "checkpoints" / "latest.pdparams"
        return latest if latest.is_file() else None
    return resolve_weights(resume)


def read_states(params: str | Path) -> dict[str, Any]:
    """The `.states` dict beside a `.pdparams` file ({} if absent or unreadable)."""
    states_path = Path(params).with_suffix(".states")
    try:
        states = safe_load_file(states_path)
    except UnsafePickleError:
        raise  # a crafted file is an attack to report, not a missing state to ignore
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return {}
    return states if isinstance(states, dict) else {}
