"""CopyPaste: text instances cut from another sample of the dataset and pasted, rotated, into this one (PaddleOCR
CopyPaste, spec 4.3.3; used by the DML and CML recipes).

PaddleOCR rotates the cut-out with PIL (`Image.rotate(angle, expand=1)`, nearest neighbour) and pastes it through its
alpha channel. This is the same geometry with OpenCV: PIL's expanded canvas size and its output-to-input mapping,
sampled with nearest neighbour, so the alpha mask is binary and the pasted pixels are source pixels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ocrdet.data.labels import pad_points
from ocrdet.data.rng import resolve_rng
from ocrdet.data.transforms.extra import UsesExtraSamples
from ocrdet.data.transforms.random_crop import is_poly_outside_rect

MAX_OBJECTS = 30
PASTE_TRIES = 50
# A crop this much taller than wide is vertical text: it is laid down before pasting.
VERTICAL_RATIO = 1.5


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray | None:
    """The 4-point region straightened by a perspective warp to width max(|p0p1|, |p2p3|) and height
    max(|p0p3|, |p1p2|) (truncated to int), cubic with replicated border, turned 90 degrees counter-clockwise when
    h/w >= 1.5. None for a degenerate quad (a side under one pixel), where PaddleOCR's warp would silently fall back
    to the whole image's size."""
    quad = np.asarray(quad, dtype=np.float32)
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    if width < 1 or height < 1:
        return None
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    patch = cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if height / width >= VERTICAL_RATIO:
        patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)  # np.rot90, as PaddleOCR
    return patch


def rotate_patch(patch: np.ndarray, angle: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotated patch, bool mask of its pixels, its 4-corner box) for a counter-clockwise rotation by `angle` degrees
    on an expanded canvas, as PIL's `rotate(angle, expand=1)`; the box comes from DBNet's `rotate_bbox` formula
    (float canvas size), which PaddleOCR uses, so it may differ from the integer canvas by a fraction of a pixel."""
    height, width = patch.shape[:2]
    inverse, new_w, new_h = _pil_rotation(width, height, angle)
    # PIL samples output pixel (x, y) at (x + .5, y + .5) and takes input pixel floor(.); OpenCV's pixel centres are
    # integers and its nearest rounds, so the map is shifted by half a pixel on both sides.
    matrix = np.hstack([inverse[:, :2], (inverse[:, :2] @ [0.5, 0.5] + inverse[:, 2] - 0.5)[:, None]])
    rgba = np.dstack([patch, np.full((height, width), 255, dtype=np.uint8)])
    rotated = cv2.warpAffine(
        rgba,
        matrix,
        (new_w, new_h),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return rotated[..., :3], rotated[..., 3] > 0, rotate_bbox(width, height, angle)


def _pil_rotation(width: int, height: int, angle: int) -> tuple[np.ndarray, int, int]:
    """PIL's `rotate(angle, expand=1)` arithmetic, step for step (its rounding decides the canvas size): the
    output-to-input affine map in continuous coordinates (pixel edges at integers) and the expanded size."""
    radians = -math.radians(angle)
    # Rounded to 15 decimals as PIL does, which makes multiples of 90 degrees exact.
    a, b, d, e = (round(v, 15) for v in (math.cos(radians), math.sin(radians), -math.sin(radians), math.cos(radians)))
    centre_x, centre_y = width / 2, height / 2
    c = a * -centre_x + b * -centre_y + centre_x
    f = d * -centre_x + e * -centre_y + centre_y
    xs = [a * x + b * y + c for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    ys = [d * x + e * y + f for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    new_w = math.ceil(max(xs)) - math.floor(min(xs))
    new_h = math.ceil(max(ys)) - math.floor(min(ys))
    shift_x, shift_y = -(new_w - width) / 2.0, -(new_h - height) / 2.0
    c, f = a * shift_x + b * shift_y + c, d * shift_x + e * shift_y + f
    return np.array([[a, b, c], [d, e, f]]), new_w, new_h


def rotate_bbox(width: int, height: int, angle: int) -> np.ndarray:
    """DBNet's rotate_bbox for the box (0,0)-(w,h): rotation about the centre of the float-sized expanded canvas."""
    radians = np.deg2rad(angle)
    new_w = abs(np.sin(radians) * height) + abs(np.cos(radians) * width)
    new_h = abs(np.cos(radians) * height) + abs(np.sin(radians) * width)
    matrix = cv2.getRotationMatrix2D((new_w * 0.5, new_h * 0.5), float(angle), 1.0)
    matrix[:, 2] += matrix @ np.array([(new_w - width) * 0.5, (new_h - height) * 0.5, 0.0])
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64)
    return (corners @ matrix.T).astype(np.float32)


