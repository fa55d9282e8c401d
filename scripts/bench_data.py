"""Training-pipeline throughput on ICDAR2015 train, for the pipeline users run: the train transforms and dataset of
the composed training config (`--experiment`, default the PP-OCRv3 student recipe: conf/transforms/db_train.yaml,
decode -> AugmentCrop -> border map -> shrink map -> normalize -> CHW), at each `--crops` size.

Prints, per crop size, one figure per line:
  pipeline_1proc_<crop>: samples/s in this process, collated into batches of 8 and converted as the training step
      receives them (TrainBatchToFloat: batch normalization of the uint8 images, float32 targets), with the ratio to
      PaddleOCR's own pipeline timed in the same run (`--reference paddleocr`, the default: its student config's
      train transforms built by its own code in its environment, `scripts/paddleocr_reference.py`, on the same
      images, batch for batch in turn with ocrdet's so machine load hits both alike). The process is first set up
      as every loader worker sets itself up (`ocrdet.data.datamodule.setup_worker_process`: the allocator keeps freed
      memory), so it measures what one worker does; `--as-is` leaves the process as it starts;
  pipeline_1proc_<crop>_cpu: the same run per CPU second used by the process (all its threads): what the pipeline
      costs, less sensitive than wall time to other jobs on a shared machine;
  pipeline_<n>workers_<crop>: samples/s through ocrdet's DataLoader (batch 8, shared memory, collate_train), from
      the loader's start (worker start-up included), with the ratio to the same one-process PaddleOCR figure;
  pipeline_1proc_<crop>_paddleocr: PaddleOCR's one-process figure of this run;
  op_<name>_ms: mean milliseconds per sample of each op in the one-process run, and op_load_ms for the file read
      and the dataset's own bookkeeping.
Every figure line ends with the machine (CPU model, vector extensions, load average): figures drift with its load.

    python scripts/bench_data.py [--crops 960 640] [--samples 100] [--workers 2] [--experiment ppocrv3_det_student]
    python scripts/bench_data.py --reference none      # ocrdet only
"""
from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import paddle
from hydra.utils import instantiate

from ocrdet.cli.config import compose_config
from ocrdet.data.datamodule import TrainBatchToFloat, TrainLoader, build_dataloader, collate_train, setup_worker_process
from ocrdet.data.profiling import OpTimes
from ocrdet.engine.memory import keep_freed_memory
from reference_process import ReferenceProcess, add_reference_args, machine

REPO = Path(__file__).resolve().parents[1]
BATCH_SIZE = 8
WARMUP_SAMPLES = BATCH_SIZE  # one batch: first calls pay one-off costs (imports, OpenCV's thread pool, the first
# batch-sized arrays of TrainBatchToFloat's pool, ~150 ms at 960: a fifth of a 32-sample run's time)


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
        return instantiate(self.data, train_transforms=transforms).train_dataset()

    def to_float(self) -> TrainBatchToFloat:
        """The main-process half of the train loader (ocrdet.data.datamodule.DataModule.train_dataloader)."""
        return TrainBatchToFloat(instantiate(self.data.batch_normalize))


def figure(name: str, rate: float, reference: float | None) -> str:
    ratio = f" (ratio vs PaddleOCR in this run {reference:.1f}: {rate / reference:.2f}x)" if reference else ""
    return f"{name}: {rate:.1f} samples/s{ratio} {machine()}"


