"""ocrdet: PP-OCRv3 text-detection training on PaddlePaddle with a Hydra + Lightning-style trainer."""

# Paddle 2.6 bundles an old zlib; loading the system zlib first keeps pyclipper/cv2 imports after paddle safe.
import zlib  # noqa: F401

__version__ = "0.1.0"
