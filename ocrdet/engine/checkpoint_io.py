"""Checkpoint sets in PaddleOCR's file format: `<prefix>.pdparams` (model), `<prefix>.pdopt` (optimizer + LR
scheduler) and `<prefix>.states` (a pickle: what a full resume needs, plus the keys a task's callbacks add). Which
prefixes a run writes is the checkpoint callback's configuration, not this module's.

Files are written under temporary names and renamed, `.pdparams` last, so a kill during a save leaves the previous
checkpoint intact; `.states` records the hashes of the other two, so a set torn between renames is detected, never
half-loaded, and the set it was replacing (kept as `<prefix>_previous`) is resumed instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Sequence

import paddle

from ocrdet.engine.safe_pickle import UnsafePickleError, safe_load_file, safe_paddle_load

log = logging.getLogger(__name__)

SUFFIXES = (".pdparams", ".pdopt", ".states")
PREVIOUS = "_previous"


def _with(prefix: Path, suffix: str) -> Path:
    """`prefix` + `suffix` (Path.with_suffix would eat a dotted prefix's last part)."""
    return prefix.with_name(prefix.name + suffix)


def atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary name and rename: a reader sees the old file or the new one, never half of one. A failed
    write (disk full) removes its temporary file."""
    tmp = _with(path, ".tmp")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def previous_prefix(prefix: Path) -> Path:
    """Where the set a save replaces stays whole until the new one is complete: `last` -> `last_previous`."""
    return _with(prefix, PREVIOUS)


def _keep_previous(prefix: Path) -> None:
    """Hard-link the current set, when it is whole and consistent, as `<prefix>_previous` before it is replaced
    (a torn current set leaves the older `_previous` in place). Links cost no space; a file system without them gets
    copies."""
    try:
        verify_set(prefix)
    except (OSError, ValueError):
        return
    previous = previous_prefix(prefix)
    for suffix in SUFFIXES:
        _with(previous, suffix).unlink(missing_ok=True)
    for suffix in (".pdopt", ".states", ".pdparams"):  # .pdparams last, as in a save
        try:
            os.link(_with(prefix, suffix), _with(previous, suffix))
        except OSError:
            shutil.copy2(_with(prefix, suffix), _with(previous, suffix))


def save_checkpoint(
    prefix: str | Path,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any] | None,
    states: dict[str, Any],
) -> Path:
    """Write the three files for `prefix` (e.g. `.../checkpoints/last`); return the `.pdparams` path.

    All three are written to temporary names first (a kill there leaves the previous checkpoint untouched; a failure
    such as a full disk removes them), `.states` recording the hashes of the other two. The set being replaced is
    linked as `<prefix>_previous`, then the files are renamed with `.pdparams` last: a kill between the renames
    leaves a set the hashes show to be torn, and `resolve_resume` falls back to `<prefix>_previous`.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    objects = {".pdparams": model_state, ".pdopt": optimizer_state}
    staged: list[Path] = []
    try:
        for suffix, obj in objects.items():
            if obj is None:
                continue
            staged.append(_with(prefix, suffix + ".tmp"))
            paddle.save(obj, str(staged[-1]))
        states = {**states, "file_sha256": {p.name[len(prefix.name):-4]: _sha256(p) for p in staged}}
        staged.append(_with(prefix, ".states.tmp"))
        with open(staged[-1], "wb") as f:
            pickle.dump(states, f, protocol=4)
        _keep_previous(prefix)
        if optimizer_state is None:  # a weights-only set: a stale optimizer file must not pass for its own
            _with(prefix, ".pdopt").unlink(missing_ok=True)
        for tmp in sorted(staged, key=lambda p: p.name.endswith(".pdparams.tmp")):
            os.replace(tmp, tmp.with_suffix(""))
    except BaseException:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    return _with(prefix, ".pdparams")


def resolve_weights(path: str | Path, prefer: Sequence[str] = ()) -> Path:
    """The `.pdparams` file meant by `path`: the file itself, a prefix, or a run/checkpoint directory, where the
    first of the prefixes `prefer` found is taken (a task's layout says which: its best set, then its last)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for folder in (path, path / "checkpoints"):
            for name in prefer:
                candidate = folder / f"{name}.pdparams"
                if candidate.is_file():
                    return candidate
        wanted = " or ".join(f"{name}.pdparams" for name in prefer) or "a weights file (give one, not a directory)"
        raise FileNotFoundError(f"{path}: no {wanted} in this directory")
    if path.suffix in SUFFIXES:
        path = path.with_suffix("")
    params = path.with_name(path.name + ".pdparams")
    if not params.is_file():
        raise FileNotFoundError(f"{params}: weights file not found")
    return params


def load_params(path: str | Path, prefer: Sequence[str] = ()) -> dict[str, Any]:
    """Load a `.pdparams` state dict (`path` as `resolve_weights` takes it), with a clear error for a truncated or
    foreign file."""
    params = resolve_weights(path, prefer)
    try:
        state = safe_paddle_load(params)
    except UnsafePickleError:
        raise
    except Exception as exc:  # paddle raises many types for a corrupt file
        raise ValueError(f"{params}: not a readable Paddle state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{params}: expected a non-empty dict of tensors, got {type(state).__name__}")
    return state


def verify_set(prefix: str | Path) -> dict[str, Any]:
    """The `.states` of the whole, consistent resumable set at `prefix`; FileNotFoundError or ValueError saying what
    is wrong (a missing file, a PaddleOCR or weights-only set, files from different saves)."""
    prefix = Path(prefix)
    params, opt_path, states_path = (_with(prefix, suffix) for suffix in SUFFIXES)
    for needed in (params, opt_path, states_path):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing, so {prefix} cannot be resumed (weights only, or not saved)")
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
    for suffix, path in ((".pdparams", params), (".pdopt", opt_path)):
        expected = states.get("file_sha256", {}).get(suffix)
        if expected is None or _sha256(path) != expected:
            raise ValueError(
                f"{path}: does not match {states_path} (a save was interrupted between files); resume from "
                f"{previous_prefix(prefix).name} or another checkpoint set of the run"
            )
    return states


def load_resume(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load model state, optimizer state and trainer states of a full-resume checkpoint."""
    params = resolve_weights(path)
    prefix = params.with_name(params.name[: -len(".pdparams")])
    states = verify_set(prefix)
    return load_params(params), safe_paddle_load(_with(prefix, ".pdopt")), states


def _progress(states: dict[str, Any]) -> tuple[int, int, int]:
    loops = states.get("loops") or {}
    return int(loops.get("epoch", 0)), int(loops.get("batch_idx", 0)), int(loops.get("global_step", 0))


def find_resumable(folder: Path) -> Path | None:
    """The most advanced whole, consistent checkpoint set in `folder` (normally the last one): sets are tried from the
    furthest claimed progress down, a torn or unreadable one logged and passed over. None when `folder` holds no
    set; ValueError with each set's problem when none is usable."""
    prefixes = sorted({p.with_name(p.name[: -len(".states")]) for p in folder.glob("*.states")})
    if not prefixes:
        return None
    claimed = []
    for prefix in prefixes:
        states = read_states(_with(prefix, ".pdparams"))
        # on a tie a name's own set wins over its `_previous`, then the set written last (the epoch's last set is
        # saved after its best and every-N sets); the name keeps the choice deterministic
        written = _with(prefix, ".pdparams").stat().st_mtime_ns if _with(prefix, ".pdparams").exists() else 0
        claimed.append((_progress(states), not prefix.name.endswith(PREVIOUS), written, prefix.name, prefix))
    problems = []
    for *_, prefix in sorted(claimed, key=lambda c: c[:4], reverse=True):
        try:
            verify_set(prefix)
        except (OSError, ValueError) as exc:
            log.warning("not resuming from %s: %s", prefix, exc)
            problems.append(f"{prefix.name}: {exc}")
            continue
        return _with(prefix, ".pdparams")
    raise ValueError(f"{folder}: no usable checkpoint set to resume from:\n  " + "\n  ".join(problems))


def resolve_resume(resume: str | None, run_dir: str | Path) -> Path | None:
    """The `.pdparams` of the checkpoint set to resume from, verified whole and consistent.

    `resume=auto`: the most advanced set in this run dir's `checkpoints/` (normally the last; a fresh start, logged,
    when there is none). A run or checkpoints directory: the same in it. A file or prefix: that set, or its
    `_previous` when a kill tore it between renames (with a warning).
    """
    if not resume:
        return None
    if str(resume) == "auto":
        folder = Path(run_dir) / "checkpoints"
        found = find_resumable(folder) if folder.is_dir() else None
        if found is None:
            log.info("resume=auto: no checkpoint in %s, starting fresh", folder)
        return found
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            found = find_resumable(folder) if folder.is_dir() else None
            if found is not None:
                return found
        raise FileNotFoundError(f"resume={resume}: no checkpoint set (*.states) in {path} or {path / 'checkpoints'}")
    params = resolve_weights(path)
    prefix = params.with_name(params.name[: -len(".pdparams")])
    try:
        verify_set(prefix)
    except ValueError as exc:
        previous = previous_prefix(prefix)
        try:
            verify_set(previous)
        except (OSError, ValueError):
            raise exc from None
        log.warning("%s; resuming from %s, the set it was replacing", exc, previous)
        return _with(previous, ".pdparams")
    return params


def read_states(params: str | Path) -> dict[str, Any]:
    """The `.states` dict beside a `.pdparams` file ({} if absent or unreadable)."""
    params = Path(params)
    prefix = params.with_name(params.name[: -len(params.suffix)]) if params.suffix in SUFFIXES else params
    states_path = _with(prefix, ".states")
    try:
        states = safe_load_file(states_path)
    except UnsafePickleError:
        raise  # a crafted file is an attack to report, not a missing state to ignore
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return {}
    return states if isinstance(states, dict) else {}
