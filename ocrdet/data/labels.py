"""Ground-truth parsing: official ICDAR2015 gt files and PaddleOCR det label lines, into one `Annotation` shape.

Unreadable input (bad UTF-8, no tab, broken JSON, too few fields, non-numeric or non-finite coordinates, an odd
coordinate count, fewer than 3 points as written) raises ValueError naming `file:line`, so a broken label file fails at
dataset construction, not mid-epoch. Fewer than 3 points as written is an error rather than a degenerate region
because it usually means a different format (two box corners) and ignoring every box would silently train on nothing.

A well-formed but degenerate polygon (fewer than 3 distinct points, zero area, self-intersecting) is kept and marked
ignored (like `###`: masked in training, don't-care in evaluation), with a warning naming `file:line`: dropping it
would either lose the image or silently remove a ground-truth box.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import shapely

logger = logging.getLogger(__name__)

# Transcriptions that mark a "don't care" region (PaddleOCR DetLabelEncode treats both as ignored).
IGNORE_TEXTS = ("###", "*")
ICDAR_COORDS = 8
# Below this |area| (px^2) a polygon is "zero area": collinear float points leave rounding residue, not area.
ZERO_AREA = 1e-6


@dataclass
class Annotation:
    """The regions of one image. `polys` is float32 [n, K, 2] (K padded to the longest), `ignore_tags` bool [n].

    For messages: `origin` is the label file (and line, when one line holds the image's regions), `region_lines`
    the line of each region when they have one each (ICDAR gt files); strings are built on demand, since label files
    may hold millions of regions."""

    polys: np.ndarray
    texts: list[str]
    ignore_tags: np.ndarray
    origin: str = ""
    region_lines: list[int] | None = None

    def region_origin(self, index: int) -> str:
        if self.region_lines is not None:
            return f"{self.origin}:{self.region_lines[index]}"
        return f"{self.origin} region {index}" if self.origin else f"region {index}"


@dataclass
class LabelLine:
    """One PaddleOCR label line: candidate image paths (one is picked per load), their annotation and `file:line`."""

    image_paths: list[str]
    annotation: Annotation
    origin: str = ""


def pad_points(polys: list[np.ndarray]) -> np.ndarray:
    """Stack point lists of different lengths into [n, K, 2] float32, repeating each list's last point (as
    DetLabelEncode does)."""
    if not polys:
        return np.zeros((0, 4, 2), np.float32)
    longest = max(len(p) for p in polys)
    padded = [np.concatenate([p, np.repeat(p[-1:], longest - len(p), axis=0)]) for p in polys]
    return np.stack(padded).astype(np.float32)


def degenerate_reasons(polys: np.ndarray) -> list[str | None]:
    """Per polygon of a padded [n, K, 2] array: why it cannot be a text region, or None. The padding repeats points,
    which changes neither area nor validity."""
    polys = np.asarray(polys, dtype=np.float64)
    reasons: list[str | None] = [None] * len(polys)
    if len(polys) == 0:
        return reasons
    x, y = polys[..., 0], polys[..., 1]
    areas = np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)) / 2
    valid = shapely.is_valid(shapely.polygons(polys))  # vectorised: label files may hold millions of regions
    for i in np.flatnonzero(~valid | (areas < ZERO_AREA)):
        points = np.unique(polys[i], axis=0)
        if len(points) < 3:
            reasons[i] = "fewer than 3 distinct points"
        elif np.linalg.matrix_rank(points - points.mean(axis=0)) < 2:
            reasons[i] = "zero area"  # collinear; a bowtie also has zero signed area but is named for its crossing
        elif not valid[i]:
            reasons[i] = "self-intersecting"
        else:
            reasons[i] = "zero area"
    return reasons


def make_annotation(
    polys: list[np.ndarray], texts: list[str], origin: str = "", region_lines: list[int] | None = None
) -> Annotation:
    """Annotation with ignore tags from the transcriptions, plus degenerate polygons (logged)."""
    tags = np.array([t in IGNORE_TEXTS for t in texts], dtype=bool)
    annotation = Annotation(pad_points(polys), list(texts), tags, origin, region_lines)
    for i, reason in enumerate(degenerate_reasons(annotation.polys)):
        if reason is not None:
            logger.warning("%s: degenerate polygon (%s): marked ignore, as '###'", annotation.region_origin(i), reason)
            annotation.ignore_tags[i] = True
    return annotation


def _finite(values: list, where: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: non-numeric coordinate in {values!r}") from None
    # bools are ints to NumPy and NaN/Infinity are valid JSON to Python: neither is a coordinate.
    if any(isinstance(v, bool) for v in values) or not np.isfinite(array).all():
        raise ValueError(f"{where}: non-numeric coordinate in {values!r}")
    return array


def _points(values: Any, where: str) -> np.ndarray:
    """Validate a list of [x, y] pairs (at least 3) and return it as float64 [K, 2]."""
    if not isinstance(values, list) or not all(isinstance(p, list) for p in values):
        raise ValueError(f"{where}: points must be a list of [x, y] pairs, got {values!r}")
    flat = [c for p in values for c in p]
    if len(flat) % 2:
        raise ValueError(f"{where}: odd coordinate count ({len(flat)} values); points must be [x, y] pairs")
    if any(len(p) != 2 for p in values):
        raise ValueError(f"{where}: points must be [x, y] pairs, got {values!r}")
    points = _finite(flat, where).reshape(-1, 2)
    if len(points) < 3:
        raise ValueError(f"{where}: a polygon needs at least 3 points, got {len(points)}")
    return points


def _lines(path: str | Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines, UTF-8 with an optional BOM, CRLF or LF. Splits on '\n' only (str.splitlines would
    also split on control characters that may occur inside a transcription); decodes per line so that bad bytes are
    reported with their line."""
    numbered = []
    for n, raw in enumerate(Path(path).read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}:{n}: not UTF-8 ({error.reason} at byte {error.start})") from None
        if line.strip():
            numbered.append((n, line))
    return numbered


