"""Distillation losses on hand-made maps, with the arithmetic written out."""
from __future__ import annotations

import math

import numpy as np
import paddle
import pytest
from paddle import nn

from ocrdet.losses.db_loss import DBLoss
from ocrdet.losses.distillation import CombinedLoss, DilaDBLoss, DistillationDBLoss, DMLLoss, dilate_reference

EPS = 1e-5
P = [[0.5, 0.25], [0.75, 1.0]]
Q = [[0.5, 0.5], [0.25, 0.5]]


def t(values, stop_gradient: bool = True) -> paddle.Tensor:
    x = paddle.to_tensor(np.asarray(values, dtype="float32"))
    x.stop_gradient = stop_gradient
    return x


def sym_kl_pixel(p: float, q: float) -> float:
    """Spec 3.5 per pixel: ½·[q·log((q+e)/(p+e) + e) + p·log((p+e)/(q+e) + e)]."""
    return 0.5 * (q * math.log((q + EPS) / (p + EPS) + EPS) + p * math.log((p + EPS) / (q + EPS) + EPS))


def test_dml_on_hand_computed_2x2_maps() -> None:
    loss = DMLLoss([["Student", "Student2"]])
    out = loss({"Student": {"maps": t([[P]])}, "Student2": {"maps": t([[Q]])}})
    assert set(out) == {"loss", "dml_Student_Student2"}
    value = out["dml_Student_Student2"].item()
    # Without the epsilons each pixel is ½·(p−q)·ln(p/q):
    #   (.5,.5) -> 0;  (.25,.5) -> ½·.25·ln2;  (.75,.25) -> ½·.5·ln3;  (1,.5) -> ½·.5·ln2
    #   mean = (0.125·ln2 + 0.25·ln3 + 0.25·ln2) / 4 = (0.375·ln2 + 0.25·ln3) / 4 ≈ 0.1336458
    approx = (0.375 * math.log(2) + 0.25 * math.log(3)) / 4
    assert value == pytest.approx(approx, abs=1e-4)
    exact = sum(sym_kl_pixel(p, q) for p, q in zip(np.ravel(P), np.ravel(Q))) / 4
    assert value == pytest.approx(exact, rel=1e-5)
    assert out["loss"].item() == value
    assert out["loss"].shape == []


def test_dml_is_symmetric_and_a_batch_mean() -> None:
    # Sample 0 as above; sample 1 has identical maps, whose loss is mean(p)·ln(1+e) ≈ 0.625·1e-5.
    a = t([[P], [P]])
    b = t([[Q], [P]])
    forward = DMLLoss([["A", "B"]])({"A": {"maps": a}, "B": {"maps": b}})["dml_A_B"].item()
    swapped = DMLLoss([["B", "A"]])({"A": {"maps": a}, "B": {"maps": b}})["dml_B_A"].item()
    assert swapped == forward
    sample0 = sum(sym_kl_pixel(p, q) for p, q in zip(np.ravel(P), np.ravel(Q))) / 4
    sample1 = 0.625 * math.log(1 + EPS)
    assert forward == pytest.approx((sample0 + sample1) / 2, rel=1e-5)


def test_dml_of_identical_maps_is_the_epsilon_residue() -> None:
    maps = t([[P]])
    value = DMLLoss([["A", "B"]])({"A": {"maps": maps}, "B": {"maps": maps}})["loss"].item()
    # Each pixel: ½·2p·ln(1 + e) -> mean(p)·ln(1+e) = 0.625 · 9.99995e-6 = 6.2499688e-6 (not 0).
    np.testing.assert_allclose(value, 0.625 * math.log(1 + EPS), atol=1e-7)
    assert value > 0


def test_dml_reads_the_chosen_channel_and_feeds_both_models() -> None:
    noise = np.full((2, 2), 0.9, "float32")
    a = t([[noise, P, noise]], stop_gradient=False)  # channel 1 = threshold map
    b = t([[noise * 0.1, Q, noise]], stop_gradient=False)
    out = DMLLoss([["A", "B"]], maps_name="threshold")({"A": {"maps": a}, "B": {"maps": b}})
    exact = sum(sym_kl_pixel(p, q) for p, q in zip(np.ravel(P), np.ravel(Q))) / 4
    assert out["loss"].item() == pytest.approx(exact, rel=1e-5)
    out["loss"].backward()
    assert a.grad is not None and b.grad is not None
    assert np.all(a.grad.numpy()[:, [0, 2]] == 0) and np.any(a.grad.numpy()[:, 1] != 0)


