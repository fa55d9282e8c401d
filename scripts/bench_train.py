"""Train-step throughput of the PP-OCRv3 student (and optionally CML) on CPU, on real pipeline batches.

Prints one figure per line with its ratio to PaddleOCR's own code measured on this machine kind
(student 640 crop batch 8: 0.36-0.45 samples/s; CML 640 crop batch 4: 0.036 samples/s), measured with 2 threads.
Paddle pins OMP_NUM_THREADS to 1 at import when it is unset, so dygraph runs on one core unless told otherwise;
`--threads` (default 2, the reference's count) sets the math-library threads after import.
`--onednn 1,0` (the default) measures with dygraph oneDNN on and off, steps interleaved so machine load hits both.

    python scripts/bench_train.py                      # student, 640 crop, batch 8, oneDNN on vs off
    python scripts/bench_train.py --mode cml --batch 4
    python scripts/bench_train.py --onednn 1           # oneDNN on only
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import paddle
from hydra.utils import instantiate

from ocrdet.build import build_task
from ocrdet.config import compose_config
from ocrdet.data.collate import TrainBatchToFloat, collate_train
from ocrdet.engine.module import TrainModule
from ocrdet.utils.setup import quiet_warnings

# PaddleOCR's reference figures on this machine kind (samples/s), from the scale-and-speed issue.
REFERENCE = {"student": (0.36, 0.45), "cml": (0.036, 0.036)}


@dataclass
class TrainStep:
    """A task, one fixed collated batch and an optimizer: everything one timed step needs."""

    task: TrainModule
    batch: Dict[str, paddle.Tensor]
    optimizer: paddle.optimizer.Optimizer

    def run(self, step: int = 0) -> None:
        loss = self.task.training_step(self.batch, step)["loss"]
        loss.backward()
        self.optimizer.step()
        self.optimizer.clear_grad()


def build_train_step(mode: str = "student", crop: int = 640, batch: int = 8, extra: Sequence[str] = ()) -> TrainStep:
    """The configured task (synthetic pipeline images at `crop`, so no data set is needed) and a batch of `batch`."""
    overrides = [f"data.crop_size={crop}", f"data.train.image_size={crop}", "logger=none", *extra]
    if mode == "cml":
        overrides.append("distill_mode=cml")
    cfg = compose_config("train", overrides)
    task = build_task(cfg, with_optimizer=False)
    dataset = instantiate(cfg.data.train)
    compact = {k: paddle.to_tensor(v) for k, v in collate_train([dataset[i] for i in range(batch)]).items()}
    tensors = TrainBatchToFloat.for_dataset(dataset)(compact)  # as the train loader hands batches over
    optimizer = paddle.optimizer.Adam(learning_rate=1e-4, parameters=task.trainable_parameters())
    task.train()
    return TrainStep(task, tensors, optimizer)


def set_cpu_threads(threads: int) -> None:
    """Math-library (OpenMP/MKL/oneDNN) threads for dygraph; Paddle's own default is 1 (OMP_NUM_THREADS=1)."""
    from paddle.base import core

    core.set_num_threads(int(threads))


def time_steps(step: TrainStep, flags: Sequence[bool], steps: int) -> Dict[bool, List[float]]:
    """Seconds per step for each oneDNN flag, the flags alternated step by step after one warm-up step each."""
    times: Dict[bool, List[float]] = {f: [] for f in flags}
    for i in range(steps + 1):
        for flag in flags:
            paddle.set_flags({"FLAGS_use_mkldnn": flag})
            start = time.perf_counter()
            step.run(i)
            if i:  # the first step per flag pays for kernel selection and allocation
                times[flag].append(time.perf_counter() - start)
    return times


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(REFERENCE), default="student")
    parser.add_argument("--crop", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per setting after one warm-up step each")
    parser.add_argument("--onednn", default="1,0", help="FLAGS_use_mkldnn values to compare, e.g. '1,0' or '1'")
    parser.add_argument("--threads", type=int, default=2, help="CPU math threads (Paddle's default is 1)")
    args = parser.parse_args(argv)
    quiet_warnings()
    paddle.set_device("cpu")
    set_cpu_threads(args.threads)
    flags = [bool(int(v)) for v in args.onednn.split(",")]

    step = build_train_step(args.mode, args.crop, args.batch)
    times = time_steps(step, flags, args.steps)
    paddle.set_flags({"FLAGS_use_mkldnn": flags[0]})

    print(f"threads: {args.threads} steps: {args.steps} (median of the timed steps per setting)")
    low, high = REFERENCE[args.mode]
    ref = f"{low}" if low == high else f"{low}-{high}"
    name = f"{args.mode}_{args.crop}_bs{args.batch}"
    results: Dict[str, float] = {}
    for flag in flags:
        step_s = statistics.median(times[flag])
        rate = args.batch / step_s
        tag = "onednn" if flag else "no_onednn"
        results[f"{name}_{tag}"] = rate
        print(f"{name}_{tag}_step: {step_s:.2f} s/step")
        # The first figure keeps the historical name, so logs stay comparable.
        label = f"{args.mode}_train_{args.crop}_bs{args.batch}" + ("" if flag == flags[0] else f"_{tag}")
        ratio = f"{rate / low:.2f}x" if low == high else f"{rate / high:.2f}x-{rate / low:.2f}x"
        print(f"{label}: {rate:.3f} samples/s ({tag}; ratio vs PaddleOCR {ref}: {ratio})")
    if len(flags) == 2:
        on, off = results[f"{name}_onednn"], results[f"{name}_no_onednn"]
        print(f"onednn_speedup_{name}: {on / off:.2f}x")
    return results


if __name__ == "__main__":
    main()
