"""Distillation losses of PP-OCRv3 detection (spec sections 3.3-3.6) and their weighted combination.

Every loss takes `predicts = {model name: {"maps": [N,C,H,W]}}` (a `DistillationModel` output) and the batch, and
returns a dict of 0-D tensors: its own total under `loss` plus one entry per term.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import paddle
from paddle import Tensor, nn

from ocrdet.losses.db_loss import DBLoss, balanced_dice_loss, dice_loss

Predicts = Mapping[str, Mapping[str, Tensor]]

# Channel of each DB map in the training output `maps` [N,3,H,W].
MAP_CHANNELS = {"shrink": 0, "threshold": 1, "binary": 2}
# PaddleOCR hard-codes a 2x2 all-ones kernel, one iteration, default (centre) anchor.
DILATION_KERNEL = np.ones((2, 2), dtype=np.uint8)


def _pairs(model_name_pairs: Sequence[Sequence[str]]) -> List[Tuple[str, str]]:
    pairs = []
    for pair in model_name_pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"model_name_pairs must be a list of [a, b] pairs, got {model_name_pairs!r}")
        pairs.append((str(pair[0]), str(pair[1])))
    if not pairs:
        raise ValueError("model_name_pairs is empty")
    return pairs


def _maps(predicts: Predicts, name: str) -> Tensor:
    if name not in predicts:
        raise KeyError(f"no predictions for model {name!r}; got {list(predicts)}")
    return predicts[name]["maps"]


def _with_total(terms: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return {"loss": paddle.add_n(list(terms.values())), **terms}


class DMLLoss(nn.Layer):
    """Symmetric KL between two models' positive-class probabilities on one DB map (spec 3.5).

    Per pixel, with p, q the two maps and eps inside the logs as in PaddleOCR's KL path:
    ``l = ½·[q·log((q+eps)/(p+eps) + eps) + p·log((p+eps)/(q+eps) + eps)]``. There is no (1-p) term.

    Deviation from PaddleOCR: it averages over H,W only and leaves a per-sample [N] vector, and `backward` on the
    [N]-shaped combined loss sums over it, which scales every loss term by the batch size. We also average over
    the batch and return a scalar, so the relative weights of all terms are PaddleOCR's, and the absolute scale
    (relevant to coupled L2 decay and the AMP loss scale) is the mean, not N times it.

    Args:
        model_name_pairs: pairs of model names, e.g. [["Student", "Student2"]]; each gives `dml_<a>_<b>`.
        maps_name: which map channel to compare: "shrink", "threshold" or "binary".
        eps: the epsilon inside the logs (1e-5 in PaddleOCR).
    """

    def __init__(
        self, model_name_pairs: Sequence[Sequence[str]], maps_name: str = "shrink", eps: float = 1e-5
    ) -> None:
        super().__init__()
        if maps_name not in MAP_CHANNELS:
            raise ValueError(f"maps_name must be one of {list(MAP_CHANNELS)}, got {maps_name!r}")
        self.pairs = _pairs(model_name_pairs)
        self.channel = MAP_CHANNELS[maps_name]
        self.eps = float(eps)

    def _one_way(self, p: Tensor, q: Tensor) -> Tensor:
        return p * paddle.log((p + self.eps) / (q + self.eps) + self.eps)

    def forward(self, predicts: Predicts, batch: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        terms = {}
        for a, b in self.pairs:
            p = _maps(predicts, a)[:, self.channel]
            q = _maps(predicts, b)[:, self.channel]
            per_pixel = 0.5 * (self._one_way(q, p) + self._one_way(p, q))
            terms[f"dml_{a}_{b}"] = paddle.mean(per_pixel)  # mean over H,W then N: equal sizes per sample
        return _with_total(terms)


def dilate_reference(teacher_shrink: np.ndarray, thresh: float) -> np.ndarray:
    """PaddleOCR's dilated target with OpenCV (the check of `DilaDBLoss.target`)."""
    binary = (teacher_shrink > thresh).astype(np.uint8)
    return np.stack([cv2.dilate(img, DILATION_KERNEL) for img in binary]).astype(np.float32)


