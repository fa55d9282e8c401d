#!/usr/bin/env python
"""Paired loss of the fused and the separate augmentation pipelines: the same model, the same samples, the same draws.

    python scripts/compare_pipelines.py --weights <run dir or .pdparams> [--batches 40 --batch 8 --crop 320]

Both pipelines draw flip, angle, scale and crop with the same code from the same per-sample generator (seed, epoch,
sample index), so batch i of one holds the same images, polygons and crop rectangles as batch i of the other; only
the pixels differ (one resampling against PaddleOCR's three). Each batch goes through the same model in train mode
(the threshold branch runs only there; no gradient, no update) and the DB loss; the script prints each loss term's
mean of (fused - separate) over the batches with its standard deviation and standard error, then the means of each
pipeline. A difference within a few standard errors of 0 says the fused pixels make samples neither easier nor
harder for that model.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np
import paddle

from ocrdet.cli.build import build_data, build_task
from ocrdet.cli.config import compose_config
from ocrdet.models.weights import load_pretrained
from reference_process import machine  # noqa: E402  (scripts/ is on the path: the script's own folder)

TARGETS = ("shrink_map", "shrink_mask", "threshold_map", "threshold_mask")


def batch_losses(weights: str, fused: bool, args: argparse.Namespace, out: Path) -> tuple[list[dict], list[str]]:
    """Each batch's loss terms and a digest of its targets (equal digests: the two pipelines drew the same crops)."""
    overrides = [
        "data=icdar2015",
        f"data.crop_size={args.crop}",
        f"data.batch_size={args.batch}",
        "data.num_workers=0",
        f"data.train_transforms.augment.fused={str(fused).lower()}",
        f"seed={args.seed}",
    ]
    cfg = compose_config("train", overrides, output_dir=out)
    task = build_task(cfg, with_optimizer=False)
    load_pretrained(task.model, weights)
    task.model.train()  # the threshold branch runs in train mode only; no_grad below: nothing is updated but BN
    losses, digests = [], []
    with paddle.no_grad():
        for i, batch in enumerate(build_data(cfg).train_dataloader()):
            if i == args.batches:
                break
            terms = task.loss(task.model(batch["image"]), batch)
            losses.append({k: float(v) for k, v in terms.items()})
            digest = hashlib.sha1()
            for key in TARGETS:
                digest.update(batch[key].numpy().tobytes())
            digests.append(digest.hexdigest())
    return losses, digests


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a run dir or .pdparams (a model trained on ICDAR2015)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        # BN's running statistics move in train mode: each pipeline starts from the file's
        fused, fused_targets = batch_losses(args.weights, True, args, Path(tmp) / "fused")
        separate, separate_targets = batch_losses(args.weights, False, args, Path(tmp) / "separate")
    same = sum(a == b for a, b in zip(fused_targets, separate_targets))
    print(f"{machine()} {len(fused)} batches of {args.batch} at crop "
          f"{args.crop}, seed {args.seed}; targets identical in {same} of {len(fused)} batches")
    differences = {}
    for name in fused[0]:
        a = np.array([b[name] for b in fused])
        b = np.array([b[name] for b in separate])
        d = a - b
        differences[name] = float(d.mean())
        print(f"{name}: fused-separate {d.mean():+.4f} sd {d.std(ddof=1):.4f} se {d.std(ddof=1) / math.sqrt(len(d)):.4f}"
              f" | fused {a.mean():.4f} separate {b.mean():.4f}")
    differences["targets_identical"] = same / len(fused)
    return differences


if __name__ == "__main__":
    main()
