"""DBLoss and its building blocks on hand-computed 2x2 maps."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from ocrdet.losses.db_loss import DBLoss, balanced_dice_loss, dice_loss, mask_l1_loss

# One 2x2 image, pixels in row-major order (0,0) (0,1) (1,0) (1,1).
P = [[0.8, 0.6], [0.2, 0.4]]  # shrink probabilities
T = [[0.5, 0.3], [0.1, 0.7]]  # threshold map prediction
B = [[0.9, 0.5], [0.3, 0.1]]  # approximate binary map
SHRINK_MAP = [[1.0, 1.0], [0.0, 0.0]]
SHRINK_MASK = [[1.0, 1.0], [1.0, 0.0]]  # pixel (1,1) ignored
THRESH_MAP = [[0.6, 0.3], [0.4, 0.3]]
THRESH_MASK = [[1.0, 0.0], [1.0, 1.0]]  # pixel (0,1) ignored


def _t(values, stop_gradient: bool = True) -> paddle.Tensor:
    return paddle.to_tensor(np.asarray(values, dtype=np.float32), stop_gradient=stop_gradient)


def _inputs(shrink_map=SHRINK_MAP):
    maps = _t([[P, T, B]], stop_gradient=False)  # [1,3,2,2]
    batch = {
        "shrink_map": _t([shrink_map]),
        "shrink_mask": _t([SHRINK_MASK]),
        "threshold_map": _t([THRESH_MAP]),
        "threshold_mask": _t([THRESH_MASK]),
    }
    return maps, batch


def test_db_loss_matches_hand_computation():
    maps, batch = _inputs()
    out = DBLoss()({"maps": maps}, batch)

    # Shrink (P vs shrink map, under the shrink mask; pixel (1,1) masked out):
    #   Σ P·G·M = 0.8 + 0.6 = 1.4 ; Σ P·M = 0.8 + 0.6 + 0.2 = 1.6 ; Σ G·M = 2
    #   dice = 1 - 2·1.4 / 3.6 = 2/9 ; npos = 2, nneg = min(1, 3·2) = 1 -> factor 3 / (3 + 1e-6)
    shrink = 5.0 * (2.0 / 9.0) * 3.0 / (3.0 + 1e-6)
    # Threshold (T vs threshold map, pixel (0,1) masked out):
    #   |0.5-0.6| + |0.1-0.4| + |0.7-0.3| = 0.1 + 0.3 + 0.4 = 0.8 over 3 pixels
    threshold = 10.0 * 0.8 / 3.0
    # Binary (B vs shrink map, shrink mask): Σ B·G·M = 1.4 ; Σ B·M = 1.7 ; dice = 1 - 2.8/3.7 = 9/37
    binary = 9.0 / 37.0

    assert out["loss_shrink_maps"].item() == pytest.approx(shrink, rel=1e-5)
    assert out["loss_threshold_maps"].item() == pytest.approx(threshold, rel=1e-5)
    assert out["loss_binary_maps"].item() == pytest.approx(binary, rel=1e-5)
    assert out["loss"].item() == pytest.approx(shrink + threshold + binary, rel=1e-5)
    for key in ("loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps"):
        assert list(out[key].shape) == [], key


def test_alpha_beta_scale_their_terms():
    maps, batch = _inputs()
    out = DBLoss(alpha=1.0, beta=1.0)({"maps": maps}, batch)
    assert out["loss_shrink_maps"].item() == pytest.approx(2.0 / 9.0, rel=1e-5)
    assert out["loss_threshold_maps"].item() == pytest.approx(0.8 / 3.0, rel=1e-5)


def test_no_positive_pixel_gives_exactly_zero_shrink_loss():
    maps, batch = _inputs(shrink_map=[[0.0, 0.0], [0.0, 0.0]])
    out = DBLoss()({"maps": maps}, batch)
    assert out["loss_shrink_maps"].item() == 0.0
    # The binary Dice has no intersection: 1 - 0 / (Σ B·M + 0 + eps) = 1.
    assert out["loss_binary_maps"].item() == pytest.approx(1.0, abs=1e-6)


def test_backward_reaches_all_three_channels():
    maps, batch = _inputs()
    out = DBLoss()({"maps": maps}, batch)
    out["loss"].backward()
    grad = maps.grad.numpy()
    assert np.isfinite(grad).all()
    for channel in range(3):
        assert np.abs(grad[0, channel]).sum() > 0, channel
    # Masked-out pixels get no gradient: (1,1) of P and B, (0,1) of T.
    assert grad[0, 0, 1, 1] == 0 and grad[0, 2, 1, 1] == 0 and grad[0, 1, 0, 1] == 0


def test_balanced_dice_counts_truncate_and_cap_negatives():
    # 6 pixels, 3 positive, 3 negative, all predicted 0.5; a large eps makes the count factor visible.
    pred = _t([0.5] * 6)
    gt = _t([1, 1, 1, 0, 0, 0])
    mask = _t([1] * 6)
    # dice = 1 - 2·1.5 / (3 + 3 + 1) = 4/7 ; npos = 3 ; nneg = int(min(3, 0.5·3)) = 1 ; factor 4/(4+1)
    loss = balanced_dice_loss(pred, gt, mask, negative_ratio=0.5, eps=1.0)
    assert loss.item() == pytest.approx(4.0 / 7.0 * 4.0 / 5.0, rel=1e-6)
    # Ratio 3: nneg = min(3, 9) = 3 -> factor 6/7.
    loss = balanced_dice_loss(pred, gt, mask, negative_ratio=3.0, eps=1.0)
    assert loss.item() == pytest.approx(4.0 / 7.0 * 6.0 / 7.0, rel=1e-6)


def test_losses_sum_over_the_whole_batch_not_per_image():
    # Image A: one pixel with error 0.5; image B: three pixels with error 0.1.
    pred = _t([[0.5, 0.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.0]])
    gt = _t([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mask = _t([[1, 0, 0, 0], [1, 1, 1, 0]])
    # (0.5 + 0.3) / 4 = 0.2, not the per-image mean (0.5 + 0.1) / 2 = 0.3.
    assert mask_l1_loss(pred, gt, mask).item() == pytest.approx(0.2, rel=1e-5)
    # Dice: Σ p·g·m = 0 -> 1 regardless of the split.
    assert dice_loss(pred, gt, mask).item() == pytest.approx(1.0, abs=1e-6)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        dice_loss(_t([[0.5, 0.5]]), _t([0.5, 0.5]), _t([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        DBLoss()({"maps": _t(np.zeros((1, 1, 2, 2)))}, {})
