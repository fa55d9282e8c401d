"""ocrdet's CPU operators (`ocrdet.engine.kernels`, the Trainer's `cpu_kernels`): depthwise conv, nearest upsampling,
stride-1 same-padding conv.

The depthwise conv's forward and both gradients are checked against the exact result (float64) within the error
bound of float32 summation: a sum of n products computed in float32, in any order, is within gamma_n * sum|products|
of the exact sum, gamma_n = n*u / (1 - n*u), u = 2**-24 (Higham, Accuracy and Stability of Numerical Algorithms,
3.1). n is the number of terms of each sum: K*K for an output or an input gradient, N*OH*OW for a weight gradient.
The magnitude sums are the same convolutions run on absolute values in float64. Upsampling copies (exact); its
gradient sums F*F terms per input pixel (n = F*F). The same-padding conv sums Cin*K*K terms per output, Cout*K*K per
input gradient and N*H*W per weight gradient.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ocrdet.engine import kernels
from ocrdet.engine.accelerator import set_cpu_threads
from ocrdet.engine.kernels import Conv2D, DepthwiseConv2D, cpu_kernels_enabled, load_cpu_kernels, use_cpu_kernels
from ocrdet.engine.trainer import Trainer
from ocrdet.models.necks.db_fpn import upsample
from ocrdet.models.necks.rse_fpn import RSEFPN

U = 2.0 ** -24


def _gamma(n: int) -> float:
    return n * U / (1 - n * U)


@pytest.fixture(scope="module")
def op():
    paddle.set_device("cpu")
    module = load_cpu_kernels()
    if module is None:
        pytest.skip("ocrdet's CPU kernels could not be built here (no C++ compiler?)")
    return module


def _exact(x: np.ndarray, w: np.ndarray, g: np.ndarray, stride: int, groups: int | None = None) -> tuple[np.ndarray, ...]:
    """Output, input gradient and weight gradient in float64 (Paddle's conv on float64 tensors); depthwise unless
    `groups` is given."""
    xt = paddle.to_tensor(x, dtype="float64", stop_gradient=False)
    wt = paddle.to_tensor(w, dtype="float64", stop_gradient=False)
    k = w.shape[-1]
    y = F.conv2d(xt, wt, stride=stride, padding=k // 2, groups=groups or x.shape[1])
    gx, gw = paddle.grad([y], [xt, wt], [paddle.to_tensor(g, dtype="float64")])
    return y.numpy(), gx.numpy(), gw.numpy()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "shape,k,stride",
    [
        ((2, 3, 9, 13), 3, 1), ((2, 3, 9, 13), 3, 2), ((1, 4, 16, 16), 5, 1), ((3, 2, 17, 10), 5, 2),
        ((1, 5, 12, 11), 7, 1), ((2, 2, 19, 19), 9, 2), ((1, 2, 4, 3), 9, 1), ((1, 8, 1, 1), 3, 2),
    ],
)
def test_depthwise_conv_and_its_gradients_are_exact_to_float32_summation(op, shape, k, stride, threads):
    set_cpu_threads(threads)  # the two-thread case once ran every channel on both threads
    rng = np.random.default_rng(sum(shape) + k + stride)
    n, c, h, w_ = shape
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    xt = paddle.to_tensor(x, stop_gradient=False)
    wt = paddle.to_tensor(w, stop_gradient=False)
    y = op.ocrdet_depthwise_conv(xt, wt, stride)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw = paddle.grad([y], [xt, wt], [paddle.to_tensor(g)])

    exact = _exact(x, w, g, stride)
    magnitude = _exact(np.abs(x), np.abs(w), np.abs(g), stride)
    oh, ow = exact[0].shape[2:]
    assert list(y.shape) == [n, c, oh, ow]
    terms = (k * k, k * k, n * oh * ow)
    for got, want, size, count in zip((y, gx, gw), exact, magnitude, terms):
        err = np.abs(got.numpy().astype(np.float64) - want)
        assert (err <= _gamma(count) * size).all(), float((err / (size + 1e-300)).max())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "shape,cout,k",
    [((2, 5, 9, 13), 4, 3), ((3, 2, 6, 5), 7, 5), ((1, 3, 12, 11), 2, 9), ((2, 4, 1, 1), 3, 3), ((1, 1, 2, 40), 1, 3),
     ((5, 16, 14, 12), 6, 3)],  # the last: more GEMM columns (5 * 16 * 14 = 1120) than one block holds (1024)
)
def test_same_padding_conv_and_its_gradients_are_exact_to_float32_summation(op, shape, cout, k, threads):
    set_cpu_threads(threads)
    rng = np.random.default_rng(sum(shape) + cout + k)
    n, cin, h, w_ = shape
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    xt = paddle.to_tensor(x, stop_gradient=False)
    wt = paddle.to_tensor(w, stop_gradient=False)
    y = op.ocrdet_conv2d_same(xt, wt)
    assert list(y.shape) == [n, cout, h, w_]
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw = paddle.grad([y], [xt, wt], [paddle.to_tensor(g)])
    exact = _exact(x, w, g, 1, groups=1)
    magnitude = _exact(np.abs(x), np.abs(w), np.abs(g), 1, groups=1)
    for got, want, size, count in zip((y, gx, gw), exact, magnitude, (cin * k * k, cout * k * k, n * h * w_)):
        err = np.abs(got.numpy().astype(np.float64) - want)
        assert (err <= _gamma(count) * size).all(), float((err / (size + 1e-300)).max())


def test_the_conv_layer_runs_the_operator_for_stride_1_same_convs_and_paddles_conv_elsewhere(op):
    paddle.seed(4)
    x = paddle.randn([2, 6, 10, 9])
    layer = Conv2D(6, 5, 3, padding=1)  # with a bias
    assert kernels.fast_conv_applies(layer, x)
    reference = F.conv2d(x, layer.weight, layer.bias, padding=1)
    got = layer(x)
    sizes = F.conv2d(x.abs(), layer.weight.abs(), layer.bias.abs(), padding=1)
    assert (np.abs(got.numpy() - reference.numpy()) <= 2 * _gamma(6 * 9 + 1) * sizes.numpy()).all()
    assert not kernels.fast_conv_applies(Conv2D(6, 5, 1), x)  # 1x1: already one GEMM in Paddle
    assert not kernels.fast_conv_applies(Conv2D(6, 5, 3, stride=2, padding=1), x)
    assert not kernels.fast_conv_applies(Conv2D(6, 6, 3, padding=1, groups=3), x)
    assert not kernels.fast_conv_applies(Conv2D(6, 5, 3, padding=0), x)
    assert not kernels.fast_conv_applies(Conv2D(6, 5, 3, padding=2, dilation=2), x)
    assert not kernels.fast_conv_applies(layer, x.astype("float64"))
    assert "custom_op.ocrdet_conv2d_same" in _traced_ops(Conv2D(6, 5, 3, padding=1), x)
    traced = _traced_ops(Conv2D(6, 5, 3, padding=1).eval(), x)  # an export: Paddle's conv only
    assert "pd_op.conv2d" in traced and not [name for name in traced if "ocrdet" in name]
    _runs_paddles_kernel(layer, x, reference, kernels.fast_conv_applies)


def _runs_paddles_kernel(layer: paddle.nn.Layer, x: paddle.Tensor, reference: paddle.Tensor, applies) -> None:
    """With `use_cpu_kernels(False)` the operator does not apply and `layer` gives Paddle's own result, bit for bit."""
    use_cpu_kernels(False)
    try:
        assert not applies(layer, x)
        np.testing.assert_array_equal(layer(x).numpy(), reference.numpy())
    finally:
        use_cpu_kernels(True)


def _traced_ops(layer: paddle.nn.Layer, x: paddle.Tensor | list[paddle.Tensor]) -> list[str]:
    """The op names of `layer`'s static program (to_static converts `layer` itself: pass a fresh one)."""
    # oneDNN off while tracing, as for compiled training and exports (a CPU Trainer earlier in the session turns it
    # on; Paddle 3.3.1's static depthwise conv then fails on oneDNN)
    onednn = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    paddle.set_flags({"FLAGS_use_mkldnn": False})
    try:
        static = paddle.jit.to_static(layer, full_graph=True)
        static(x)
    finally:
        paddle.set_flags({"FLAGS_use_mkldnn": onednn})
    program = static.forward.concrete_program.main_program
    return [op.name() for op in program.global_block().ops]


def test_the_layer_runs_the_operator_where_it_applies_and_paddles_conv_elsewhere(op):
    paddle.seed(3)
    layer = DepthwiseConv2D(6, 3, stride=2)
    x = paddle.randn([2, 6, 11, 11])
    reference = F.conv2d(x, layer.weight, stride=2, padding=1, groups=6)
    np.testing.assert_array_equal(layer(x).numpy().shape, reference.numpy().shape)
    assert kernels.fast_depthwise_applies(layer, x)
    assert not kernels.fast_depthwise_applies(layer, x.astype("float64"))
    assert not kernels.fast_depthwise_applies(DepthwiseConv2D(6, 11), x)  # no loops for an 11x11 kernel
    assert not kernels.fast_depthwise_applies(paddle.nn.Conv2D(6, 6, 3, stride=3, padding=1, groups=6), x)
    assert not kernels.fast_depthwise_applies(paddle.nn.Conv2D(6, 6, 3, padding=1, groups=6, dilation=2), x)
    # compiled training keeps the operator; an inference export (eval mode) holds only Paddle's own ops, which the
    # predictor and paddle2onnx know
    assert "custom_op.ocrdet_depthwise_conv" in _traced_ops(DepthwiseConv2D(6, 3, stride=2), x)
    traced = _traced_ops(DepthwiseConv2D(6, 3, stride=2).eval(), x)
    assert "pd_op.depthwise_conv2d" in traced and not [name for name in traced if "ocrdet" in name]
    _runs_paddles_kernel(layer, x, reference, kernels.fast_depthwise_applies)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,factor", [((2, 3, 5, 7), 2), ((1, 2, 4, 3), 3), ((2, 4, 3, 5), 4), ((1, 3, 2, 2), 8),
                                          ((1, 1, 1, 1), 2)])
