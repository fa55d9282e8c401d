"""Loading `.pdparams` weights into a model by exact key and shape (PaddleOCR `pretrained_model` semantics)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import paddle
from paddle import nn

from ocrdet.engine import checkpoint_io

log = logging.getLogger(__name__)

# PaddleOCR's checkpoint names (its tools and `pretrained_model`/`checkpoints` settings expect them): the set with the
# best validation metric, the last set, the every-N-epochs sets. `ocrdet.det.callbacks.PaddleOCRCheckpoint` writes
# them; a run directory given as weights means its best set, else its last.
BEST_NAME, LAST_NAME, EVERY_N_EPOCHS_NAME = "best_accuracy", "latest", "iter_epoch_{epoch}"


def resolve_weights(path: str | Path) -> Path:
    """The `.pdparams` file meant by `path`: the file itself, a prefix, or a run/checkpoint directory (its
    `best_accuracy`, else its `latest`)."""
    return checkpoint_io.resolve_weights(path, prefer=(BEST_NAME, LAST_NAME))


def load_params(path: str | Path) -> dict:
    """The state dict of the weights `path` means (as `resolve_weights`)."""
    return checkpoint_io.load_params(resolve_weights(path))


@dataclass
class LoadReport:
    """What a load did: keys loaded, model keys absent from the file, file keys absent from the model, and keys
    present in both with different shapes (left at their current values)."""

    path: str
    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)


def load_pretrained(model: nn.Layer, path: str, prefix: str = "") -> LoadReport:
    """Copy the tensors of a `.pdparams` file into `model` where key and shape match exactly.

    With `prefix` (e.g. "Student." for a distillation checkpoint) only keys starting with it are considered, and it
    is stripped before matching. Raises ValueError naming the file when nothing matches, since a silent no-op
    load (wrong file, wrong prefix) would otherwise train from scratch unnoticed.
    """
    # one loader for every weights file: a run dir, prefix or file; clear errors for truncated or foreign files
    file = str(resolve_weights(path))
    raw = checkpoint_io.load_params(file)
    state: Dict[str, object] = {
        k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix) and hasattr(v, "shape")
    }

    report = LoadReport(path=file)
    own = model.state_dict()
    to_set = {}
    for key, param in own.items():
        if key not in state:
            report.missing.append(key)
            continue
        value = state[key]
        value = value if isinstance(value, paddle.Tensor) else paddle.to_tensor(value)
        if list(value.shape) != list(param.shape):
            report.mismatched.append(key)
            log.warning("%s: %s has shape %s in the file, %s in the model", file, key, value.shape, param.shape)
            continue
        to_set[key] = value.astype(param.dtype) if value.dtype != param.dtype else value
        report.matched.append(key)
    report.unexpected = [k for k in state if k not in own]

    if not to_set:
        where = f" under prefix {prefix!r}" if prefix else ""
        raise ValueError(f"no parameter of {file}{where} matches the model by key and shape")
    # Per-tensor set_value: set_state_dict would warn once per key it lacks, which the report already covers.
    for key, value in to_set.items():
        own[key].set_value(value)
    log.info(
        "loaded %d tensors from %s (%d missing, %d unexpected, %d shape mismatches)",
        len(report.matched), file, len(report.missing), len(report.unexpected), len(report.mismatched),
    )
    return report


class ModelMismatchError(ValueError):
    """The weights file holds another architecture than the configured model."""


def load_for_inference(model: nn.Layer, path: str, prefix: str = "") -> LoadReport:
    """`load_pretrained` for eval, export and prediction: every tensor the shrink branch needs must load.

    Only the threshold branch (`*.thresh.*`, absent from inference weights and never run at inference) may be
    missing; anything else missing or mis-shaped means the configured model is not the one the file holds.
    """
    report = load_pretrained(model, path, prefix=prefix)
    needed = [k for k in report.missing if ".thresh." not in f".{k}"]
    if needed or report.mismatched:
        raise ModelMismatchError(
            f"{report.path}: does not fit the configured model ({len(needed)} missing, {len(report.mismatched)} "
            f"shape mismatches, e.g. {(needed or report.mismatched)[:3]}); check distill_mode, the backbone/neck/head "
            "groups or weights_prefix"
        )
    return report
