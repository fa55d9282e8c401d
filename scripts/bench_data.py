"""Training-pipeline throughput on ICDAR2015 train, for the pipeline users run: the train transforms and dataset of
the composed training config (`--experiment`, default the PP-OCRv3 student recipe: conf/transforms/db_train.yaml,
decode -> AugmentCrop -> border map -> shrink map -> normalize -> CHW), at each `--crops` size.

Prints, per crop size, one figure per line:
  pipeline_1proc_<crop>: samples/s in this process, collated into batches of 8 and converted as the training step
      receives them (TrainBatchToFloat: batch normalization of the uint8 images, float32 targets), with the ratio to PaddleOCR's own code (one process, measured on
      this machine kind: 14.6 samples/s at 960, 20.8 at 640; no ratio for other crops). The process is first set up
      as every loader worker sets itself up (`ocrdet.data.loaders.setup_worker_process`: the allocator keeps freed
      memory), so it measures what one worker does; `--as-is` leaves the process as it starts;
  pipeline_1proc_<crop>_cpu: the same run per CPU second used by the process (all its threads): what the pipeline
      costs, less sensitive than wall time to other jobs on a shared machine;
  pipeline_<n>workers_<crop>: samples/s through ocrdet's DataLoader (batch 8, shared memory, collate_train), from
      the loader's start (worker start-up included), with the ratio to the same one-process PaddleOCR figure;
  op_<name>_ms: mean milliseconds per sample of each op in the one-process run, and op_load_ms for the file read
      and the dataset's own bookkeeping.
The first line gives the machine's load average: figures on a shared machine drift with it.

    python scripts/bench_data.py [--crops 960 640] [--samples 100] [--workers 2] [--experiment ppocrv3_det_student]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import paddle
from hydra.utils import instantiate

from ocrdet.config import compose_config
from ocrdet.data.collate import TrainBatchToFloat, collate_train
from ocrdet.data.loaders import MappedLoader, build_dataloader, setup_worker_process
from ocrdet.data.profiling import OpTimes

REPO = Path(__file__).resolve().parents[1]
PADDLEOCR_SAMPLES_PER_S = {960: 14.6, 640: 20.8}
BATCH_SIZE = 8
WARMUP_SAMPLES = 2  # first calls pay one-off costs (imports, OpenCV's thread pool, page faults)


class Pipeline:
    """The composed training config's dataset and train transforms for one crop size."""

    def __init__(self, experiment: str, crop: int, root: str | None) -> None:
        overrides = [f"experiment={experiment}", f"data.crop_size={crop}"]
        if root:
            overrides.append(f"data.root={root}")
        self.data = compose_config("train", overrides, output_dir=REPO / "outputs" / "bench_data").data

    def transforms(self) -> dict[str, Any]:
        return dict(instantiate(self.data.train_transforms))

    def dataset(self, transforms: dict[str, Any]) -> Any:
        return instantiate(self.data.train, transforms=transforms, _convert_="object")


def figure(name: str, rate: float, crop: int) -> str:
    reference = PADDLEOCR_SAMPLES_PER_S.get(crop)
    ratio = f" (ratio vs PaddleOCR {reference}: {rate / reference:.2f}x)" if reference else " (no PaddleOCR reference)"
    return f"{name}: {rate:.1f} samples/s{ratio}"


def bench_one_process(pipeline: Pipeline, samples: int, seed: int) -> tuple[float, float, dict[str, float]]:
    """(samples per wall second, samples per CPU second of this process, mean wall ms per op) over `samples` random
    train images, delivered as the training step receives them: batches of BATCH_SIZE collated (`collate_train`),
    made tensors and converted in this process (`TrainBatchToFloat`: the batch normalization when the pipeline's
    NormalizeImage runs on_batch, and the binary targets' float32)."""
    times = OpTimes()
    dataset = pipeline.dataset(times.wrap(pipeline.transforms()))
    to_float = TrainBatchToFloat.for_dataset(dataset)
    np.random.seed(seed)
    order = np.random.permutation(len(dataset))
    indices = [int(order[i % len(order)]) for i in range(samples + WARMUP_SAMPLES)]

    def deliver(batch_indices: list[int]) -> float:
        """Load a batch's samples, then collate and convert them; returns the seconds of the latter."""
        loaded = [dataset[i] for i in batch_indices]
        t = time.perf_counter()
        to_float({k: paddle.to_tensor(v) for k, v in collate_train(loaded).items()})
        return time.perf_counter() - t

    deliver(indices[:WARMUP_SAMPLES])
    times.seconds.clear()
    times.calls.clear()
    timed = indices[WARMUP_SAMPLES:]
    start, start_cpu = time.perf_counter(), time.process_time()
    batching = sum(deliver(timed[first:first + BATCH_SIZE]) for first in range(0, samples, BATCH_SIZE))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    per_op = times.mean_ms()
    per_op["collate_to_float"] = 1000.0 * batching / samples
    per_op["load"] = max(0.0, 1000.0 * elapsed / samples - sum(per_op.values()))
    return samples / elapsed, samples / cpu, per_op


def bench_loader(pipeline: Pipeline, samples: int, workers: int, seed: int) -> float:
    dataset = pipeline.dataset(pipeline.transforms())
    loader = build_dataloader(
        dataset, BATCH_SIZE, collate_train, shuffle=True, num_workers=workers, seed=seed, use_shared_memory=True
    )
    loader = MappedLoader(loader, TrainBatchToFloat.for_dataset(dataset))  # as ocrdet.build.build_train_loader
    seen = 0
    start = time.perf_counter()
    while seen < samples:
        for batch in loader:
            seen += int(batch["image"].shape[0])
            if seen >= samples:
                break
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="ICDAR2015 root (default: the config's, ../shared/data/icdar2015)")
    parser.add_argument("--crops", type=int, nargs="+", default=[960, 640])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experiment", default="ppocrv3_det_student")
    parser.add_argument("--as-is", action="store_true", help="skip the loader workers' process settings")
    args = parser.parse_args()

    if not args.as_is:
        setup_worker_process()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    setup = "process as-is" if args.as_is else "process set up as a loader worker"
    print(f"machine: {os.cpu_count()} cores, load average {load}; experiment={args.experiment}; {setup}", flush=True)
    for crop in args.crops:
        pipeline = Pipeline(args.experiment, crop, args.root)
        rate, cpu_rate, per_op = bench_one_process(pipeline, args.samples, args.seed)
        print(figure(f"pipeline_1proc_{crop}", rate, crop), flush=True)
        print(f"pipeline_1proc_{crop}_cpu: {cpu_rate:.1f} samples per CPU second of the process", flush=True)
        rate = bench_loader(pipeline, args.samples, args.workers, args.seed)
        print(figure(f"pipeline_{args.workers}workers_{crop}", rate, crop), flush=True)
        for name, ms in per_op.items():
            print(f"op_{name}_ms_{crop}: {ms:.1f}")


if __name__ == "__main__":
    main()