def test_nearest_upsampling_copies_and_its_gradient_sums_each_block(op, shape, factor, threads):
    set_cpu_threads(threads)
    rng = np.random.default_rng(sum(shape) + factor)
    n, c, h, w = shape
    x = rng.standard_normal(shape).astype(np.float32)
    xt = paddle.to_tensor(x, stop_gradient=False)
    y = op.ocrdet_upsample_nearest(xt, factor)
    np.testing.assert_array_equal(y.numpy(), x.repeat(factor, axis=2).repeat(factor, axis=3))
    g = rng.standard_normal((n, c, h * factor, w * factor)).astype(np.float32)
    (gx,) = paddle.grad([y], [xt], [paddle.to_tensor(g)])
    blocks = g.astype(np.float64).reshape(n, c, h, factor, w, factor)
    err = np.abs(gx.numpy().astype(np.float64) - blocks.sum(axis=(3, 5)))
    assert (err <= _gamma(factor * factor) * np.abs(blocks).sum(axis=(3, 5))).all()


def test_the_necks_upsample_on_the_operator_in_training_and_on_paddles_ops_in_exports(op):
    x = paddle.randn([2, 96, 4, 6])
    up = upsample(x, 4)
    np.testing.assert_array_equal(up.numpy(), x.numpy().repeat(4, axis=2).repeat(4, axis=3))
    use_cpu_kernels(False)
    try:
        np.testing.assert_array_equal(upsample(x, 4).numpy(), up.numpy())  # Paddle's transposed conv: the same copy
    finally:
        use_cpu_kernels(True)
    paddle.seed(5)
    levels = [paddle.randn([1, c, 32 // 2**i, 32 // 2**i]) for i, c in enumerate([16, 24, 56, 480])]

    def traced(training: bool) -> list[str]:
        neck = RSEFPN([16, 24, 56, 480], 96)
        return _traced_ops(neck.train() if training else neck.eval(), levels)

    assert traced(True).count("custom_op.ocrdet_upsample_nearest") == 6  # 3 top-down, 3 in the fusion (x2, x4, x8)
    assert not [name for name in traced(False) if "ocrdet" in name]


def test_eval_mode_layers_in_a_compiled_training_step_keep_the_operators(op):
    # a frozen teacher runs in eval mode inside the CML training program: that is training, not an export
    x = paddle.randn([1, 6, 8, 8])
    # all alive at once: Paddle's program cache keys layers by id(), which a collected layer's successor may reuse
    in_training, depthwise, export = Conv2D(6, 5, 3, padding=1), DepthwiseConv2D(6, 3), Conv2D(6, 5, 3, padding=1)
    with kernels.tracing_training_program():
        traced = _traced_ops(in_training.eval(), x)
        assert "custom_op.ocrdet_conv2d_same" in traced and "pd_op.conv2d" not in traced
        assert "custom_op.ocrdet_depthwise_conv" in _traced_ops(depthwise.eval(), x)
    traced = _traced_ops(export.eval(), x)
    assert "pd_op.conv2d" in traced and "custom_op.ocrdet_conv2d_same" not in traced


def test_an_unbuildable_operator_falls_back_to_paddles_kernel_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OCRDET_KERNEL_CACHE", str(blocker / "kernels"))  # a cache folder that cannot be made
    with pytest.warns(RuntimeWarning, match="ocrdet CPU kernels unavailable"):
        assert load_cpu_kernels() is None
    layer = DepthwiseConv2D(4, 3)
    x = paddle.randn([1, 4, 8, 8])
    assert not kernels.fast_depthwise_applies(layer, x)
    np.testing.assert_array_equal(layer(x).numpy(), F.conv2d(x, layer.weight, padding=1, groups=4).numpy())
    monkeypatch.undo()
    assert kernels.fast_depthwise_applies(layer, x)  # the usual folder's operator, loaded once per process


def test_a_cpu_trainer_uses_the_kernels_unless_told_not_to(tmp_path):
    try:
        Trainer(accelerator="cpu", max_steps=1, default_root_dir=str(tmp_path), cpu_kernels=False)
        assert not cpu_kernels_enabled()
        Trainer(accelerator="cpu", max_steps=1, default_root_dir=str(tmp_path))
        assert cpu_kernels_enabled()
    finally:
        use_cpu_kernels(True)