def test_dml_rejects_unknown_maps_and_flat_pairs() -> None:
    with pytest.raises(ValueError, match="shrink"):
        DMLLoss([["A", "B"]], maps_name="thrink_maps")
    with pytest.raises(ValueError, match="pairs"):
        DMLLoss(["Student", "Student2"])


# Teacher shrink map: only (1,1)=0.8 and (3,3)=0.31 exceed 0.3 (0.29 does not).
TEACHER = [[0.0, 0.0, 0.0, 0.29],
           [0.0, 0.8, 0.0, 0.0],
           [0.0, 0.0, 0.0, 0.0],
           [0.0, 0.0, 0.0, 0.31]]
# cv2.dilate with a 2x2 kernel anchors at (1,1): a positive pixel spreads one step down and right; the corner
# pixel has nowhere to spread.
TARGET = [[0, 0, 0, 0],
          [0, 1, 1, 0],
          [0, 1, 1, 0],
          [0, 0, 0, 1]]


def test_dila_target_is_the_2x2_dilation_of_the_thresholded_teacher() -> None:
    target = DilaDBLoss([["Student", "Teacher"]]).target(t([TEACHER]))
    assert target.dtype == paddle.float32
    np.testing.assert_array_equal(target.numpy(), np.asarray([TARGET], "float32"))


def test_dila_target_equals_opencv_dilate_on_random_maps() -> None:
    """The tensor max-pool form equals PaddleOCR's cv2.dilate exactly (0/1 values), borders and odd sizes included."""
    rng = np.random.default_rng(3)
    maps = rng.random((3, 17, 23)).astype("float32")
    got = DilaDBLoss([["Student", "Teacher"]], teacher_thresh=0.7).target(paddle.to_tensor(maps)).numpy()
    np.testing.assert_array_equal(got, dilate_reference(maps, 0.7))
    assert 0 < got.mean() < 1


def test_dila_db_loss_against_hand_computed_dice() -> None:
    mask = np.ones((4, 4), "float32")
    mask[2, 2] = 0  # one target pixel is ignored: 4 positives and 11 negatives remain
    shrink = np.full((4, 4), 0.5, "float32")
    binary = np.asarray(TARGET, "float32")
    binary[0, 0] = 0.5
    thresh = np.zeros((4, 4), "float32")
    student = t([[shrink, thresh, binary]], stop_gradient=False)
    teacher = t([[TEACHER]], stop_gradient=False)  # [N,1,H,W]: an eval-mode teacher's output

    out = DilaDBLoss([["Student", "Teacher"]])(
        {"Student": {"maps": student}, "Teacher": {"maps": teacher}}, {"shrink_mask": t([mask])}
    )
    assert set(out) == {"loss", "dila_db_Student_Teacher"}
    # Shrink: Σ(P·G·M) = .5·4 = 2, Σ(P·M) = .5·15 = 7.5, Σ(G·M) = 4 -> dice = 1 − 4/11.5.
    #   Balanced: npos 4, nneg min(11, 3·4) = 11 -> ×15/(15+1e-6); weighted by alpha 5.
    # Binary: Σ(B·G·M) = 4, Σ(B·M) = 4.5, Σ(G·M) = 4 -> dice = 1 − 8/8.5.
    expected = 5 * (1 - 4 / (11.5 + 1e-6)) * 15 / (15 + 1e-6) + (1 - 8 / (8.5 + 1e-6))
    assert out["dila_db_Student_Teacher"].item() == pytest.approx(expected, rel=1e-6)
    assert out["loss"].item() == out["dila_db_Student_Teacher"].item()

    out["loss"].backward()
    assert student.grad is not None
    assert teacher.grad is None  # the target comes from the host: no gradient into the teacher


