"""The training-speed reformulations in ocrdet.models compute what the plain layers compute (forward and backward).

Each test runs the fast layer and a plain reference with the same state dict on the same input, backpropagates
mean(out * g) (so gradients are O(1e-3..1e-1) and float32 summation-order noise stays far below the tolerance),
and compares outputs, input gradients, parameter gradients and BN running statistics to 1e-5.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, Iterator

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle import nn

from ocrdet.det.graph import export_inference, has_interpolate, inference_copy, load_predictor, predict
from ocrdet.models.heads.db_head import DBHead, DBHeadBranch, UpConv2D, add_channel_bias
from ocrdet.models.necks.db_fpn import exporting, upsample
from ocrdet.models.necks.rse_fpn import RSELayer
from tests.models.builders import build_student

TOL = 1e-5


@pytest.fixture(params=[False, True], ids=["native", "onednn"])
def onednn(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run the test with dygraph oneDNN kernels off and on (training uses them on CPU)."""
    before = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": request.param})
    yield request.param
    paddle.set_flags({"FLAGS_use_mkldnn": before})


def _run(layer: nn.Layer, fn: Callable[[nn.Layer, paddle.Tensor], paddle.Tensor], x: np.ndarray, g: np.ndarray):
    """Output, input gradient, parameter gradients and buffers after one backward of mean(fn(layer, x) * g)."""
    xt = paddle.to_tensor(x, stop_gradient=False)
    out = fn(layer, xt)
    (out * paddle.to_tensor(g)).mean().backward()
    grads = {n: p.grad.numpy() for n, p in layer.named_parameters() if p.grad is not None}
    buffers = {n: b.numpy() for n, b in layer.named_buffers()}
    return out.numpy(), xt.grad.numpy(), grads, buffers


def _assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    diff = float(np.abs(got - want).max())
    assert diff <= TOL * max(1.0, float(np.abs(want).max())), f"{what}: max abs diff {diff:.2e}"


