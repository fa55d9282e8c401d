"""Several named detectors fed the same input (PaddleOCR's `DistillationModel`, spec section 2.1)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import paddle
from paddle import nn

from ocrdet.models.detector import DBDetector
from ocrdet.models.weights import LoadReport, load_pretrained

log = logging.getLogger(__name__)


def _set_training(layer: nn.Layer, mode: bool) -> None:
    # Flags only: `Layer.eval()` would also flip the global dygraph tracer, which the trainable models share.
    layer.training = mode
    for sub in layer.sublayers():
        sub.training = mode


class DistillationModel(nn.Layer):
    """Named sub-models (e.g. Student, Student2, Teacher) that all see the same input.

    Each sub-model is a sublayer registered under its name in the given order, so state-dict keys carry the name
    as prefix exactly like PaddleOCR's distillation checkpoints (`Student.backbone.conv.conv.weight`,
    `Teacher.head.thresh.conv3.bias`).

    Frozen sub-models get `stop_gradient=True` on every parameter (the task then leaves them out of the optimizer)
    and run under `no_grad`. With `frozen_bn_eval=True` (our default) they also stay in eval mode whatever mode
    the whole model is put in, so their BatchNorm statistics do not drift; a frozen DB detector then returns only
    its shrink map (`maps` [N,1,H,W]), which is all the distillation losses read from it. `frozen_bn_eval=False`
    reproduces PaddleOCR: the teacher follows `.train()`, normalises with batch statistics and updates its
    running mean/variance although its weights are frozen (spec 2.1, checklist item 6).

    Args:
        models: name -> built sub-model, in registration (and output) order.
        frozen: names of the sub-models to freeze.
        frozen_bn_eval: keep frozen sub-models in eval mode (see above).
        pretrained: name -> `.pdparams` path (or suffix-less prefix) with sub-model-relative keys
            (`backbone.…`), loaded by exact key and shape at construction; None or "" skips a name.
    """

    def __init__(
        self,
        models: Mapping[str, nn.Layer],
        frozen: Sequence[str] = (),
        frozen_bn_eval: bool = True,
        pretrained: Optional[Mapping[str, Optional[str]]] = None,
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("DistillationModel needs at least one sub-model")
        self._names: List[str] = [str(name) for name in models]
        pretrained = dict(pretrained or {})
        for option, names in (("frozen", list(frozen)), ("pretrained", list(pretrained))):
            unknown = [str(n) for n in names if str(n) not in self._names]
            if unknown:
                raise ValueError(f"{option} names {unknown} are not sub-models; valid names: {self._names}")

        self.load_reports: Dict[str, LoadReport] = {}
        for name, model in models.items():
            name = str(name)
            self.add_sublayer(name, model)
            path = pretrained.get(name)
            if path:
                report = load_pretrained(model, str(path))
                # load_pretrained logs the counts; this line says which sub-model they belong to.
                log.info("sub-model %s initialised from %s", name, report.path)
                self.load_reports[name] = report

        self.frozen = tuple(str(n) for n in frozen)
        self.frozen_bn_eval = bool(frozen_bn_eval)
        for name in self.frozen:
            for param in self.submodel(name).parameters():
                param.stop_gradient = True
        self._pin_frozen_eval()

    @property
    def names(self) -> List[str]:
        """Sub-model names in registration order."""
        return list(self._names)

    def submodel(self, name: str) -> nn.Layer:
        """The sub-model registered as `name`; KeyError listing the valid names otherwise."""
        if name not in self._names:
            raise KeyError(f"no sub-model named {name!r}; valid names: {self._names}")
        return self._sub_layers[name]

    def _pin_frozen_eval(self) -> None:
        if self.frozen_bn_eval:
            for name in self.frozen:
                _set_training(self.submodel(name), False)

    def train(self, mode: bool = True) -> "DistillationModel":
        # Paddle 2.6's Layer.train() takes no mode argument.
        if mode:
            super().train()
        else:
            super().eval()
        self._pin_frozen_eval()
        return self

    def forward(self, x: paddle.Tensor) -> Dict[str, Any]:
        # A parent's train() sets `training` on every descendant directly, bypassing our train(): pin again here.
        self._pin_frozen_eval()
        outputs: Dict[str, Any] = {}
        for name in self._names:
            model = self._sub_layers[name]
            if name in self.frozen:
                with paddle.no_grad():
                    outputs[name] = model(x)
            else:
                outputs[name] = model(x)
        return outputs


@dataclass
class SubModel:
    """One configured member of a distillation model: its name, optional weights, whether it is frozen, and its own
    architecture parts where it differs from the model's (the CML teacher); parts left None are the model's."""

    name: str
    pretrained: Optional[str] = None
    frozen: bool = False
    backbone: Optional[Callable[[], nn.Layer]] = None
    neck: Optional[Callable[..., nn.Layer]] = None
    head: Optional[Callable[..., nn.Layer]] = None


def distillation_model(
    backbone: Callable[[], nn.Layer],
    neck: Callable[..., nn.Layer],
    head: Callable[..., nn.Layer],
    members: Mapping[str, Optional[SubModel]],
    frozen_bn_eval: bool = True,
) -> DistillationModel:
    """Assemble a DistillationModel of DB detectors, one per configured member, built in the members' order (config
    keys are roles; `name` is the sub-model name). `backbone`/`neck`/`head` (partials) are the architecture of every
    member that does not give its own; a member set to null is left out."""
    chosen = [m for m in members.values() if m is not None]
    names = [m.name for m in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"sub-model names must be unique, got {names}")
    models = {m.name: DBDetector(m.backbone or backbone, m.neck or neck, m.head or head) for m in chosen}
    return DistillationModel(
        models=models,
        frozen=[m.name for m in chosen if m.frozen],
        frozen_bn_eval=frozen_bn_eval,
        pretrained={m.name: m.pretrained for m in chosen if m.pretrained},
    )
