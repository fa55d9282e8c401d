"""Synthetic text images for tests and smoke runs: words drawn with cv2.putText on textured backgrounds, each rotated,
labelled with the exact quad its tight box maps to. Everything is drawn from one Generator, so one seed gives one image.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import cv2
import numpy as np

ALPHABET = string.ascii_letters + string.digits
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
MAX_ANGLE = 30.0  # degrees, either way
PLACEMENT_TRIES = 10


@dataclass
class SyntheticImage:
    image: np.ndarray  # HxWx3 uint8 BGR
    polys: np.ndarray  # float32 [n, 4, 2], clockwise from the word's top-left
    texts: list[str]
    ignore_tags: np.ndarray  # bool [n]
    text_mask: np.ndarray  # bool HxW: pixels where glyph coverage > 0.5 (lets tests check the quads)


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float32 HxWx3 in [0, 255]: a base colour, a linear gradient, blotchy low-frequency noise, grain and a few lines,
    so that the detector cannot separate text from background by flatness alone."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (xx * np.cos(direction) + yy * np.sin(direction))[..., None]
    image = rng.uniform(0, 255, 3).astype(np.float32) + ramp * rng.uniform(-90, 90, 3).astype(np.float32)
    cells = max(2, size // 16)
    blotches = cv2.resize(rng.normal(0, 1, (cells, cells, 3)).astype(np.float32), (size, size))
    image += blotches * rng.uniform(5, 25) + rng.normal(0, rng.uniform(2, 8), image.shape).astype(np.float32)
    for _ in range(rng.integers(0, 6)):
        ends = rng.integers(0, size, 4)
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.line(image, (int(ends[0]), int(ends[1])), (int(ends[2]), int(ends[3])), color, int(rng.integers(1, 3)))
    return np.clip(image, 0, 255)


def word_patch(text: str, font: int, scale: float, thickness: int) -> tuple[np.ndarray, np.ndarray]:
    """The word's anti-aliased coverage (uint8 patch) and its tight box as 4 corners around the covered pixels
    (pixel centres are integer coordinates, so the box runs half a pixel beyond the outermost ones)."""
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 2
    patch = np.zeros((height + baseline + 2 * pad, width + 2 * pad), np.uint8)
    cv2.putText(patch, text, (pad, pad + height), font, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(patch)
    x0, y0, x1, y1 = xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5
    return patch, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _place(
    rng: np.random.Generator, box: np.ndarray, size: int, occupied: np.ndarray
) -> np.ndarray | None:
    """A 2x3 affine map (rotation about the box centre + translation) that puts the box inside the image without
    touching earlier words, or None."""
    centre = box.mean(axis=0)
    for _ in range(PLACEMENT_TRIES):
        angle = np.deg2rad(rng.uniform(-MAX_ANGLE, MAX_ANGLE))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        relative = (box - centre) @ rotation.T
        low, high = -relative.min(axis=0), size - 1 - relative.max(axis=0)
        if np.any(low > high):
            continue
        target = rng.uniform(low, high)
        quad = relative + target
        footprint = np.zeros_like(occupied)
        cv2.fillPoly(footprint, [np.round(quad).astype(np.int32)], 1)
        if np.any(footprint & occupied):
            continue
        occupied |= cv2.dilate(footprint, np.ones((5, 5), np.uint8))  # a small gap keeps words apart
        return np.hstack([rotation, (target - rotation @ centre)[:, None]])
    return None


def render_text_image(
    rng: np.random.Generator, image_size: int, max_words: int = 6, ignore_prob: float = 0.15
) -> SyntheticImage:
    """1..max_words words (fewer when they do not fit); once one legible word is placed, each further word is a faint
    `###` region with probability ignore_prob."""
    image = textured_background(rng, image_size)
    occupied = np.zeros((image_size, image_size), np.uint8)
    text_mask = np.zeros((image_size, image_size), bool)
    polys, texts, tags = [], [], []
    for _ in range(int(rng.integers(1, max_words + 1))):
        word = "".join(rng.choice(list(ALPHABET), int(rng.integers(2, 9))))
        font = FONTS[int(rng.integers(len(FONTS)))]
        # Cap height 5-14% of the image side, at least 10 px so that most words survive min_text_size.
        height = max(10.0, rng.uniform(0.05, 0.14) * image_size)
        scale = height / cv2.getTextSize("A", font, 1.0, 1)[0][1]
        thickness = max(1, int(round(scale * rng.uniform(0.8, 2.0))))
        while len(word) > 1 and cv2.getTextSize(word, font, scale, thickness)[0][0] > 0.8 * image_size:
            word = word[:-1]  # long words would not fit at any angle
        patch, box = word_patch(word, font, scale, thickness)
        matrix = _place(rng, box, image_size, occupied)
        if matrix is None:
            continue
        ignored = (False in tags) and rng.random() < ignore_prob
        alpha = cv2.warpAffine(patch, matrix, (image_size, image_size), flags=cv2.INTER_LINEAR) / 255.0
        text_mask |= alpha > 0.5
        quad = box @ matrix[:, :2].T + matrix[:, 2]
        region = cv2.fillPoly(np.zeros_like(occupied), [np.round(quad).astype(np.int32)], 1).astype(bool)
        # Dark text on light ground or the reverse; `###` words get a third of the contrast.
        dark = image[region].mean() > 127
        color = rng.uniform(0, 70, 3) if dark else rng.uniform(185, 255, 3)
        strength = alpha[..., None] * (0.35 if ignored else 1.0)
        image = image * (1 - strength) + color * strength
        polys.append(quad.astype(np.float32))
        texts.append("###" if ignored else word)
        tags.append(ignored)
    return SyntheticImage(
        image=np.round(image).astype(np.uint8),
        polys=np.array(polys, np.float32).reshape(-1, 4, 2),
        texts=texts,
        ignore_tags=np.array(tags, bool),
        text_mask=text_mask,
    )
