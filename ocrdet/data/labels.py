"""Ground-truth parsing: official ICDAR2015 gt files and PaddleOCR det label lines, into one `Annotation` shape.

Bad input raises ValueError naming `file:line`, so a broken label file fails at dataset construction, not mid-epoch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Transcriptions that mark a "don't care" region (PaddleOCR DetLabelEncode treats both as ignored).
IGNORE_TEXTS = ("###", "*")
ICDAR_COORDS = 8


@dataclass
class Annotation:
    """The regions of one image. `polys` is float32 [n, K, 2] (K padded to the longest), `ignore_tags` bool [n]."""

    polys: np.ndarray
    texts: list[str]
    ignore_tags: np.ndarray


@dataclass
class LabelLine:
    """One PaddleOCR label line: candidate image paths (one is picked per load) and their annotation."""

    image_paths: list[str]
    annotation: Annotation


def pad_points(polys: list[np.ndarray]) -> np.ndarray:
    """Stack point lists of different lengths into [n, K, 2] float32, repeating each list's last point (as
    DetLabelEncode does)."""
    if not polys:
        return np.zeros((0, 4, 2), np.float32)
    longest = max(len(p) for p in polys)
    padded = [np.concatenate([p, np.repeat(p[-1:], longest - len(p), axis=0)]) for p in polys]
    return np.stack(padded).astype(np.float32)


def make_annotation(polys: list[np.ndarray], texts: list[str]) -> Annotation:
    tags = np.array([t in IGNORE_TEXTS for t in texts], dtype=bool)
    return Annotation(polys=pad_points(polys), texts=list(texts), ignore_tags=tags)


def _points(values: Any, where: str) -> np.ndarray:
    """Validate a list of [x, y] pairs (at least 3) and return it as float64 [K, 2]."""
    if not isinstance(values, list) or not all(isinstance(p, list) for p in values):
        raise ValueError(f"{where}: points must be a list of [x, y] pairs, got {values!r}")
    flat = [c for p in values for c in p]
    if len(flat) % 2:
        raise ValueError(f"{where}: odd coordinate count ({len(flat)} values); points must be [x, y] pairs")
    if any(len(p) != 2 for p in values):
        raise ValueError(f"{where}: points must be [x, y] pairs, got {values!r}")
    try:
        points = np.array(flat, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: non-numeric coordinate in {values!r}") from None
    if len(points) < 3:
        raise ValueError(f"{where}: a polygon needs at least 3 points, got {len(points)}")
    return points


def _lines(path: str | Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines, UTF-8 with an optional BOM, CRLF or LF. Splits on '\n' only (str.splitlines would
    also split on control characters that may occur inside a transcription)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    numbered = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)]
    return [(n, line) for n, line in numbered if line.strip()]


def parse_icdar2015_gt(path: str | Path) -> Annotation:
    """Read `x1,y1,...,x4,y4,transcription` lines; commas may occur in the transcription."""
    polys, texts = [], []
    for line_no, line in _lines(path):
        fields = line.split(",")
        where = f"{path}:{line_no}"
        if len(fields) <= ICDAR_COORDS:
            raise ValueError(f"{where}: expected 8 coordinates and a transcription, got {len(fields)} fields")
        try:
            coords = [float(f) for f in fields[:ICDAR_COORDS]]
        except ValueError:
            raise ValueError(f"{where}: non-numeric coordinate in {fields[:ICDAR_COORDS]}") from None
        polys.append(np.array(coords).reshape(-1, 2))
        texts.append(",".join(fields[ICDAR_COORDS:]))
    return make_annotation(polys, texts)


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
    if not paths or not all(isinstance(p, str) for p in paths):
        raise ValueError(f"{where}: the image path field must be a path or a JSON list of paths")
    polys = [_points(r["points"], where) for r in regions]
    texts = [str(r.get("transcription", "")) for r in regions]
    return LabelLine(image_paths=paths, annotation=make_annotation(polys, texts))


def read_paddleocr_label_file(path: str | Path) -> list[LabelLine]:
    """All non-blank lines of a PaddleOCR det label file."""
    return [parse_paddleocr_line(line, f"{path}:{line_no}") for line_no, line in _lines(path)]