def bench_one_process(
    pipeline: Pipeline, samples: int, seed: int, reference: Callable[[list[str]], float] | None = None
) -> tuple[float, float, dict[str, float], float | None]:
    """(samples per wall second, samples per CPU second of this process, mean wall ms per op) over `samples` random
    train images, delivered as the training step receives them: batches of BATCH_SIZE collated (`collate_train`),
    made tensors and converted in this process (`TrainBatchToFloat`: the batch normalization when the pipeline's
    data module's batch_normalize, and the binary targets' float32). With `reference` (which times PaddleOCR's
    pipeline on a batch of image file names), the same images go through it before each of ours, and the fourth
    value is its samples per second."""
    times = OpTimes()
    dataset = pipeline.dataset(times.wrap(pipeline.transforms()))
    to_float = pipeline.to_float()
    np.random.seed(seed)
    order = np.random.permutation(len(dataset))
    indices = [int(order[i % len(order)]) for i in range(samples + WARMUP_SAMPLES)]

    def deliver(batch_indices: list[int]) -> tuple[float, float, float]:
        """Load a batch's samples, then collate and convert them: (wall seconds, CPU seconds, the latter's)."""
        start, start_cpu = time.perf_counter(), time.process_time()
        loaded = [dataset[i] for i in batch_indices]
        t = time.perf_counter()
        to_float({k: paddle.to_tensor(v) for k, v in collate_train(loaded).items()})
        end = time.perf_counter()
        return end - start, time.process_time() - start_cpu, end - t

    def names(batch_indices: list[int]) -> list[str]:
        return [Path(dataset.records[i].image_paths[0]).name for i in batch_indices]

    if reference is not None:
        reference(names(indices[:WARMUP_SAMPLES]))
    deliver(indices[:WARMUP_SAMPLES])
    times.seconds.clear()
    times.calls.clear()
    timed = indices[WARMUP_SAMPLES:]
    elapsed = cpu = batching = reference_s = 0.0
    for number, first in enumerate(range(0, samples, BATCH_SIZE)):
        batch = timed[first:first + BATCH_SIZE]
        # the reference's batch first on even batches, second on odd ones: neither side always follows the other
        if reference is not None and number % 2 == 0:
            reference_s += reference(names(batch))
        wall, cpu_s, to_float_s = deliver(batch)
        elapsed, cpu, batching = elapsed + wall, cpu + cpu_s, batching + to_float_s
        if reference is not None and number % 2 == 1:
            reference_s += reference(names(batch))
    per_op = times.mean_ms()
    per_op["collate_to_float"] = 1000.0 * batching / samples
    per_op["load"] = max(0.0, 1000.0 * elapsed / samples - sum(per_op.values()))
    return samples / elapsed, samples / cpu, per_op, (samples / reference_s if reference is not None else None)


def bench_loader(pipeline: Pipeline, samples: int, workers: int, seed: int) -> float:
    dataset = pipeline.dataset(pipeline.transforms())
    loader = build_dataloader(
        dataset, BATCH_SIZE, collate_train, shuffle=True, num_workers=workers, seed=seed, use_shared_memory=True
    )
    loader = TrainLoader(loader, pipeline.to_float())  # as DataModule.train_dataloader
    seen = 0
    start = time.perf_counter()
    while seen < samples:
        for batch in loader:
            seen += int(batch["image"].shape[0])
            if seen >= samples:
                break
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="ICDAR2015 root (default: the config's, ../shared/data/icdar2015)")
    parser.add_argument("--crops", type=int, nargs="+", default=[960, 640])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experiment", default="ppocrv3_det_student")
    parser.add_argument("--as-is", action="store_true", help="skip the loader workers' process settings")
    add_reference_args(parser)
    args = parser.parse_args(argv)

    if not args.as_is:
        keep_freed_memory()  # the training process's setting, which its forked loader workers inherit
        setup_worker_process()
    setup = "process as-is" if args.as_is else "process set up as a loader worker"
    print(f"experiment={args.experiment}; {setup} {machine()}", flush=True)
    results: dict[str, float] = {}
    for crop in args.crops:
        pipeline = Pipeline(args.experiment, crop, args.root)
        with contextlib.ExitStack() as stack:
            reference = None
            if args.reference == "paddleocr":
                root = Path(args.root or pipeline.data.root)
                process = stack.enter_context(ReferenceProcess(
                    ["data", "--root", str(root), "--crop", str(crop), "--seed", str(args.seed)],
                    python=args.reference_python, checkout=args.paddleocr, mkl=args.reference_mkl,
                    malloc=args.reference_malloc,
                ))
                reference = lambda names: float(process.request("batch " + ",".join(names))[0])  # noqa: E731
            rate, cpu_rate, per_op, ref_rate = bench_one_process(pipeline, args.samples, args.seed, reference)
        results[f"pipeline_1proc_{crop}"] = rate
        if ref_rate is not None:
            results[f"pipeline_1proc_{crop}_paddleocr"] = ref_rate
            print(f"pipeline_1proc_{crop}_paddleocr: {ref_rate:.1f} samples/s {machine()}", flush=True)
        print(figure(f"pipeline_1proc_{crop}", rate, ref_rate), flush=True)
        print(f"pipeline_1proc_{crop}_cpu: {cpu_rate:.1f} samples per CPU second of the process", flush=True)
        if args.workers:
            rate = bench_loader(pipeline, args.samples, args.workers, args.seed)
            results[f"pipeline_{args.workers}workers_{crop}"] = rate
            print(figure(f"pipeline_{args.workers}workers_{crop}", rate, ref_rate), flush=True)
        for name, ms in per_op.items():
            print(f"op_{name}_ms_{crop}: {ms:.1f}")
    return results


if __name__ == "__main__":
    main()
