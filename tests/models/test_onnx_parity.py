"""Forward parity of our student with PaddleOCR's released inference model (ONNX) on real ICDAR2015 images."""
from __future__ import annotations

import cv2
import numpy as np
import paddle
import pytest

from ocrdet.models.weights import load_pretrained
from tests.conftest import shared_path
from tests.models.builders import build_student

ort = pytest.importorskip("onnxruntime")

MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")


def preprocess(path: str, height: int, width: int) -> np.ndarray:
    """BGR image -> resized, /255, mean/std normalised, NCHW float32 (PaddleOCR's det preprocessing)."""
    img = cv2.resize(cv2.imread(path), (width, height)).astype("float32") / 255.0
    return ((img - MEAN) / STD).transpose(2, 0, 1)[None].astype("float32")


# Sizes are multiples of 32. img_1's text is tiny: at 320x576 its map is ~0 everywhere (max 2e-6), so even a
# wrong SE slope passes; 448x800 gives real activations (a 1/6 slope then differs by 0.04).
@pytest.mark.parametrize("image, height, width", [("img_1.jpg", 448, 800), ("img_10.jpg", 320, 576)])
def test_student_matches_released_onnx(image: str, height: int, width: int) -> None:
    weights = shared_path("weights", "ch_PP-OCRv3_det_student.pdparams")
    onnx_path = shared_path("weights", "ch_PP-OCRv3_det_infer.onnx")
    x = preprocess(str(shared_path("data", "icdar2015", "test", "images", image)), height, width)

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert expected.max() > 0.9, "reference map has no text response: the comparison would be vacuous"

    model = build_student()
    load_pretrained(model, str(weights))
    model.eval()
    with paddle.no_grad():
        got = model(paddle.to_tensor(x))["maps"].numpy()

    assert got.shape == expected.shape == (1, 1, height, width)
    diff = float(np.abs(got - expected).max())
    print(f"{image} {height}x{width}: max abs diff vs ONNX = {diff:.3e}")
    assert diff <= 1e-4
