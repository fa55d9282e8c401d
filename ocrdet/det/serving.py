"""An export as an MLflow pyfunc model: encoded images in, text polygons out, pre- and post-processing from the
export's inference.yml. `mlflow models serve -m runs:/<id>/model --env-manager local` answers

    POST /invocations {"inputs": ["<base64 of a JPEG/PNG file>", ...]}
    -> {"predictions": ["[[[x, y], ...], ...]", ...]}   (one JSON list of polygons per image)

with the boxes `ocrdet-predict` writes for the same image.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc

EXPORT_ARTIFACT = "export"
MODEL_NAME = "model"


class ExportedDetector:
    """An export dir (or its .onnx) as a function encoded image -> polygons, run as its inference.yml says."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        from ocrdet.data.transforms import DecodeImage, DetResizeForTest, NormalizeImage, ToCHW
        from ocrdet.det.deploy import exported_forward, find_exported
        from ocrdet.postprocess.db_postprocess import DBPostProcess

        exported = find_exported(path)
        if exported is None or exported.settings is None:
            raise FileNotFoundError(f"{path}: not an ocrdet export with an inference.yml")
        settings = exported.settings
        self.ops = [DecodeImage(), DetResizeForTest(**settings.resize), NormalizeImage(**settings.normalize), ToCHW()]
        self.postprocess = DBPostProcess(**settings.postprocess)
        self.forward = exported_forward(exported, threads=threads)

    def __call__(self, image: bytes) -> list[list[list[int]]]:
        from ocrdet.cli.predict import detect

        _, boxes = detect(image, self.ops, self.forward, self.postprocess)
        return [box.tolist() for box in boxes]


class DetectorModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: base64-encoded image files in, one JSON list of polygons per image out."""

    def load_context(self, context: Any) -> None:
        self.detector = ExportedDetector(context.artifacts[EXPORT_ARTIFACT])

    def predict(self, context: Any, model_input: list[str], params: dict | None = None) -> list[str]:
        # list[str]: MLflow takes the type hint as the input schema and hands over the strings of the request's
        # one column (dataframe_split or inputs), base64-encoded image files; out, one JSON polygon list per image.
        return [json.dumps(self.detector(base64.b64decode(item))) for item in model_input]


def log_export_model(export_dir: str | Path, client: Any, run_id: str, name: str = MODEL_NAME) -> str:
    """Log `export_dir` as the pyfunc model `name` of MLflow run `run_id` (client's store); returns its URI."""
    import mlflow
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.pyfunc.log_model(
            name=name, python_model=DetectorModel(), artifacts={EXPORT_ARTIFACT: str(export_dir)},
            pip_requirements=["ocrdet", "onnxruntime", "mlflow"],
        )  # fmt: skip
    return f"runs:/{run_id}/{name}"
