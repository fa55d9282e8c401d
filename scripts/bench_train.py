"""Train-step throughput of the PP-OCRv3 student (and optionally CML) on CPU, on real pipeline batches.

Prints one figure per line with its ratio to PaddleOCR's own code measured on this machine kind
(student 640 crop batch 8: 0.36-0.45 samples/s; CML 640 crop batch 4: 0.036 samples/s).

    python scripts/bench_train.py                      # student, 640 crop, batch 8
    python scripts/bench_train.py --mode cml --batch 4
"""
from __future__ import annotations

import argparse
import statistics
import time

import paddle
from hydra.utils import instantiate

from ocrdet.build import build_task
from ocrdet.config import compose_config
from ocrdet.data.collate import collate_train
from ocrdet.utils.setup import quiet_warnings

# PaddleOCR's reference figures on this machine kind (samples/s), from the scale-and-speed issue.
REFERENCE = {"student": (0.36, 0.45), "cml": (0.036, 0.036)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(REFERENCE), default="student")
    parser.add_argument("--crop", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--onednn", type=int, default=1, help="FLAGS_use_mkldnn for dygraph (1/0)")
    args = parser.parse_args()
    quiet_warnings()
    paddle.set_device("cpu")
    paddle.set_flags({"FLAGS_use_mkldnn": bool(args.onednn)})

    overrides = [f"data.crop_size={args.crop}", "data.train.image_size=" + str(args.crop)]
    if args.mode == "cml":
        overrides.append("distill_mode=cml")
    cfg = compose_config("train", overrides)
    task = build_task(cfg, with_optimizer=False)
    dataset = instantiate(cfg.data.train)
    batch = {k: paddle.to_tensor(v) for k, v in collate_train([dataset[i] for i in range(args.batch)]).items()}
    optimizer = paddle.optimizer.Adam(learning_rate=1e-4, parameters=task.trainable_parameters())
    task.train()

    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        loss = task.training_step(batch, step)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if step:  # the first step pays for kernel selection and allocation
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    rate = args.batch / step_s
    low, high = REFERENCE[args.mode]
    ref = f"{low}" if low == high else f"{low}-{high}"
    print(f"{args.mode}_step_{args.crop}_bs{args.batch}: {step_s:.2f} s/step")
    print(
        f"{args.mode}_train_{args.crop}_bs{args.batch}: {rate:.3f} samples/s "
        f"(ratio vs PaddleOCR {ref}: {rate / high:.2f}x-{rate / low:.2f}x)"
    )


if __name__ == "__main__":
    main()
