"""ocrdet's CPU operators (`trainer.cpu_kernels`) against Paddle's own kernels, layer by layer.

Every depthwise conv, every nearest upsampling and every stride-1 'same' K x K conv (K >= 3: the neck's and the
head's 3x3s) of the PP-OCRv3 student, at the shape it sees in a training step (640 crop, batch 8 by default), runs
forward + backward on the same input and output gradient with Paddle's kernel (`depthwise_conv2d`; the necks'
ones-kernel transposed conv; `conv2d`) and with ocrdet's operator, in turn (`--repeats` rounds,
the order flipped each round, median per side). One line per shape and one per operator for all of them, each with
the in-run ratio and the machine.

    python scripts/bench_kernels.py [--crop 640] [--batch 8] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import paddle
import paddle.nn.functional as F

from bench_train import build_train_step, set_cpu_threads
import ocrdet.models.necks.db_fpn as db_fpn
from ocrdet.engine import kernels
from ocrdet.engine.kernels import DepthwiseConv2D, use_cpu_kernels
from ocrdet.utils.setup import quiet_warnings
from reference_process import machine

Shape = Tuple[Tuple[int, ...], int, int]  # input shape, kernel, stride
UpShape = Tuple[Tuple[int, ...], int]  # input shape, factor
SameShape = Tuple[Tuple[int, ...], int, int]  # input shape, output channels, kernel


def layer_shapes(crop: int, batch: int) -> Tuple[Counter, Counter, Counter]:
    """(input shape, kernel, stride) of each depthwise conv, (input shape, factor) of each upsampling and (input
    shape, output channels, kernel) of each same-padding conv in the student's training forward, with their counts."""
    step = build_train_step("student", crop, batch)
    convs: Counter = Counter()
    ups: Counter = Counter()
    same: Counter = Counter()

    def record(layer: DepthwiseConv2D, inputs: Tuple[paddle.Tensor, ...]) -> None:
        convs[(tuple(inputs[0].shape), layer._kernel_size[0], layer._stride[0])] += 1

    def spy(x: paddle.Tensor, factor: int, for_export: bool) -> Optional[paddle.Tensor]:
        ups[(tuple(x.shape), factor)] += 1
        return operator(x, factor, for_export)

    def spy_same(x: paddle.Tensor, weight: paddle.Tensor, for_export: bool) -> Optional[paddle.Tensor]:
        same[(tuple(x.shape), weight.shape[0], weight.shape[2])] += 1
        return same_operator(x, weight, for_export)

    hooks = [m.register_forward_pre_hook(record) for m in step.task.model.sublayers() if isinstance(m, DepthwiseConv2D)]
    operator, db_fpn.upsample_nearest = db_fpn.upsample_nearest, spy
    same_operator, kernels.conv2d_same = kernels.conv2d_same, spy_same
    try:
        with paddle.no_grad():
            step.task.model(step.batch["image"])
    finally:
        db_fpn.upsample_nearest = operator
        kernels.conv2d_same = same_operator
        for hook in hooks:
            hook.remove()
    return convs, ups, same


def time_sides(run: Callable[[], None], repeats: int) -> Dict[str, float]:
    """Median seconds of `run` per side (Paddle's kernels, ocrdet's operators), taking turns."""
    times: Dict[str, List[float]] = {"paddle": [], "ocrdet": []}
    for i in range(repeats + 1):  # the first round warms both up
        for side in (("paddle", "ocrdet") if i % 2 else ("ocrdet", "paddle")):
            use_cpu_kernels(side == "ocrdet")
            start = time.perf_counter()
            run()
            if i:
                times[side].append(time.perf_counter() - start)
    use_cpu_kernels(True)
    return {side: statistics.median(values) for side, values in times.items()}


def time_layer(shape: Shape, repeats: int) -> Dict[str, float]:
    """Median seconds of a depthwise conv's forward + backward per side."""
    size, kernel, stride = shape
    layer = DepthwiseConv2D(size[1], kernel, stride=stride)
    x = paddle.randn(list(size))
    x.stop_gradient = False
    grad = paddle.randn(layer(x).shape)
    return time_sides(lambda: paddle.grad([layer(x)], [x, layer.weight], [grad]), repeats)


def time_upsample(shape: UpShape, repeats: int) -> Dict[str, float]:
    """Median seconds of an upsampling's forward + backward per side."""
    size, factor = shape
    x = paddle.randn(list(size))
    x.stop_gradient = False
    grad = paddle.randn([*size[:2], size[2] * factor, size[3] * factor])
    return time_sides(lambda: paddle.grad([db_fpn.upsample(x, factor)], [x], [grad]), repeats)


def time_same(shape: SameShape, repeats: int) -> Dict[str, float]:
    """Median seconds of a same-padding conv's forward + backward per side."""
    size, out_channels, kernel = shape
    x = paddle.randn(list(size))
    weight = paddle.randn([out_channels, size[1], kernel, kernel]) * 0.1
    x.stop_gradient = weight.stop_gradient = False
    grad = paddle.randn([size[0], out_channels, *size[2:]])

    def run() -> None:
        y = kernels.conv2d_same(x, weight, for_export=False)  # None with use_cpu_kernels(False)
        paddle.grad([F.conv2d(x, weight, padding=kernel // 2) if y is None else y], [x, weight], [grad])

    return time_sides(run, repeats)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="CPU math threads (Paddle's default: 1)")
    args = parser.parse_args(argv)
    quiet_warnings()
    paddle.set_device("cpu")
    set_cpu_threads(args.threads)
    where = machine()
    convs, ups, same = layer_shapes(args.crop, args.batch)
    totals: Dict[str, float] = {}
    for kind, shapes, timer in (("depthwise", convs, time_layer), ("upsample", ups, time_upsample),
                                ("same_conv", same, time_same)):
        total = {"paddle": 0.0, "ocrdet": 0.0}
        for shape, count in sorted(shapes.items()):
            seconds = timer(shape, args.repeats)
            for side in total:
                total[side] += count * seconds[side]
            (n, c, h, w), *rest = shape
            name = (f"k{rest[0]}_s{rest[1]}" if kind == "depthwise" else f"x{rest[0]}" if kind == "upsample"
                    else f"to{rest[0]}_k{rest[1]}")
            print(f"{kind}_{n}x{c}x{h}x{w}_{name} (x{count}): paddle {seconds['paddle'] * 1e3:.1f} ms, ocrdet "
                  f"{seconds['ocrdet'] * 1e3:.1f} ms forward+backward: {seconds['paddle'] / seconds['ocrdet']:.2f}x "
                  f"{where}")
        print(f"{kind}_all_layers_{args.crop}_bs{args.batch}: paddle {total['paddle'] * 1e3:.0f} ms, ocrdet "
              f"{total['ocrdet'] * 1e3:.0f} ms per step: {total['paddle'] / total['ocrdet']:.2f}x {where}")
        totals.update({f"{kind}_{side}": value for side, value in total.items()})
    return totals


if __name__ == "__main__":
    main()
