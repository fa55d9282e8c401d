"""PaddleOCR file formats we write: det label files (`path<TAB>[{"transcription", "points"}]`, spec 4.1) and
detection results (`name<TAB>[{"points"}]`, tools/infer_det's format). Reading is `ocrdet.data.labels`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ocrdet.data.labels import Annotation, parse_icdar2015_gt


def _number(value: float) -> int | float:
    """Integral coordinates as ints (PaddleOCR's label files hold ints), others unchanged."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _points(polygon: np.ndarray | Sequence[Sequence[float]]) -> list[list[int | float]]:
    return [[_number(x), _number(y)] for x, y in np.asarray(polygon, dtype=np.float64).reshape(-1, 2)]


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
        {"points": _points(p)} if texts is None else {"transcription": str(t), "points": _points(p)}
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
