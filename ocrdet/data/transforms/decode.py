"""DecodeImage: file bytes -> HxWx3 uint8 BGR."""
from __future__ import annotations

import cv2
import numpy as np

# Image files the data sets and ocrdet-predict take: formats cv2.imdecode reads in every OpenCV build.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DecodeImage:
    """Decode `image` (bytes) with cv2.imdecode in BGR order; None (drop) when the bytes are not an image.

    An already-decoded HxWx3 array passes through, so in-memory datasets (the synthetic one) share transform lists.
    """

    def __call__(self, data: dict) -> dict | None:
        image = data["image"]
        if isinstance(image, np.ndarray) and image.ndim == 3:
            return data
        buffer = np.frombuffer(image, dtype=np.uint8)
        # cv2.imdecode asserts on an empty buffer (an empty file) instead of returning None.
        decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
        if decoded is None:
            return None
        data["image"] = decoded
        return data
