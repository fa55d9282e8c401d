"""Inference export of a trained detector and a `paddle.inference` predictor for it (spec section 6.6).

The saved graph maps an NCHW float32 image batch of any height and width to the shrink-probability map
[N,1,H,W], the input of DBPostProcess, as PaddleOCR's `inference.pdmodel` does.
"""
from __future__ import annotations

import copy
import os
import re
import weakref
from typing import List

import numpy as np
import paddle
from paddle import nn
from paddle.static import InputSpec

from ocrdet.det.deploy import GRAPH_SUFFIXES
from ocrdet.models.distillation import DistillationModel

# Paddle 3 (PIR) writes `.json`, Paddle 2.6 `.pdmodel`; both write `.pdiparams` (and 2.6 a `.pdiparams.info`).
EXPORT_SUFFIXES = GRAPH_SUFFIXES + (".pdiparams", ".pdiparams.info")


class ShrinkMaps(nn.Layer):
    """A detector's shrink-probability maps [N,1,H,W] (its `maps` output): the inference graph's body (a graph needs
    a tensor, not a dict, as its output) and the dygraph evaluation forward (ocrdet.det.evaluator)."""

    def __init__(self, model: nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.model(x)["maps"]


def export_inference(model: nn.Layer, out_prefix: str) -> List[str]:
    """Save `model` in eval mode as a static inference model at `out_prefix` (e.g. `<dir>/inference`).

    Args:
        model: a detector returning `{"maps": …}`; for a distillation model pass one sub-model
            (`model.submodel("Student")`), as PaddleOCR exports each sub-model separately.
        out_prefix: path prefix of the files to write; its folder is created.

    Returns:
        The files written, sorted.
    """
    if isinstance(model, DistillationModel):
        raise ValueError(f"export one sub-model, e.g. model.submodel({model.names[0]!r}); names: {model.names}")
    static = _traced(model)
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    paddle.jit.save(static, out_prefix)
    return sorted(out_prefix + s for s in EXPORT_SUFFIXES if os.path.isfile(out_prefix + s))


# model -> its traced inference graph (a ShrinkMaps of a folded copy). Tracing takes seconds (3.5-4.5 s for the
# student on 2 cores, ~90% of an export), writing the weights 0.1 s: validation inside fit exports the same model
# every time, so it is traced once and each export copies the current weights into the traced copy.
_TRACES: "weakref.WeakKeyDictionary[nn.Layer, nn.Layer]" = weakref.WeakKeyDictionary()


def _layout(model: nn.Layer) -> dict:
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def _traced(model: nn.Layer) -> nn.Layer:
    """`model`'s inference graph holding its current weights (traced on first use, or when its parameters' names or
    shapes changed)."""
    folded = inference_copy(model)
    static = _TRACES.get(model)
    if static is not None and _layout(static.model) == _layout(folded):
        static.model.set_state_dict(folded.state_dict())
        return static
    # full_graph: Paddle 3's default (SOT) ignores input_spec; the AST path honours the dynamic H, W.
    spec = [InputSpec([None, 3, None, None], "float32", "x")]
    static = paddle.jit.to_static(ShrinkMaps(folded), input_spec=spec, full_graph=True)
    _TRACES[model] = static
    return static


def inference_copy(model: nn.Layer) -> nn.Layer:
    """An eval-mode copy of `model` for export, with the BatchNorms that the predictor's passes leave unfused folded
    into their convs (every sublayer offering `fold_batch_norm()`); `model` itself is untouched."""
    folded = copy.deepcopy(model)
    folded.eval()
    for layer in folded.sublayers(include_self=True):
        fold = getattr(layer, "fold_batch_norm", None)
        if callable(fold):
            fold()
    return folded


def graph_file(model_dir: str) -> str:
    """The exported graph file in `model_dir`."""
    # PaddleOCR's layout is `<dir>/inference.*`; accept any single exported graph too.
    for suffix in GRAPH_SUFFIXES:
        path = os.path.join(model_dir, "inference" + suffix)
        if os.path.isfile(path):
            return path
    graphs = sorted(f for f in os.listdir(model_dir) if f.endswith(GRAPH_SUFFIXES))
    if len(graphs) != 1:
        raise FileNotFoundError(f"{model_dir}: expected one inference .json/.pdmodel graph, found {graphs}")
    return os.path.join(model_dir, graphs[0])


def has_interpolate(graph: str) -> bool:
    """Whether an exported graph holds an interpolate op. A 2.6 `.pdmodel` (protobuf) counts as yes: its op names are
    not searched, and the only consequence is the oneDNN workaround below, which is a no-op on 2.6."""
    if not graph.endswith(".json"):
        return True
    with open(graph, encoding="utf-8") as f:
        return re.search(r'"[\w.]*_interp(_v2)?"', f.read()) is not None


def load_predictor(model_dir: str, threads: int = 2, mkldnn: bool = True) -> "paddle.inference.Predictor":
    """A CPU `paddle.inference` predictor for a model written by `export_inference` into `model_dir`.

    Args:
        model_dir: folder holding `inference.json` (Paddle 3) or `inference.pdmodel` (2.6) and `.pdiparams`.
        threads: CPU math threads.
        mkldnn: use oneDNN kernels (for an ocrdet export ~4x faster on CPU than without; outputs equal to ~1e-5).
    """
    from paddle import inference

    graph = graph_file(model_dir)
    params = os.path.splitext(graph)[0] + ".pdiparams"
    config = inference.Config(graph, params)
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(int(threads))
    config.disable_glog_info()
    if mkldnn:
        config.enable_mkldnn()
        if has_interpolate(graph):
            # Paddle 3's oneDNN executor fails on interpolate ops (Paddle issue #79749). ocrdet's exports have none
            # (see `upsample` in ocrdet.models.necks.db_fpn); graphs that do, such as PaddleOCR's or older ocrdet
            # exports, run with this pass dropped: equal outputs, but ~2.5x slower than full oneDNN placement.
            # On 2.6 the pass does not exist: a no-op.
            config.delete_pass("onednn_placement_pass")
    elif hasattr(config, "disable_mkldnn"):  # Paddle 3 may turn oneDNN on by itself; 2.6 has it off already
        config.disable_mkldnn()
    # A process that trained on CPU has the dygraph oneDNN flag on; the predictor would then place oneDNN kernels
    # itself, bypassing the pass removal above, and fail on the same interpolate attribute.
    onednn_flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": False})
    try:
        return inference.create_predictor(config)
    finally:
        paddle.set_flags({"FLAGS_use_mkldnn": onednn_flag})


def predict(predictor: "paddle.inference.Predictor", image: np.ndarray) -> np.ndarray:
    """Run the predictor on a normalised NCHW float32 batch; returns the shrink maps [N,1,H,W]."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be an NCHW batch with 3 channels, got shape {image.shape}")
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(image.shape))
    handle.copy_from_cpu(np.ascontiguousarray(image, dtype=np.float32))
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
