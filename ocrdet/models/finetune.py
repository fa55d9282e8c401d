"""Weights loaded into a built model before training (the `finetune` config group; PaddleOCR's
`Global.pretrained_model`). Loading weights never changes the architecture: that is the model config's."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence

from paddle import nn

from ocrdet.models.weights import LoadReport, load_pretrained

log = logging.getLogger(__name__)


@dataclass
class Finetune:
    """Load `pretrained` by key and shape into the model, reporting what matched.

    Args:
        pretrained: a `.pdparams` file, a checkpoint prefix or a run dir; None loads nothing.
        prefix: only the file's keys under it, stripped (`Student.` takes one sub-model of a distillation checkpoint).
        submodels: load the file (sub-model-relative keys) into each of these sub-models of a distillation model
            instead of into the whole model (DML from an extracted teacher: [Student, Student2]).
    """

    pretrained: Optional[str] = None
    prefix: str = ""
    submodels: Optional[Sequence[str]] = None

    def apply(self, model: nn.Layer) -> List[str]:
        """Load the weights; return the model's keys that got values (empty when nothing is configured). Tensors left
        at their initial values are a warning, except the threshold branch (absent from inference weights, it starts
        fresh)."""
        if not self.pretrained:
            return []
        if not self.submodels:
            return self._report(load_pretrained(model, self.pretrained, prefix=self.prefix), "")
        if not hasattr(model, "submodel"):
            raise ValueError(
                f"finetune.submodels={list(self.submodels)} needs a distillation model (distill_mode=dml|cml)"
            )
        loaded: List[str] = []
        for name in self.submodels:
            report = load_pretrained(model.submodel(str(name)), self.pretrained, prefix=self.prefix)
            loaded += self._report(report, f"{name}.")
        return loaded

    def _report(self, report: LoadReport, into: str) -> List[str]:
        not_loaded = [k for k in report.missing + report.mismatched if ".thresh." not in f".{k}"]
        level = logging.WARNING if not_loaded else logging.INFO
        log.log(
            level,
            "finetune weights %s%s: %d matched, %d missing, %d unexpected, %d shape mismatches",
            report.path,
            f" into {into[:-1]}" if into else "",
            len(report.matched),
            len(report.missing),
            len(report.unexpected),
            len(report.mismatched),
        )
        if report.missing or report.mismatched:
            log.log(level, "not loaded (kept at init): %s", _summarise(report.missing + report.mismatched))
        return [into + key for key in report.matched]


def _summarise(keys: List[str], limit: int = 8) -> str:
    return ", ".join(keys[:limit]) + (f" ... (+{len(keys) - limit})" if len(keys) > limit else "")