class CopyPaste(UsesExtraSamples):
    """Paste k = max(1, min(int(ratio * n), 30)) cared-for instances of the extra sample (n counts all its polygons,
    ignored ones too) at random integer angles. With `limit_paste` a position is accepted only when the pasted box's
    axis-aligned rectangle is outside every polygon so far (up to 50 tries, else the instance is skipped); a patch
    larger than the image is skipped. Appended boxes keep their text and tag; all polygons are then clipped to
    [0, w] x [0, h]. Needs `data["ext_data"]` (one decoded sample with 4-point polygons), which DetDataset attaches."""

    ext_data_num = 1

    def __init__(self, objects_paste_ratio: float = 0.2, limit_paste: bool = True) -> None:
        self.objects_paste_ratio = objects_paste_ratio
        self.limit_paste = limit_paste

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        rng = resolve_rng(rng)
        if "ext_data" not in data:
            raise KeyError("CopyPaste needs data['ext_data']: use it inside a DetDataset, which attaches it")
        extra = data.pop("ext_data")[0]  # dropped here: the extra image need not travel further down the pipeline
        ext_polys = np.asarray(extra["polys"], dtype=np.float32)
        if ext_polys.shape[1:] != (4, 2):
            raise ValueError(f"CopyPaste: extra sample polygons must be 4-point, got shape {ext_polys.shape}")
        ext_tags = np.asarray(extra["ignore_tags"], dtype=bool)
        count = max(1, min(int(self.objects_paste_ratio * len(ext_polys)), MAX_OBJECTS))
        chosen = rng.permutation(np.flatnonzero(~ext_tags))[:count]

        image = data["image"].copy()
        polys = list(np.asarray(data["polys"], dtype=np.float32))
        texts = list(data["texts"])
        tags = list(np.asarray(data["ignore_tags"], dtype=bool))
        for index in chosen:
            box = self._paste(image, extra["image"], ext_polys[index], polys, rng)
            if box is not None:
                polys.append(box)
                texts.append(extra["texts"][index])
                tags.append(bool(ext_tags[index]))

        height, width = image.shape[:2]
        stacked = pad_points(polys)  # pasted boxes have 4 points: padded like the label's own (repeat the last)
        stacked[..., 0] = np.clip(stacked[..., 0], 0, width)
        stacked[..., 1] = np.clip(stacked[..., 1], 0, height)
        data["image"] = image
        data["polys"] = stacked
        data["texts"] = texts
        data["ignore_tags"] = np.array(tags, dtype=bool)
        return data

    def _paste(
        self,
        image: np.ndarray,
        source: np.ndarray,
        quad: np.ndarray,
        polys: list[np.ndarray],
        rng: np.random.Generator,
    ) -> np.ndarray | None:
        """Paste one instance into `image` in place; its box in image coordinates, or None when skipped."""
        patch = crop_quad(source, quad)
        if patch is None:
            return None
        angle = int(rng.integers(0, 360))
        rotated, mask, box = rotate_patch(patch, angle)
        patch_h, patch_w = mask.shape
        room_x, room_y = image.shape[1] - patch_w, image.shape[0] - patch_h
        if room_x < 0 or room_y < 0:
            return None
        position = self._position(box, room_x, room_y, polys, rng)
        if position is None:
            return None
        x, y = position
        region = image[y : y + patch_h, x : x + patch_w]
        region[mask] = rotated[mask]
        return box + np.array([x, y], dtype=np.float32)

    def _position(
        self, box: np.ndarray, room_x: int, room_y: int, polys: list[np.ndarray], rng: np.random.Generator
    ) -> tuple[int, int] | None:
        if not self.limit_paste:
            return int(rng.integers(0, room_x + 1)), int(rng.integers(0, room_y + 1))
        (x_min, y_min), (x_max, y_max) = box.min(axis=0), box.max(axis=0)
        for _ in range(PASTE_TRIES):
            x, y = int(rng.integers(0, room_x + 1)), int(rng.integers(0, room_y + 1))
            left, top = x_min + x, y_min + y
            if all(is_poly_outside_rect(p, left, top, x_max - x_min, y_max - y_min) for p in polys):
                return x, y
        return None