def _batch(n: int = 2, size: int = 8) -> dict:
    rng = np.random.RandomState(0)
    shrink_map = np.zeros((n, size, size), "float32")
    shrink_map[:, 2:5, 2:6] = 1
    return {
        "shrink_map": t(shrink_map),
        "shrink_mask": t(np.ones((n, size, size))),
        "threshold_map": t(rng.uniform(0.3, 0.7, (n, size, size))),
        "threshold_mask": t((rng.rand(n, size, size) > 0.5).astype("float32")),
    }


def _predicts(names, n: int = 2, size: int = 8) -> dict:
    rng = np.random.RandomState(1)
    return {name: {"maps": t(rng.uniform(0.01, 0.99, (n, 3, size, size)))} for name in names}


def test_distillation_db_loss_is_db_loss_per_model() -> None:
    batch, predicts = _batch(), _predicts(["Student", "Student2"])
    out = DistillationDBLoss(["Student", "Student2"])(predicts, batch)
    parts = ("loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps")
    assert set(out) == {"loss"} | {f"db_{m}" for m in ("Student", "Student2")} | {
        f"db_{m}_{p}" for m in ("Student", "Student2") for p in parts
    }
    total = 0.0
    for name in ("Student", "Student2"):
        ref = DBLoss()(predicts[name], batch)
        assert out[f"db_{name}"].item() == ref["loss"].item()
        for part in parts:
            assert out[f"db_{name}_{part}"].item() == ref[part].item()
        total += ref["loss"].item()
    assert out["loss"].item() == pytest.approx(total, rel=1e-6)


class Const(nn.Layer):
    """A component loss returning fixed values."""

    def __init__(self, **terms: float) -> None:
        super().__init__()
        self.terms = terms

    def forward(self, predicts, batch):
        return {k: paddle.to_tensor(v, dtype="float32") for k, v in self.terms.items()}


def test_combined_loss_weighted_sum_is_exact() -> None:
    components = {"x": Const(loss=1.5, a=1.0, b=0.5), "y": Const(loss=2.0, c=2.0)}
    loss = CombinedLoss(components, weights={"x": 2.0, "y": 0.25})
    out = loss({}, {})
    assert out["loss"].item() == 2.0 * 1.5 + 0.25 * 2.0  # 3.5, exact in binary
    assert {k: v.item() for k, v in out.items()} == {"loss": 3.5, "x": 1.5, "a": 1.0, "b": 0.5, "y": 2.0, "c": 2.0}


def test_combined_cml_loss_has_every_term_as_0d_tensors() -> None:
    batch = _batch()
    predicts = _predicts(["Student", "Student2"])
    predicts["Teacher"] = {"maps": predicts["Student"]["maps"][:, :1] * 0.9}
    components = {
        "dila_db": DilaDBLoss([["Student", "Teacher"], ["Student2", "Teacher"]]),
        "dml": DMLLoss([["Student", "Student2"]]),
        "db": DistillationDBLoss(["Student", "Student2"]),
    }
    out = CombinedLoss(components, weights={"dml": 0.5})(predicts, batch)
    separate = {name: c(predicts, batch) for name, c in components.items()}
    expected_keys = {"loss"} | set(components)
    for name, terms in separate.items():
        expected_keys |= set(terms) - {"loss"}
    assert set(out) == expected_keys
    assert {"dila_db_Student_Teacher", "dila_db_Student2_Teacher", "dml_Student_Student2",
            "db_Student", "db_Student2_loss_binary_maps"} <= set(out)
    assert all(v.shape == [] for v in out.values())
    weighted = separate["dila_db"]["loss"].item() + 0.5 * separate["dml"]["loss"].item() + separate["db"]["loss"].item()
    assert out["loss"].item() == pytest.approx(weighted, rel=1e-6)


def test_combined_loss_rejects_unknown_weights_and_duplicate_terms() -> None:
    with pytest.raises(ValueError, match="unknown components"):
        CombinedLoss({"x": Const(loss=1.0)}, weights={"z": 1.0})
    with pytest.raises(ValueError, match="'a'.*twice"):
        CombinedLoss({"x": Const(loss=1.0, a=1.0), "y": Const(loss=1.0, a=2.0)})({}, {})
