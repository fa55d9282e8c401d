"""Property-based tests (hypothesis): random and degenerate polygons through label parsing, the training transforms
and target generation, and random probability maps through DB post-processing. No crash; maps stay in range."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocrdet.data.labels import IGNORE_TEXTS, ZERO_AREA, pad_points, read_paddleocr_label_file
from ocrdet.data.transforms import EastRandomCrop, IaaAugment, MakeBorderMap, MakeShrinkMap
from ocrdet.data.labels import format_label_line
from ocrdet.postprocess.db_postprocess import DBPostProcess

CANVAS = 64
# 50 examples keep the suite fast; OCRDET_PROPERTY_EXAMPLES=2000 searches deeper. database=None: no .hypothesis folder
# in the checkout (a failure prints its reproducing example instead).
PROPERTY = settings(
    max_examples=int(os.environ.get("OCRDET_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Points = list[tuple[float, float]]

# A third of the range lies outside the 64x64 canvas on each side.
coord = st.floats(-CANVAS, 2 * CANVAS, allow_nan=False, width=32)
point = st.tuples(coord, coord)


@st.composite
def rectangle(draw: st.DrawFn) -> Points:
    x, y = draw(coord), draw(coord)
    w, h = draw(st.floats(1, CANVAS)), draw(st.floats(1, CANVAS))
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


@st.composite
def collinear(draw: st.DrawFn) -> Points:
    (x, y), (dx, dy) = draw(point), draw(st.tuples(st.floats(-3, 3), st.floats(-3, 3)))
    steps = draw(st.lists(st.floats(-10, 10), min_size=3, max_size=6))
    return [(x + t * dx, y + t * dy) for t in steps]


@st.composite
def with_duplicates(draw: st.DrawFn) -> Points:
    base = draw(st.lists(point, min_size=1, max_size=3))
    order = draw(st.lists(st.integers(0, len(base) - 1), min_size=3, max_size=8))
    return [base[i] for i in order]


@st.composite
def tiny(draw: st.DrawFn) -> Points:
    x, y = draw(point)
    offsets = draw(st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)), min_size=3, max_size=6))
    return [(x + dx, y + dy) for dx, dy in offsets]


@st.composite
def huge(draw: st.DrawFn) -> Points:
    far = st.floats(-1e5, 1e5, allow_nan=False)
    return draw(st.lists(st.tuples(far, far), min_size=3, max_size=6))


@st.composite
def bowtie(draw: st.DrawFn) -> Points:
    (x, y), w, h = draw(point), draw(st.floats(1, CANVAS)), draw(st.floats(1, CANVAS))
    return [(x, y), (x + w, y + h), (x + w, y), (x, y + h)]


polygon = st.one_of(
    st.lists(point, min_size=3, max_size=10), rectangle(), collinear(), with_duplicates(), tiny(), huge(), bowtie()
)
text = st.one_of(st.sampled_from(IGNORE_TEXTS), st.text(max_size=8))


def _degenerate(points: np.ndarray) -> bool:
    """The oracle, from shapely alone: not a valid polygon, or (within float rounding) no area."""
    shape = shapely.Polygon(points)
    return not shape.is_valid or shape.area < ZERO_AREA


@PROPERTY
@given(polys=st.lists(st.one_of(polygon, st.lists(point, max_size=2)), min_size=0, max_size=5), data=st.data())
def test_label_line_round_trip(polys: list[Points], data: st.DataObject) -> None:
    texts = [data.draw(text) for _ in polys]
    with tempfile.TemporaryDirectory() as folder:
        label = Path(folder) / "label.txt"
        label.write_text(format_label_line("img/a 1.jpg", [np.array(p).reshape(-1, 2) for p in polys], texts) + "\n")
        if any(len(p) < 3 for p in polys):  # as written: an error naming the line, never a silently empty region
            with pytest.raises(ValueError, match=r"label\.txt:1: .*at least 3 points"):
                read_paddleocr_label_file(label)
            return
        (parsed,) = read_paddleocr_label_file(label)
    annotation = parsed.annotation
    assert parsed.image_paths == ["img/a 1.jpg"] and annotation.texts == texts
    expected = pad_points([np.array(p, dtype=np.float32) for p in polys])
    np.testing.assert_array_equal(annotation.polys, expected)
    # Tags: the transcription, or the polygon's own degeneracy (checked on the stored float32 coordinates).
    tags = [t in IGNORE_TEXTS or _degenerate(np.array(p, np.float32).astype(np.float64)) for t, p in zip(texts, polys)]
    assert annotation.ignore_tags.tolist() == tags


def _check_targets(data: dict) -> None:
    for key in ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask"):
        assert data[key].shape == (CANVAS, CANVAS) and data[key].dtype == np.float32, key
    threshold = data["threshold_map"]
    assert np.isfinite(threshold).all() and threshold.min() >= 0.3 - 1e-6 and threshold.max() <= 0.7 + 1e-6
    for key in ("threshold_mask", "shrink_map", "shrink_mask"):
        assert set(np.unique(data[key]).tolist()) <= {0.0, 1.0}, key


def _parser_tags(polys: list[Points], drawn: list[bool]) -> np.ndarray:
    """Ignore tags as a label file gives them: the transcription's (`drawn`), or the polygon is degenerate."""
    return np.array([t or _degenerate(np.array(p, np.float32).astype(np.float64)) for p, t in zip(polys, drawn)])


