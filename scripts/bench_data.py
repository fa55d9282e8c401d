"""Training-pipeline throughput on ICDAR2015 train: decode -> augment -> crop -> border map -> shrink map ->
normalize -> CHW, the PP-OCRv3 train transforms exactly as `conf/transforms/db_train.yaml` builds them.

Prints, one figure per line:
  pipeline_1proc_<crop>: samples/s in this process, with the ratio to PaddleOCR's own code (one process, measured on
      this machine kind: 14.6 samples/s at 960, 20.8 at 640; no ratio for other crops);
  pipeline_<n>workers_<crop>: samples/s through ocrdet's DataLoader (batch 8, shared memory, collate_train), from
      the loader's start (worker start-up included), with the ratio to the same one-process PaddleOCR figure;
  op_<name>_ms: mean milliseconds per sample of each op in the one-process run, and op_load_ms for the file read
      and the dataset's own bookkeeping.

    python scripts/bench_data.py [--root ../shared/data/icdar2015] [--crop 960] [--samples 100] [--workers 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ocrdet.data.collate import collate_train
from ocrdet.data.datasets import Icdar2015Dataset
from ocrdet.data.loaders import build_dataloader
from ocrdet.data.profiling import OpTimes

REPO = Path(__file__).resolve().parents[1]
PADDLEOCR_SAMPLES_PER_S = {960: 14.6, 640: 20.8}
BATCH_SIZE = 8
WARMUP_SAMPLES = 2  # first calls pay one-off costs (imports, OpenCV's thread pool, page faults)


def train_transforms(crop: int) -> dict:
    """The configured PP-OCRv3 train ops, by name, for a `crop` x `crop` crop."""
    ops = OmegaConf.load(REPO / "conf" / "transforms" / "db_train.yaml")
    return dict(instantiate(OmegaConf.create({"data": {"crop_size": crop}, "ops": ops})).ops)


def figure(name: str, rate: float, crop: int) -> str:
    reference = PADDLEOCR_SAMPLES_PER_S.get(crop)
    ratio = f" (ratio vs PaddleOCR {reference}: {rate / reference:.2f}x)" if reference else " (no PaddleOCR reference)"
    return f"{name}: {rate:.1f} samples/s{ratio}"


def bench_one_process(root: str, crop: int, samples: int, seed: int) -> tuple[float, dict[str, float]]:
    """(samples/s, mean ms per op) over `samples` random train images."""
    times = OpTimes()
    dataset = Icdar2015Dataset(root, "train", times.wrap(train_transforms(crop)), train=True)
    np.random.seed(seed)
    order = np.random.permutation(len(dataset))
    indices = [int(order[i % len(order)]) for i in range(samples + WARMUP_SAMPLES)]
    for index in indices[:WARMUP_SAMPLES]:
        dataset[index]
    times.seconds.clear()
    times.calls.clear()
    start = time.perf_counter()
    for index in indices[WARMUP_SAMPLES:]:
        dataset[index]
    elapsed = time.perf_counter() - start
    per_op = times.mean_ms()
    per_op["load"] = max(0.0, 1000.0 * elapsed / samples - sum(per_op.values()))
    return samples / elapsed, per_op


def bench_loader(root: str, crop: int, samples: int, workers: int, seed: int) -> float:
    dataset = Icdar2015Dataset(root, "train", train_transforms(crop), train=True)
    loader = build_dataloader(
        dataset, BATCH_SIZE, collate_train, shuffle=True, num_workers=workers, seed=seed, use_shared_memory=True
    )
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
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "icdar2015"))
    parser.add_argument("--crop", type=int, default=960)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rate, per_op = bench_one_process(args.root, args.crop, args.samples, args.seed)
    print(figure(f"pipeline_1proc_{args.crop}", rate, args.crop), flush=True)
    rate = bench_loader(args.root, args.crop, args.samples, args.workers, args.seed)
    print(figure(f"pipeline_{args.workers}workers_{args.crop}", rate, args.crop), flush=True)
    for name, ms in per_op.items():
        print(f"op_{name}_ms: {ms:.1f}")


if __name__ == "__main__":
    main()
