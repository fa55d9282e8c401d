"""DB (Differentiable Binarization) training loss, PP-OCRv3 flavour (spec section 3.1-3.2).

All reductions run over the whole batch, as in PaddleOCR. Every function returns a 0-D tensor and
keeps the count arithmetic on the device, so a training step never waits on a host sync here.
"""
from __future__ import annotations

from typing import Dict

import paddle
from paddle import Tensor


def _check_same_shape(pred: Tensor, gt: Tensor, mask: Tensor) -> None:
    # Broadcasting would silently turn a [N,1,H,W] vs [N,H,W] mix-up into a wrong loss.
    if list(pred.shape) != list(gt.shape) or list(pred.shape) != list(mask.shape):
        raise ValueError(
            f"pred, gt and mask must have the same shape, got {list(pred.shape)}, "
            f"{list(gt.shape)} and {list(mask.shape)}"
        )


def dice_loss(pred: Tensor, gt: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Masked Dice loss ``1 - 2·Σ(p·g·m) / (Σ(p·m) + Σ(g·m) + eps)`` over the whole batch.

    Args:
        pred: predicted probabilities, any shape.
        gt: target map, same shape as ``pred``.
        mask: 0/1 weights of the pixels that count, same shape as ``pred``.
        eps: keeps the ratio finite when the mask is empty (the loss is then 1).

    Returns:
        A 0-D tensor.
    """
    _check_same_shape(pred, gt, mask)
    intersection = paddle.sum(pred * gt * mask)
    union = paddle.sum(pred * mask) + paddle.sum(gt * mask) + eps
    return 1.0 - 2.0 * intersection / union


def mask_l1_loss(pred: Tensor, gt: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Masked mean absolute error ``Σ(|p - g|·m) / (Σm + eps)`` over the whole batch (0-D)."""
    _check_same_shape(pred, gt, mask)
    return paddle.sum(paddle.abs(pred - gt) * mask) / (paddle.sum(mask) + eps)


def balanced_dice_loss(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor,
    negative_ratio: float = 3.0,
    eps: float = 1e-6,
) -> Tensor:
    """PaddleOCR's ``BalanceLoss`` with ``main_loss_type='DiceLoss'``, without its sort.

    PaddleOCR spreads the scalar Dice value ``d`` over ``npos`` positive and the ``nneg`` hardest
    negative pixels and averages them back: ``(npos·d + nneg·d) / (npos + nneg + eps)``, with
    ``npos = int(Σ g·m)`` and ``nneg = int(min(Σ (1-g)·m, negative_ratio·npos))``. Every negative
    entry equals ``d``, so the OHEM sort selects nothing and the result is ``d`` times a count
    factor: just below 1 when the batch has a positive pixel, exactly 0 when it has none
    (``loss_shrink_maps == 0`` in PaddleOCR logs, issue #13159).

    The identity assumes 0/1 targets and masks, which is what the DB shrink map and mask are. With
    soft values PaddleOCR would weight the positive part by the untruncated ``Σ g·m`` instead.

    Args:
        pred: predicted shrink probabilities.
        gt: 0/1 shrink map, same shape as ``pred``.
        mask: 0/1 shrink mask, same shape as ``pred``.
        negative_ratio: the OHEM ratio (``ohem_ratio``); it only matters through ``nneg``.
        eps: the Dice epsilon and the count-factor epsilon (both 1e-6 in PaddleOCR).

    Returns:
        A 0-D tensor.
    """
    d = dice_loss(pred, gt, mask, eps=eps)
    # Counts are detached device tensors: PaddleOCR's int() casts carry no gradient, and floor()
    # reproduces the truncation of these non-negative sums without a host round trip.
    gt, mask = gt.detach(), mask.detach()
    npos = paddle.floor(paddle.sum(gt * mask))
    nneg = paddle.floor(paddle.minimum(paddle.sum((1.0 - gt) * mask), npos * negative_ratio))
    count = npos + nneg
    return d * (count / (count + eps))


class DBLoss(paddle.nn.Layer):
    """``L = alpha·Balance(P, Gs; Ms) + beta·MaskL1(T, Gt; Mt) + Dice(B, Gs; Ms)`` (spec 3.2).

    Args:
        alpha: weight of the balanced Dice loss on the shrink (probability) map P.
        beta: weight of the masked L1 loss on the threshold map T.
        ohem_ratio: negative/positive ratio of the balanced loss (no effect beyond its count factor).
        eps: epsilon of every Dice / L1 denominator.
    """

    def __init__(
        self,
        alpha: float = 5.0,
        beta: float = 10.0,
        ohem_ratio: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.ohem_ratio = float(ohem_ratio)
        self.eps = float(eps)

    def forward(self, predicts: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Compute the DB loss.

        Args:
            predicts: ``{"maps": [N,3,H,W]}`` with channels (P shrink, T threshold, B binary).
            batch: ``shrink_map``, ``shrink_mask``, ``threshold_map``, ``threshold_mask``, each [N,H,W].

        Returns:
            0-D tensors ``loss``, ``loss_shrink_maps`` (×alpha), ``loss_threshold_maps`` (×beta)
            and ``loss_binary_maps``.
        """
        maps = predicts["maps"]
        if len(maps.shape) != 4 or maps.shape[1] != 3:
            raise ValueError(f"predicts['maps'] must be [N,3,H,W] (P,T,B), got {list(maps.shape)}")
        # unbind, not three slices: its backward writes the gradient once (a stack), where each slice's backward
        # fills a full-size zero tensor: ~0.4 vs ~0.17 s per step at 640 x 8, the same gradient exactly.
        shrink_pred, threshold_pred, binary_pred = paddle.unbind(maps, axis=1)
        shrink_map, shrink_mask = batch["shrink_map"], batch["shrink_mask"]

        loss_shrink = self.alpha * balanced_dice_loss(
            shrink_pred, shrink_map, shrink_mask, negative_ratio=self.ohem_ratio, eps=self.eps
        )
        loss_threshold = self.beta * mask_l1_loss(
            threshold_pred, batch["threshold_map"], batch["threshold_mask"], eps=self.eps
        )
        loss_binary = dice_loss(binary_pred, shrink_map, shrink_mask, eps=self.eps)
        return {
            # add_n, not `a + b + c`: traced by to_static, the chained add reuses `loss_shrink`'s buffer in place,
            # so a compiled step reported the total as the shrink term (Paddle 3.3.1; the gradient was right)
            "loss": paddle.add_n([loss_shrink, loss_threshold, loss_binary]),
            "loss_shrink_maps": loss_shrink,
            "loss_threshold_maps": loss_threshold,
            "loss_binary_maps": loss_binary,
        }
