"""Inference export of the student and its `paddle.inference` predictor against the dygraph model."""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

from ocrdet.det.graph import export_inference, load_predictor, predict
from ocrdet.models.distillation import DistillationModel
from tests.models.builders import build_student


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A random-init student exported once, with the files written."""
    paddle.seed(0)
    model = build_student()
    out_dir = tmp_path_factory.mktemp("export")
    files = export_inference(model, str(out_dir / "inference"))
    return model, str(out_dir), files


def test_export_writes_one_graph_and_the_params(exported) -> None:
    model, out_dir, files = exported
    names = sorted(os.path.basename(f) for f in files)
    assert names == sorted(os.listdir(out_dir))
    assert "inference.pdiparams" in names
    graphs = [n for n in names if n in ("inference.json", "inference.pdmodel")]
    assert len(graphs) == 1  # Paddle 3 (PIR): inference.json; Paddle 2.6: inference.pdmodel
    assert model.training  # the caller's mode is restored


@pytest.mark.parametrize("mkldnn", [True, False])
@pytest.mark.parametrize("height, width", [(64, 64), (64, 96)])
def test_predictor_matches_dygraph_eval(exported, mkldnn: bool, height: int, width: int) -> None:
    model, out_dir, _ = exported
    x = np.random.RandomState(height + width).randn(1, 3, height, width).astype("float32")
    model.eval()
    try:
        with paddle.no_grad():
            expected = model(paddle.to_tensor(x))["maps"].numpy()
    finally:
        model.train()
    got = predict(load_predictor(out_dir, threads=1, mkldnn=mkldnn), x)
    assert got.shape == expected.shape == (1, 1, height, width)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_predict_rejects_a_non_batch(exported) -> None:
    _, out_dir, _ = exported
    with pytest.raises(ValueError, match="NCHW"):
        predict(load_predictor(out_dir, mkldnn=False), np.zeros((3, 64, 64), "float32"))


def test_distillation_model_must_be_exported_per_sub_model(tmp_path) -> None:
    model = DistillationModel({"Student": build_student()})
    with pytest.raises(ValueError, match=r"submodel\('Student'\)"):
        export_inference(model, str(tmp_path / "inference"))


def test_missing_export_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="inference"):
        load_predictor(str(tmp_path))
