"""ocrdet's CPU depthwise-conv operator (`trainer.cpu_kernels`) against Paddle's own kernel, layer by layer.

Every depthwise conv of the PP-OCRv3 student, at the shape it sees in a training step (640 crop, batch 8 by
default), runs forward + backward on the same input and output gradient with Paddle's `depthwise_conv2d` and with
ocrdet's operator, in turn (`--repeats` rounds, the order flipped each round, median per side). One line per layer
shape and one for all of them, each with the in-run ratio and the machine.

    python scripts/bench_kernels.py [--crop 640] [--batch 8] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import paddle

from bench_train import build_train_step, set_cpu_threads
from ocrdet.engine.kernels import DepthwiseConv2D, use_cpu_kernels
from ocrdet.utils.setup import quiet_warnings
from reference_process import machine

Shape = Tuple[Tuple[int, ...], int, int]  # input shape, kernel, stride


def layer_shapes(crop: int, batch: int) -> Counter:
    """(input shape, kernel, stride) of each depthwise conv in the student's forward, with its count."""
    step = build_train_step("student", crop, batch)
    seen: Counter = Counter()

    def record(layer: DepthwiseConv2D, inputs: Tuple[paddle.Tensor, ...]) -> None:
        seen[(tuple(inputs[0].shape), layer._kernel_size[0], layer._stride[0])] += 1

    hooks = [m.register_forward_pre_hook(record) for m in step.task.model.sublayers() if isinstance(m, DepthwiseConv2D)]
    with paddle.no_grad():
        step.task.model(step.batch["image"])
    for hook in hooks:
        hook.remove()
    return seen


def time_layer(shape: Shape, repeats: int) -> Dict[str, float]:
    """Median seconds of forward + backward per side."""
    size, kernel, stride = shape
    layer = DepthwiseConv2D(size[1], kernel, stride=stride)
    x = paddle.randn(list(size))
    x.stop_gradient = False
    grad = paddle.randn(layer(x).shape)
    times: Dict[str, List[float]] = {"paddle": [], "ocrdet": []}
    for i in range(repeats + 1):  # the first round warms both up
        for side in (("paddle", "ocrdet") if i % 2 else ("ocrdet", "paddle")):
            use_cpu_kernels(side == "ocrdet")
            start = time.perf_counter()
            paddle.grad([layer(x)], [x, layer.weight], [grad])
            if i:
                times[side].append(time.perf_counter() - start)
    use_cpu_kernels(True)
    return {side: statistics.median(values) for side, values in times.items()}


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
    total = {"paddle": 0.0, "ocrdet": 0.0}
    where = machine()
    for shape, count in sorted(layer_shapes(args.crop, args.batch).items()):
        seconds = time_layer(shape, args.repeats)
        for side in total:
            total[side] += count * seconds[side]
        (n, c, h, w), kernel, stride = shape
        print(f"depthwise_{n}x{c}x{h}x{w}_k{kernel}_s{stride} (x{count}): paddle {seconds['paddle'] * 1e3:.1f} ms, "
              f"ocrdet {seconds['ocrdet'] * 1e3:.1f} ms forward+backward: {seconds['paddle'] / seconds['ocrdet']:.2f}x "
              f"{where}")
    print(f"depthwise_all_layers_{args.crop}_bs{args.batch}: paddle {total['paddle'] * 1e3:.0f} ms, ocrdet "
          f"{total['ocrdet'] * 1e3:.0f} ms per step: {total['paddle'] / total['ocrdet']:.2f}x {where}")
    return total


if __name__ == "__main__":
    main()
