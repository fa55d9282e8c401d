"""The vectorised DB targets against a slow reference written straight from the spec (4.3.6, 4.3.7): one pixel and one
edge at a time in plain Python floats, the polygon offsets with pyclipper and the fills with cv2.fillPoly. It shares no
code with ocrdet.data.transforms."""
from __future__ import annotations

import math
import sys

import cv2
import numpy as np
import pyclipper
import pytest

from ocrdet.data.transforms import MakeBorderMap, MakeShrinkMap

SIZE = 48
RATIO, THRESH_MIN, THRESH_MAX, MIN_TEXT_SIZE = 0.4, 0.3, 0.7, 8
SHRINK_RATIOS = (0.4, 0.8)  # arange(0.4, 1, 0.4); PaddleOCR's appended 1.0 is dead code


def area_as_coded(poly: list[tuple[float, float]]) -> float:
    """PaddleOCR MakeShrinkMap.polygon_area, loop for loop (negative for clockwise on screen)."""
    area, previous = 0.0, poly[-1]
    for point in poly:
        area += point[0] * previous[1] - point[1] * previous[0]
        previous = point
    return area / 2.0


def perimeter(poly: list[tuple[float, float]]) -> float:
    return sum(math.dist(poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly)))


def offset(poly: list[tuple[float, float]], distance: float) -> list:
    clipper = pyclipper.PyclipperOffset()
    clipper.AddPath(poly, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return clipper.Execute(distance)


def nan_to_num(value: float) -> float:
    if math.isnan(value):
        return 0.0
    if math.isinf(value):
        return math.copysign(sys.float_info.max, value)
    return value


def divide(numerator: float, denominator: float) -> float:
    """IEEE division, as numpy does it (Python raises on zero)."""
    if denominator != 0:
        return numerator / denominator
    return math.nan if numerator == 0 or math.isnan(numerator) else math.copysign(math.inf, numerator)


def sqrt(value: float) -> float:
    return math.nan if math.isnan(value) or value < 0 else math.sqrt(value)


def edge_distance(x: float, y: float, start: tuple[float, float], end: tuple[float, float]) -> float:
    """Spec 4.3.6 step 3 for one pixel and one edge."""
    d1 = (x - start[0]) ** 2 + (y - start[1]) ** 2
    d2 = (x - end[0]) ** 2 + (y - end[1]) ** 2
    # The polygon is float32 and |e|^2 involves polygon coordinates only, so it is float32 arithmetic, as in the DB
    # reference; the pixel terms are float64. It matters: near an edge sqrt(1 - c^2) amplifies rounding, and c
    # rounded just above 1 makes the distance NaN (the pixel then keeps its canvas value).
    dx, dy = np.float32(start[0]) - np.float32(end[0]), np.float32(start[1]) - np.float32(end[1])
    edge = float(dx * dx + dy * dy)
    cosine = divide(edge - d1 - d2, 2 * sqrt(d1 * d2))
    if cosine < 0:  # False for NaN
        return sqrt(min(d1, d2))
    square_sine = nan_to_num(1 - cosine**2)
    return sqrt(divide(d1 * d2 * square_sine, edge))


def reference_border_map(polys: list, ignores: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    canvas = np.zeros((SIZE, SIZE))
    mask = np.zeros((SIZE, SIZE), np.float32)
    for poly, ignored in zip(polys, ignores):
        poly = [(float(x), float(y)) for x, y in poly]
        area = abs(area_as_coded(poly))
        if ignored or area <= 0:
            continue
        distance = area * (1 - RATIO**2) / perimeter(poly)
        pieces = offset(poly, distance)
        if not pieces:  # a sub-pixel polygon vanishes in pyclipper's integers (PaddleOCR raises and redraws the sample)
            continue
        dilated = np.array(pieces[0])
        cv2.fillPoly(mask, [dilated.astype(np.int32)], 1.0)
        (x_min, y_min), (x_max, y_max) = dilated.min(axis=0), dilated.max(axis=0)
        # distances are measured in the dilated box's coordinates, the polygon shifted there and kept in float32 (as
        # PaddleOCR does): the shift rounds when the box starts left of or above the canvas
        local = [(float(np.float32(px - x_min)), float(np.float32(py - y_min))) for px, py in poly]
        for y in range(max(y_min, 0), min(y_max, SIZE - 1) + 1):
            for x in range(max(x_min, 0), min(x_max, SIZE - 1) + 1):
                scaled = [
                    edge_distance(x - x_min, y - y_min, local[i], local[(i + 1) % len(poly)]) / distance
                    for i in range(len(poly))
                ]
                if any(math.isnan(v) for v in scaled):
                    continue  # NaN propagates through clip and min, and fmax then keeps the canvas
                nearest = min(min(max(v, 0.0), 1.0) for v in scaled)
                canvas[y, x] = max(canvas[y, x], 1 - nearest)
    return canvas * (THRESH_MAX - THRESH_MIN) + THRESH_MIN, mask


def reference_shrink_map(polys: list, ignores: list[bool]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    gt = np.zeros((SIZE, SIZE), np.float32)
    mask = np.ones((SIZE, SIZE), np.float32)
    ignores = list(ignores)
    for i, poly in enumerate(polys):
        poly = [(min(max(float(x), 0.0), SIZE - 1.0), min(max(float(y), 0.0), SIZE - 1.0)) for x, y in poly]
        area = area_as_coded(poly)
        if abs(area) < 1:
            ignores[i] = True
        if area > 0:
            poly = poly[::-1]
        points = np.array(poly, np.float32).astype(np.int32)
        height = max(p[1] for p in poly) - min(p[1] for p in poly)
        width = max(p[0] for p in poly) - min(p[0] for p in poly)
        if ignores[i] or min(height, width) < MIN_TEXT_SIZE:
            cv2.fillPoly(mask, [points], 0.0)
            ignores[i] = True
            continue
        pieces = []
        for ratio in SHRINK_RATIOS:
            pieces = offset(poly, -abs(area) * (1 - ratio**2) / perimeter(poly))
            if len(pieces) == 1:
                break
        if not pieces:
            cv2.fillPoly(mask, [points], 0.0)
            ignores[i] = True
            continue
        for piece in pieces:
            cv2.fillPoly(gt, [np.array(piece).astype(np.int32)], 1.0)
    return gt, mask, ignores


def vectorised(polys: list, ignores: list[bool]) -> dict:
    """The two label makers as the pipeline runs them: border map first, on the unclipped polygons."""
    data = {
        "image": np.zeros((SIZE, SIZE, 3), np.uint8),
        "polys": np.array(polys, np.float32),
        "ignore_tags": np.array(ignores, bool),
    }
    data = MakeBorderMap(RATIO, THRESH_MIN, THRESH_MAX)(data)
    return MakeShrinkMap(RATIO, MIN_TEXT_SIZE)(data)


def assert_matches_reference(polys: list, ignores: list[bool]) -> None:
    polys = [np.array(p, np.float32).tolist() for p in polys]  # the float32 values both sides see
    longest = max(len(p) for p in polys)
    padded = [p + [p[-1]] * (longest - len(p)) for p in polys]  # as the label parser pads
    out = vectorised(padded, ignores)
    threshold_map, threshold_mask = reference_border_map(padded, ignores)
    np.testing.assert_allclose(out["threshold_map"], threshold_map, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out["threshold_mask"], threshold_mask)
    shrink_map, shrink_mask, tags = reference_shrink_map(padded, ignores)
    np.testing.assert_array_equal(out["shrink_map"], shrink_map)
    np.testing.assert_array_equal(out["shrink_mask"], shrink_mask)
    assert out["ignore_tags"].tolist() == tags


def rect(x0: float, y0: float, x1: float, y1: float) -> list:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> list:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    corners = np.array(rect(-w / 2, -h / 2, w / 2, h / 2)) @ rotation.T + [cx, cy]
    return corners.tolist()


HAND_MADE = {
    "rectangle": ([rect(8, 10, 38, 26)], [False]),
    "rotated-quad": ([rotated_rect(24, 23, 30, 12, 30)], [False]),
    "concave-6-point": ([[[6, 6], [40, 6], [40, 20], [24, 20], [24, 40], [6, 40]]], [False]),
    "partly-outside": ([rect(-10, 28, 20, 60), [[30, -6], [56, 2], [50, 20], [28, 12]]], [False, False]),
    "overlapping": ([rect(5, 5, 30, 25), rotated_rect(26, 22, 28, 14, -20)], [False, False]),
    "ignored": ([rect(4, 4, 40, 18), rect(6, 26, 42, 44)], [True, False]),
    # A 5-point label padded to 6 repeats its last vertex: a zero-length edge, whose distance is NaN on that vertex.
    "padded-with-nan": ([rect(10, 8, 38, 30), [[6, 34], [20, 33], [40, 36], [40, 46], [6, 45]]], [False, False]),
    "too-small-and-tiny-area": ([rect(4, 4, 40, 10), [[20, 30], [21, 30], [21, 30.5], [20, 30.5]]], [False, False]),
    # Two squares joined by a thin neck: the first shrink ratio splits it in two.
    "dumbbell": (
        [[[2, 2], [20, 2], [20, 10], [28, 10], [28, 2], [46, 2], [46, 22], [28, 22], [28, 14], [20, 14], [20, 22],
          [2, 22]]],
        [False],
    ),
    "counter-clockwise": ([rect(8, 10, 38, 26)[::-1]], [False]),
}


@pytest.mark.parametrize("case", HAND_MADE, ids=list(HAND_MADE))
def test_hand_made_polygons_match_the_reference(case):
    polys, ignores = HAND_MADE[case]
    assert_matches_reference(polys, ignores)


def random_polygon(rng: np.random.Generator) -> list:
    """A star-shaped polygon (often concave when it has more than 4 points) around a centre that may lie near or
    beyond the canvas edge; integer vertices half the time, so that pixels fall exactly on vertices and edges."""
    points = 4 if rng.random() < 0.6 else int(rng.integers(5, 9))
    centre = rng.uniform(-4, SIZE + 4, 2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = rng.uniform(4, 22, points)
    poly = centre + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    poly = np.round(poly) if rng.random() < 0.5 else poly
    return (poly if rng.random() < 0.7 else poly[::-1]).tolist()  # either orientation


@pytest.mark.parametrize("seed", range(20))
def test_random_polygons_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 4))
    assert_matches_reference([random_polygon(rng) for _ in range(count)], (rng.random(count) < 0.2).tolist())