class DilaDBLoss(nn.Layer):
    """Teacher -> student DB loss on a dilated, binarised teacher shrink map (spec 3.4).

    Target: ``Ĝ = dilate_2x2(P_teacher > teacher_thresh)``, built on the host with cv2 as PaddleOCR does, so it
    carries no gradient. Loss per pair: ``alpha·Balance(P_s, Ĝ; Ms) + Dice(B_s, Ĝ; Ms)`` with the ground-truth
    shrink mask Ms, so ignore regions stay masked. The teacher's threshold map is not used.

    Args:
        model_name_pairs: [student, teacher] name pairs; each gives `dila_db_<student>_<teacher>`.
        teacher_thresh: binarisation threshold of the teacher's shrink map.
        alpha: weight of the balanced Dice on the student's shrink map.
        ohem_ratio: negative ratio of the balanced loss.
        eps: Dice epsilon.
    """

    def __init__(
        self,
        model_name_pairs: Sequence[Sequence[str]],
        teacher_thresh: float = 0.3,
        alpha: float = 5.0,
        ohem_ratio: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.pairs = _pairs(model_name_pairs)
        self.teacher_thresh = float(teacher_thresh)
        self.alpha = float(alpha)
        self.ohem_ratio = float(ohem_ratio)
        self.eps = float(eps)

    def target(self, teacher_shrink: Tensor) -> Tensor:
        """The dilated 0/1 float32 target [N,H,W] of a teacher shrink map [N,H,W].

        PaddleOCR's `cv2.dilate` with a 2x2 kernel (anchor at its centre (1,1)) takes the max over each pixel and its
        up/left neighbours, the border not counting: on a 0/1 map, a zero pad above and left then a 2x2 max pool
        of stride 1, the same values exactly (`dilate_reference` is the OpenCV form). As tensor ops it stays on the
        device and inside a compiled step's program."""
        binary = (teacher_shrink.detach() > self.teacher_thresh).astype("float32").unsqueeze(1)
        padded = paddle.nn.functional.pad(binary, [1, 0, 1, 0])  # left, right, top, bottom
        return paddle.nn.functional.max_pool2d(padded, kernel_size=2, stride=1).squeeze(1)

    def forward(self, predicts: Predicts, batch: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        mask = batch["shrink_mask"]
        terms = {}
        for student, teacher in self.pairs:
            student_shrink, _, student_binary = paddle.unbind(_maps(predicts, student), axis=1)  # see DBLoss
            target = self.target(_maps(predicts, teacher)[:, 0]).astype(student_shrink.dtype)
            shrink = self.alpha * balanced_dice_loss(
                student_shrink, target, mask, negative_ratio=self.ohem_ratio, eps=self.eps
            )
            binary = dice_loss(student_binary, target, mask, eps=self.eps)
            terms[f"dila_db_{student}_{teacher}"] = shrink + binary
        return _with_total(terms)


class DistillationDBLoss(nn.Layer):
    """The ground-truth DB loss on each named model (spec 3.3).

    Keys: `db_<model>_loss_shrink_maps`, `db_<model>_loss_threshold_maps`, `db_<model>_loss_binary_maps`, the
    per-model total `db_<model>`, and `loss` = the sum over models.

    Args:
        model_names: models to supervise, e.g. ["Student", "Student2"].
        alpha, beta, ohem_ratio, eps: as in `DBLoss`.
    """

    def __init__(
        self,
        model_names: Sequence[str],
        alpha: float = 5.0,
        beta: float = 10.0,
        ohem_ratio: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if isinstance(model_names, str) or not model_names:
            raise ValueError(f"model_names must be a non-empty list of names, got {model_names!r}")
        self.model_names = [str(n) for n in model_names]
        self.db_loss = DBLoss(alpha=alpha, beta=beta, ohem_ratio=ohem_ratio, eps=eps)

    def forward(self, predicts: Predicts, batch: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        totals: Dict[str, Tensor] = {}
        parts: Dict[str, Tensor] = {}
        for name in self.model_names:
            out = self.db_loss({"maps": _maps(predicts, name)}, batch)
            totals[f"db_{name}"] = out.pop("loss")
            parts.update({f"db_{name}_{key}": value for key, value in out.items()})
        return {**_with_total(totals), **parts}


def referenced_model_names(loss: nn.Layer) -> List[str]:
    """Every sub-model name a (combined) distillation loss reads, so a task can check them before training."""
    names: List[str] = []
    for layer in [loss, *loss.sublayers()]:
        for pair in getattr(layer, "pairs", []):
            names += list(pair)
        names += list(getattr(layer, "model_names", []))
    return list(dict.fromkeys(names))


class CombinedLoss(nn.Layer):
    """Weighted sum of component losses (spec 3.6) with every term kept for logging.

    Output: `loss` = Σ weight·component total; each component's unweighted total under the component's name;
    and every term of every component. A key produced twice raises, since logging would hide one of them.

    Args:
        losses: component name -> loss layer returning a dict with `loss` (e.g. {"dml": DMLLoss(...)}), summed in
            this order; a None component (an unfilled config slot) is left out.
        weights: component name -> weight; missing names weigh 1.0.
    """

    def __init__(self, losses: Mapping[str, nn.Layer], weights: Optional[Mapping[str, float]] = None) -> None:
        super().__init__()
        losses = {str(n): loss for n, loss in losses.items() if loss is not None}
        if not losses:
            raise ValueError("CombinedLoss needs at least one component")
        self.names = list(losses)
        weights = {n: w for n, w in (weights or {}).items() if w is not None}
        unknown = [str(n) for n in weights if str(n) not in self.names]
        if unknown:
            raise ValueError(f"weights for unknown components {unknown}; components: {self.names}")
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.names}
        for name, loss in losses.items():
            self.add_sublayer(str(name), loss)

    def forward(self, predicts: Predicts, batch: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = {}
        weighted = []
        for name in self.names:
            terms = dict(self._sub_layers[name](predicts, batch))
            total = terms.pop("loss")
            weighted.append(self.weights[name] * total)
            for key, value in [(name, total), *terms.items()]:
                if key in out or key == "loss":
                    raise ValueError(f"loss term {key!r} is produced twice (component {name!r})")
                out[key] = value
        return {"loss": paddle.add_n(weighted), **out}
