"""ocrdet: PP-OCRv3 text-detection training on PaddlePaddle with a Hydra + Lightning-style trainer."""

# Paddle 2.6 bundles an old zlib; loading the system zlib first keeps pyclipper/cv2 imports after paddle safe.
import zlib  # noqa: F401

from ocrdet.engine.mkl import prefer_avx2_on_amd

# Before any Paddle math runs: MKL reads its dispatch setting once (see ocrdet/engine/mkl.py).
MKL_AVX2_SET_HERE = prefer_avx2_on_amd()

__version__ = "0.1.0"