def parse_icdar2015_gt(path: str | Path) -> Annotation:
    """Read `x1,y1,...,x4,y4,transcription` lines; commas may occur in the transcription."""
    polys, texts, line_numbers = [], [], []
    for line_no, line in _lines(path):
        fields = line.split(",")
        where = f"{path}:{line_no}"
        if len(fields) <= ICDAR_COORDS:
            raise ValueError(f"{where}: expected 8 coordinates and a transcription, got {len(fields)} fields")
        coords = [f.strip() for f in fields[:ICDAR_COORDS]]
        try:
            numbers = [float(c) for c in coords]
        except ValueError:
            raise ValueError(f"{where}: non-numeric coordinate in {coords}") from None
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"{where}: non-numeric coordinate in {coords}")
        polys.append(np.array(numbers).reshape(-1, 2))
        texts.append(",".join(fields[ICDAR_COORDS:]))
        line_numbers.append(line_no)
    return make_annotation(polys, texts, str(path), line_numbers)


def parse_paddleocr_line(line: str, where: str) -> LabelLine:
    """Parse `path<TAB>json` where json lists {"transcription", "points"}; the path may be a JSON list of paths."""
    name, tab, payload = line.partition("\t")
    if not tab:
        raise ValueError(f"{where}: expected '<image path>\\t<json>', found no tab")
    try:
        regions = json.loads(payload)
        paths = json.loads(name) if name.lstrip().startswith("[") else [name]
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: unreadable JSON ({error})") from None
    if not isinstance(regions, list) or not all(isinstance(r, dict) and "points" in r for r in regions):
        raise ValueError(f"{where}: the JSON must be a list of {{'transcription', 'points'}} objects")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"{where}: the image path field must be a path or a JSON list of paths")
    polys = [_points(r["points"], where) for r in regions]
    texts = [str(r.get("transcription", "")) for r in regions]
    return LabelLine(image_paths=paths, annotation=make_annotation(polys, texts, where), origin=where)


def read_paddleocr_label_file(path: str | Path) -> list[LabelLine]:
    """All non-blank lines of a PaddleOCR det label file."""
    return [parse_paddleocr_line(line, f"{path}:{line_no}") for line_no, line in _lines(path)]


# Writing: PaddleOCR det label files and detection results (tools/infer_det's format).
def _json_number(value: float) -> int | float:
    """Integral coordinates as ints (PaddleOCR's label files hold ints), others unchanged."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _json_points(polygon: np.ndarray | Sequence[Sequence[float]]) -> list[list[int | float]]:
    return [[_json_number(x), _json_number(y)] for x, y in np.asarray(polygon, dtype=np.float64).reshape(-1, 2)]


def format_label_line(
    image_name: str, polygons: Iterable[np.ndarray | Sequence[Sequence[float]]], texts: Sequence[str] | None = None
) -> str:
    """One line without its newline: `image_name<TAB><JSON list>`. With `texts`, each region is
    `{"transcription": text, "points": [[x, y], ...]}` (a label file); without, `{"points": ...}` (det results)."""
    if "\t" in image_name or "\n" in image_name:
        raise ValueError(f"{image_name!r}: an image name cannot hold a tab or a newline in this format")
    polygons = list(polygons)
    if texts is not None and len(texts) != len(polygons):
        raise ValueError(f"{len(texts)} transcriptions for {len(polygons)} polygons")
    regions = [
        {"points": _json_points(p)} if texts is None else {"transcription": str(t), "points": _json_points(p)}
        for p, t in zip(polygons, texts if texts is not None else [None] * len(polygons))
    ]
    return f"{image_name}\t{json.dumps(regions, ensure_ascii=False)}"


def _unpadded(polygon: np.ndarray) -> np.ndarray:
    """Drop the repeated trailing points `pad_points` added to stack polygons of different lengths."""
    polygon = np.asarray(polygon)
    end = len(polygon)
    while end > 3 and np.array_equal(polygon[end - 1], polygon[end - 2]):
        end -= 1
    return polygon[:end]


def write_label_file(path: str | Path, entries: Iterable[tuple[str, Annotation]]) -> Path:
    """Write a PaddleOCR det label file (UTF-8, `\\n` line ends) from (image path relative to data_dir, annotation)
    pairs; `ocrdet.data.labels.read_paddleocr_label_file` reads it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        format_label_line(name, [_unpadded(p) for p in annotation.polys], annotation.texts)
        for name, annotation in entries
    ]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def icdar2015_to_label_file(root: str | Path, split: str, path: str | Path, prefix: str = "") -> Path:
    """Convert an official ICDAR2015 split (`<root>/<split>/images`, `gts/gt_<stem>.txt`) into one PaddleOCR label
    file, as PaddleOCR's `gen_label.py --mode det` does; image paths are `<prefix><split>/images/<name>`."""
    split_dir = Path(root) / split
    images = sorted(p for p in (split_dir / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    entries = [
        (f"{prefix}{split}/images/{image.name}", parse_icdar2015_gt(split_dir / "gts" / f"gt_{image.stem}.txt"))
        for image in images
    ]
    return write_label_file(path, entries)
