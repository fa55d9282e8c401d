"""DecodeImage: file bytes -> HxWx3 uint8 BGR."""
from __future__ import annotations

import io
import warnings

import cv2
import numpy as np

# Image files the data sets and ocrdet-predict take: formats cv2.imdecode reads in every OpenCV build.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# 2^27 pixels (e.g. 11585 x 11585): ~400 MB decoded; a 20000 x 20000 JPEG (1.2 GB decoded, and more in every copy
# the pipeline makes) is refused by its header before any decoding.
MAX_PIXELS = 1 << 27


def header_pixels(data: bytes) -> tuple[int, str] | None:
    """(pixel count, its description) from the image header without decoding (Pillow reads headers lazily); None
    when Pillow does not know the format (cv2.imdecode then decides)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning: the size is checked here
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                return width * height, f"{width}x{height}"
    except Image.DecompressionBombError:  # above Pillow's own hard limit, which hides the size
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        return limit + 1, f"more than {limit}"
    except Exception:
        return None


class DecodeImage:
    """Decode `image` (bytes) with cv2.imdecode in BGR order; None (drop) when the bytes are not an image or have
    more than `max_pixels` pixels (decoding them would exhaust memory); `last_drop_reason` then says why.

    An already-decoded HxWx3 array passes through, so in-memory datasets (the synthetic one) share transform lists.
    """

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        self.max_pixels = int(max_pixels)
        self.last_drop_reason: str | None = None

    def __call__(self, data: dict) -> dict | None:
        self.last_drop_reason = None
        image = data["image"]
        if isinstance(image, np.ndarray) and image.ndim == 3:
            return data
        header = header_pixels(image) if len(image) else None
        if header is not None and header[0] > self.max_pixels:
            self.last_drop_reason = (
                f"image of {header[1]} pixels exceeds max_pixels={self.max_pixels}: decoding it could exhaust memory; "
                "downscale it or raise the decode op's max_pixels"
            )
            return None
        buffer = np.frombuffer(image, dtype=np.uint8)
        # cv2.imdecode asserts on an empty buffer (an empty file) instead of returning None.
        decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
        if decoded is None:
            return None
        data["image"] = decoded
        return data
