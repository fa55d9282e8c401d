"""Train-step throughput of the PP-OCRv3 student (and optionally CML) on CPU, against PaddleOCR's own code timed in
the same run.

PaddleOCR's step (its config, model, loss and optimizer built by its own code, `scripts/paddleocr_reference.py`)
runs in its own environment (`--reference-python`) on the same batch, saved by this script; the two alternate step
by step (the order flipped each round), so machine load hits both alike. Each figure line carries the in-run ratio
and the machine (CPU model, vector extensions, load). Paddle pins OMP_NUM_THREADS to 1 at import, so `--threads`
(default 2) sets the math-library threads of both sides after import.

    python scripts/bench_train.py                       # student, 640 crop, batch 8, vs PaddleOCR
    python scripts/bench_train.py --mode cml --batch 4
    python scripts/bench_train.py --reference none      # ocrdet only
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import paddle
from hydra.utils import instantiate

from ocrdet.cli.build import build_task
from ocrdet.cli.config import compose_config
from ocrdet.data.datamodule import TrainBatchToFloat, collate_train
from ocrdet.engine.accelerator import serial_static_executor, setup_cpu_process
from ocrdet.engine.kernels import load_cpu_kernels, use_cpu_kernels
from ocrdet.engine.module import TrainModule
from ocrdet.utils.setup import quiet_warnings
from reference_process import ReferenceProcess, add_reference_args, machine

MODES = ("student", "cml")


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
    data = instantiate(cfg.data)
    dataset = data.train_dataset()
    compact = {k: paddle.to_tensor(v) for k, v in collate_train([dataset[i] for i in range(batch)]).items()}
    tensors = TrainBatchToFloat(data.batch_normalize)(compact)  # as the train loader hands batches over
    optimizer = paddle.optimizer.Adam(learning_rate=1e-4, parameters=task.trainable_parameters())
    task.train()
    return TrainStep(task, tensors, optimizer)


def set_cpu_threads(threads: int, reuse_memory: bool = True) -> None:
    """The process as the Trainer sets up a CPU run (`trainer.cpu_threads`, `trainer.cpu_reuse_memory`,
    `trainer.cpu_kernels`): math-library (OpenMP/MKL/oneDNN) threads, Paddle's own default being 1, freed memory kept
    for the next step, and ocrdet's CPU kernels built before anything is timed."""
    setup_cpu_process(threads, reuse_memory)
    use_cpu_kernels(True)
    load_cpu_kernels()


def save_batch(step: TrainStep, path: Path) -> None:
    """The step's batch for the reference process (PaddleOCR's DBLoss reads the same five arrays)."""
    keys = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
    np.savez(path, **{key: step.batch[key].numpy() for key in keys})


def time_interleaved(units: Dict[str, Callable[[int], float]], steps: int) -> Dict[str, List[float]]:
    """Seconds per step of each unit (a callable running step i and returning its own duration), the units taking
    turns step by step, in reversed order every other round; one untimed warm-up step each."""
    times: Dict[str, List[float]] = {name: [] for name in units}
    order = list(units)
    for i in range(steps + 1):
        for name in order if i % 2 == 0 else order[::-1]:
            seconds = units[name](i)
            if i:  # the first step pays for kernel selection, allocation and (compiled) the program build
                times[name].append(seconds)
    return times


def timed(run: Callable[[int], None]) -> Callable[[int], float]:
    def unit(i: int) -> float:
        start = time.perf_counter()
        run(i)
        return time.perf_counter() - start

    return unit


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="student")
    parser.add_argument("--crop", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per side after one warm-up step each")
    parser.add_argument("--onednn", type=int, default=1, help="FLAGS_use_mkldnn for ocrdet's dygraph step")
    parser.add_argument("--threads", type=int, default=2, help="CPU math threads of both sides (Paddle's default: 1)")
    parser.add_argument("--reuse-memory", type=int, default=1,
                        help="ocrdet's process keeps freed memory (trainer.cpu_reuse_memory, the default: 1) or not (0)")
    parser.add_argument("--variants", default="eager,compiled",
                        help="ocrdet steps to time: eager (dygraph), compiled (trainer.compile=true) and/or "
                             "eager_paddle_kernels (eager with Paddle's depthwise conv: trainer.cpu_kernels=false)")
    add_reference_args(parser)
    args = parser.parse_args(argv)
    quiet_warnings()
    paddle.set_device("cpu")
    set_cpu_threads(args.threads, bool(args.reuse_memory))
    paddle.set_flags({"FLAGS_use_mkldnn": bool(args.onednn)})

    variants = args.variants.split(",")
    step = build_train_step(args.mode, args.crop, args.batch)
    units: Dict[str, Callable[[int], float]] = {}
    if "eager" in variants:
        units["ocrdet"] = timed(step.run)
    if "eager_paddle_kernels" in variants:
        def paddle_kernels(i: int) -> None:
            use_cpu_kernels(False)
            try:
                step.run(i)
            finally:
                use_cpu_kernels(True)

        units["ocrdet_paddle_kernels"] = timed(paddle_kernels)
    if "compiled" in variants:
        compiled = build_train_step(args.mode, args.crop, args.batch)
        compiled.task.model.set_state_dict(step.task.model.state_dict())
        compiled.batch = step.batch
        serial_static_executor()  # as the Trainer compiles on CPU
        compiled.task.compile_training_step()
        units["ocrdet_compiled"] = timed(compiled.run)
    with contextlib.ExitStack() as stack:
        if args.reference == "paddleocr":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            save_batch(step, tmp / "batch.npz")
            reference = stack.enter_context(ReferenceProcess(
                ["train", "--mode", args.mode, "--batch-file", str(tmp / "batch.npz"), "--threads", str(args.threads)],
                python=args.reference_python, checkout=args.paddleocr, mkl=args.reference_mkl,
                malloc=args.reference_malloc,
            ))
            units["paddleocr"] = lambda i: float(reference.request("step")[0])
        times = time_interleaved(units, args.steps)

    where = machine()
    print(f"threads: {args.threads} steps: {args.steps} (median of the timed steps per side) {where}")
    name = f"{args.mode}_train_{args.crop}_bs{args.batch}"
    results = {side: args.batch / statistics.median(seconds) for side, seconds in times.items()}
    for side, rate in results.items():
        ratio = ""
        if "paddleocr" in results and side != "paddleocr":
            ratio = f"; ratio vs PaddleOCR in this run: {rate / results['paddleocr']:.2f}x"
        print(f"{name}_{side}: {rate:.3f} samples/s ({statistics.median(times[side]):.2f} s/step{ratio}) {where}")
    if "ocrdet" in results and "ocrdet_compiled" in results:
        print(f"{name}_compiled_vs_eager: {results['ocrdet_compiled'] / results['ocrdet']:.2f}x {where}")
    if "ocrdet" in results and "ocrdet_paddle_kernels" in results:
        print(f"{name}_cpu_kernels_vs_paddle_kernels: {results['ocrdet'] / results['ocrdet_paddle_kernels']:.2f}x {where}")
    return results


if __name__ == "__main__":
    main()