def _assert_equivalent(
    fast: nn.Layer,
    plain_fn: Callable[[nn.Layer, paddle.Tensor], paddle.Tensor],
    x_shape: list,
    fast_fn: Callable[[nn.Layer, paddle.Tensor], paddle.Tensor] = lambda layer, x: layer(x),
) -> None:
    """`fast_fn(fast, x)` and `plain_fn(copy, x)` (a same-state copy) agree in output and every gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype("float32")
    plain = _copy(fast)
    with paddle.no_grad():
        shape = fast_fn(fast, paddle.to_tensor(x)).shape  # the output shape, for the cotangent
    fast.clear_gradients()
    _reset_stats(fast, plain)
    g = rng.standard_normal(shape).astype("float32")
    out_f, gx_f, grads_f, bufs_f = _run(fast, fast_fn, x, g)
    out_p, gx_p, grads_p, bufs_p = _run(plain, plain_fn, x, g)
    _assert_close(out_f, out_p, "output")
    _assert_close(gx_f, gx_p, "input gradient")
    assert sorted(grads_f) == sorted(grads_p), "the same parameters get gradients"
    for name in grads_p:
        _assert_close(grads_f[name], grads_p[name], f"gradient of {name}")
    for name in bufs_p:  # BN running mean/var after the training-mode step
        _assert_close(bufs_f[name], bufs_p[name], f"buffer {name}")


def _copy(layer: nn.Layer) -> nn.Layer:
    clone = copy.deepcopy(layer)
    clone.set_state_dict(layer.state_dict())
    return clone


def _reset_stats(*layers: nn.Layer) -> None:
    # The shape probe ran BN in training mode: put both copies back on the same running statistics.
    for layer in layers:
        for name, buf in layer.named_buffers():
            buf.set_value(np.zeros(buf.shape, "float32") if name.endswith("_mean") else np.ones(buf.shape, "float32"))


def test_add_channel_bias_is_broadcast_add(onednn: bool) -> None:
    paddle.seed(1)
    y = paddle.randn([3, 5, 4, 6])
    b = paddle.randn([5])
    np.testing.assert_allclose(add_channel_bias(y, b).numpy(), (y + b.reshape([1, 5, 1, 1])).numpy(), atol=1e-6)


@pytest.mark.parametrize("out_channels, kernel", [(6, 2), (1, 2), (4, 3)])
def test_up_conv_matches_conv2d_transpose(onednn: bool, out_channels: int, kernel: int) -> None:
    paddle.seed(2)
    layer = UpConv2D(6, out_channels, kernel)
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    assert layer.weight.shape == [6, out_channels, kernel, kernel]
    _assert_equivalent(layer, lambda conv, x: nn.Conv2DTranspose.forward(conv, x), [2, 6, 7, 9])


@pytest.mark.parametrize("shortcut", [True, False])
def test_rse_layer_matches_residual_se(onednn: bool, shortcut: bool) -> None:
    paddle.seed(3)
    layer = RSELayer(16, 8, 3, shortcut=shortcut)

    def plain(rse: RSELayer, x: paddle.Tensor) -> paddle.Tensor:
        y = rse.in_conv(x)
        return y + rse.se_block(y) if shortcut else rse.se_block(y)

    _assert_equivalent(layer, plain, [2, 16, 10, 12])


def _plain_branch(branch: DBHeadBranch, x: paddle.Tensor) -> paddle.Tensor:
    x = F.relu(branch.conv_bn1(branch.conv1(x)))
    x = F.relu(branch.conv_bn2(nn.Conv2DTranspose.forward(branch.conv2, x)))
    return F.sigmoid(nn.Conv2DTranspose.forward(branch.conv3, x))


def _plain_head(head: DBHead, x: paddle.Tensor) -> paddle.Tensor:
    shrink, thresh = _plain_branch(head.binarize, x), _plain_branch(head.thresh, x)
    binary = paddle.reciprocal(1 + paddle.exp(-head.k * (shrink - thresh)))
    return paddle.concat([shrink, thresh, binary], axis=1)


@pytest.mark.parametrize("kernel_list", [(3, 2, 2), (7, 2, 2)])
def test_db_head_training_matches_plain_branches(onednn: bool, kernel_list: tuple) -> None:
    paddle.seed(4)
    head = DBHead(32, k=50, kernel_list=kernel_list)
    head.train()
    _assert_equivalent(head, _plain_head, [2, 32, 6, 5], fast_fn=lambda h, x: h(x)["maps"])


def test_db_head_eval_runs_binarize_branch_only() -> None:
    paddle.seed(5)
    head = DBHead(32)
    head.eval()
    x = paddle.randn([1, 32, 6, 6])
    with paddle.no_grad():
        got = head(x)["maps"].numpy()
        want = _plain_branch(head.binarize, x).numpy()
    assert got.shape == (1, 1, 24, 24)
    np.testing.assert_allclose(got, want, atol=TOL)


def run_static(static: Callable, x: paddle.Tensor) -> np.ndarray:
    """Run a to_static program in this process with dygraph's oneDNN mode off: in that mode Paddle refuses the
    oneDNN transposed conv of an exported graph (it is inference-only, `is_test`); the predictor
    (ocrdet.det.graph.load_predictor) runs the same graph with oneDNN."""
    flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": False})
    try:
        return static(x).numpy()
    finally:
        paddle.set_flags({"FLAGS_use_mkldnn": flag})


class _Maps(nn.Layer):
    def __init__(self, head: DBHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.head(x)["maps"]


def test_export_graph_keeps_plain_ops() -> None:
    """Static graphs (export) use the plain ops, which paddle.inference's oneDNN passes know how to fuse; the
    export copy has the BN after conv2 folded away."""
    paddle.seed(6)
    head = DBHead(32)
    head.eval()
    spec = [paddle.static.InputSpec([None, 32, None, None], "float32", "x")]
    for model, batch_norms in ((head, 2), (inference_copy(head), 1)):
        static = paddle.jit.to_static(_Maps(model), input_spec=spec, full_graph=True)
        program = static.forward.concrete_program.main_program
        ops: Dict[str, int] = {}
        for op in program.global_block().ops:
            name = op.name() if callable(getattr(op, "name", None)) else op.type
            ops[name.split(".")[-1]] = ops.get(name.split(".")[-1], 0) + 1
        assert ops.get("conv2d_transpose", 0) == 2, ops
        assert ops.get("batch_norm_", 0) + ops.get("batch_norm", 0) == batch_norms, ops
        assert "tile" not in ops, ops


def test_inference_copy_folds_bn_into_the_transposed_conv() -> None:
    """With non-trivial running statistics the folded copy equals the eval head to float rounding, exported too;
    the original head keeps its BN."""
    paddle.seed(8)
    head = DBHead(32)
    bn = head.binarize.conv_bn2
    bn._mean.set_value(paddle.randn(bn._mean.shape))
    bn._variance.set_value(paddle.rand(bn._variance.shape) + 0.2)
    bn.weight.set_value(paddle.randn(bn.weight.shape))
    bn.bias.set_value(paddle.randn(bn.bias.shape))
    head.eval()
    x = paddle.randn([2, 32, 9, 13])
    want = head(x)["maps"].numpy()
    folded = inference_copy(head)
    assert isinstance(folded.binarize.conv_bn2, nn.Identity) and head.binarize.conv_bn2 is bn
    np.testing.assert_allclose(folded(x)["maps"].numpy(), want, rtol=0, atol=1e-6)
    spec = [paddle.static.InputSpec([None, 32, None, None], "float32", "x")]
    static = paddle.jit.to_static(_Maps(folded), input_spec=spec, full_graph=True)
    np.testing.assert_allclose(run_static(static, x), want, rtol=0, atol=1e-6)
    assert np.abs(want - 0.5).max() > 0.1  # the maps are not all at sigmoid(0), where a wrong fold would hide


class _Upsample(nn.Layer):
    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return upsample(x, self.factor, exporting(self))


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("channels", [5, 6, 48])  # export kernels: depthwise, 2-channel and 24-channel groups
def test_static_upsample_copies_like_interpolate(factor: int, channels: int) -> None:
    """`upsample` (a ones-kernel transposed conv) is bit-identical to nearest interpolation, in dygraph and in an
    exported graph, and its input gradient equals interpolate's."""
    spec = [paddle.static.InputSpec([None, channels, None, None], "float32", "x")]
    layer = _Upsample(factor)
    layer.eval()  # an export traces in eval mode
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    x = paddle.randn([2, channels, 3, 7])
    want = F.interpolate(x, scale_factor=factor, mode="nearest").numpy()
    np.testing.assert_array_equal(run_static(static, x), want)
    nearest = lambda _, x: F.interpolate(x, scale_factor=factor, mode="nearest")  # noqa: E731
    _assert_equivalent(_Upsample(factor), nearest, [2, channels, 3, 7])