@PROPERTY
@given(
    polys=st.lists(polygon, min_size=1, max_size=4),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    side=st.sampled_from([16, 48, 80]),
)
def test_training_transforms_and_targets(polys: list[Points], data: st.DataObject, seed: int, side: int) -> None:
    """IaaAugment -> EastRandomCrop -> MakeBorderMap -> MakeShrinkMap on any polygon a label file can hold."""
    rng = np.random.default_rng(seed)
    drawn = data.draw(st.lists(st.booleans(), min_size=len(polys), max_size=len(polys)))
    sample = {
        "image_path": "prop.png",
        "image": rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8),
        "polys": pad_points([np.array(p, dtype=np.float64) for p in polys]),
        "texts": ["w"] * len(polys),
        "ignore_tags": _parser_tags(polys, drawn),
    }
    sample = IaaAugment()(sample, rng)
    sample = EastRandomCrop(size=(CANVAS, CANVAS))(sample, rng)
    assert sample["image"].shape == (CANVAS, CANVAS, 3)
    assert len(sample["polys"]) == len(sample["texts"]) == len(sample["ignore_tags"])
    sample = MakeShrinkMap()(MakeBorderMap()(sample))
    _check_targets(sample)


@PROPERTY
@given(polys=st.lists(st.one_of(collinear(), with_duplicates(), bowtie(), tiny(), huge()), min_size=1, max_size=4))
def test_degenerate_and_extreme_polygons_through_the_targets(polys: list[Points]) -> None:
    """Straight into target generation, tagged as the label parser tags them: nothing crashes, maps stay in range,
    and the degenerate (ignored) regions add no text pixel."""
    tags = _parser_tags(polys, [False] * len(polys))
    sample = {
        "image": np.zeros((CANVAS, CANVAS, 3), np.uint8),
        "polys": pad_points([np.array(p, dtype=np.float64) for p in polys]),
        "ignore_tags": tags,
    }
    sample = MakeShrinkMap()(MakeBorderMap()(sample))
    _check_targets(sample)
    if tags.all():
        assert sample["shrink_map"].sum() == 0 and sample["threshold_mask"].sum() == 0


def test_untagged_single_point_polygon_adds_no_target() -> None:
    # labels tag such polygons ignore; one collapsing after augmentation still reaches the target makers
    point_polygon = np.full((1, 4, 2), 3.0)
    sample = {"image": np.zeros((8, 8, 3), np.uint8), "polys": point_polygon, "ignore_tags": np.array([False])}
    sample = MakeBorderMap()(sample)
    assert sample["threshold_mask"].sum() == 0
    np.testing.assert_array_equal(sample["threshold_map"], np.full((8, 8), 0.3, np.float32))


@st.composite
def probability_map(draw: st.DrawFn) -> np.ndarray:
    height, width = draw(st.integers(4, 64)), draw(st.integers(4, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["noise", "blobs", "ones", "zeros", "stripes"]))
    if kind == "noise":
        return rng.random((height, width), dtype=np.float32)
    if kind == "ones":
        return np.ones((height, width), np.float32)
    prob = np.zeros((height, width), np.float32)
    if kind == "blobs":
        for _ in range(rng.integers(1, 6)):
            y, x = rng.integers(0, height), rng.integers(0, width)
            prob[y : y + rng.integers(1, 20), x : x + rng.integers(1, 30)] = rng.uniform(0.5, 1.0)
    elif kind == "stripes":
        prob[:: rng.integers(2, 5)] = 1.0
    return prob


@PROPERTY
@given(
    prob=probability_map(),
    src=st.tuples(st.integers(1, 3000), st.integers(1, 3000)),
    box_type=st.sampled_from(["quad", "poly"]),
    score_mode=st.sampled_from(["fast", "slow"]),
    use_dilation=st.booleans(),
    unclip_ratio=st.floats(0.5, 3.0),
    box_thresh=st.floats(0.0, 0.9),
)
def test_db_postprocess_boxes_stay_inside_the_source_image(
    prob: np.ndarray,
    src: tuple[int, int],
    box_type: str,
    score_mode: str,
    use_dilation: bool,
    unclip_ratio: float,
    box_thresh: float,
) -> None:
    src_h, src_w = src
    post = DBPostProcess(
        thresh=0.3,
        box_thresh=box_thresh,
        unclip_ratio=unclip_ratio,
        use_dilation=use_dilation,
        score_mode=score_mode,
        box_type=box_type,
    )
    height, width = prob.shape
    shape = np.array([[src_h, src_w, height / src_h, width / src_w]])
    (result,) = post(prob[None, None], shape)
    boxes = list(result["points"])
    assert len(boxes) == len(result["scores"])
    if box_type == "quad":
        assert np.asarray(result["points"]).shape[1:] == (4, 2)
    for box, score in zip(boxes, result["scores"]):
        box = np.asarray(box)
        assert box.dtype == np.int32 and box.ndim == 2 and box.shape[1] == 2
        assert box[:, 0].min() >= 0 and box[:, 0].max() <= src_w and box[:, 1].min() >= 0 and box[:, 1].max() <= src_h
        assert box_thresh <= score <= 1.0


def test_degenerate_labels_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A fixed case of the round trip's warning: each degenerate region is named with its file and line."""
    caplog.set_level(logging.WARNING, logger="ocrdet.data.labels")
    with tempfile.TemporaryDirectory() as folder:
        label = Path(folder) / "label.txt"
        polys = [np.array([[0, 0], [4, 4], [8, 8]]), np.array([[0, 0], [9, 0], [9, 9]])]
        label.write_text(format_label_line("a.jpg", polys, ["x", "y"]) + "\n")
        (parsed,) = read_paddleocr_label_file(label)
    assert parsed.annotation.ignore_tags.tolist() == [True, False]
    assert caplog.messages == [f"{label}:1 region 0: degenerate polygon (zero area): marked ignore, as '###'"]