def test_exported_student_has_no_interpolate(tmp_path) -> None:
    """So `load_predictor` keeps oneDNN placement on (the Paddle 3 workaround is only for graphs with one)."""
    paddle.seed(7)
    export_inference(build_student(), str(tmp_path / "inference"))
    graph = next(str(p) for p in tmp_path.iterdir() if p.suffix in (".json", ".pdmodel"))
    if graph.endswith(".json"):
        assert not has_interpolate(graph)
    legacy = tmp_path / "legacy.json"
    legacy.write_text('{"ops": [{"#": "1.nearest_interp"}]}')
    assert has_interpolate(str(legacy))


def test_a_model_exported_again_is_not_traced_again_and_its_export_holds_the_new_weights(tmp_path, monkeypatch):
    """Validation inside fit exports the same model each time: one trace (seconds), then only its weights."""
    traces = []
    to_static = paddle.jit.to_static
    monkeypatch.setattr(paddle.jit, "to_static", lambda *a, **k: traces.append(1) or to_static(*a, **k))
    paddle.seed(9)
    model = build_student()
    x = np.random.default_rng(9).standard_normal((1, 3, 64, 96)).astype(np.float32)

    def exported(m: nn.Layer, name: str) -> np.ndarray:
        export_inference(m, str(tmp_path / name / "inference"))
        return predict(load_predictor(str(tmp_path / name), threads=1), x)

    before = exported(model, "first")
    for p in model.parameters():  # as a training step would: new weights and new BN statistics
        p.set_value(p * 1.05 + 0.01)
    for name, b in model.named_buffers():
        if name.endswith("_mean"):
            b.set_value(paddle.randn(b.shape) * 0.1)
    again = exported(model, "again")
    assert len(traces) == 1
    fresh = exported(copy.deepcopy(model), "fresh")  # another model: traced anew
    assert len(traces) == 2
    np.testing.assert_array_equal(again, fresh)
    assert np.abs(again - before).max() > 1e-3
