#!/usr/bin/env python
"""Are two pipelines' training samples equally hard? The DB loss of saved samples under one model.

    /work/ppocr_venv/bin/python scripts/crop_statistics.py --impl paddleocr --draws 800 --save /tmp/paddleocr.npz
    python scripts/crop_statistics.py --impl ocrdet --draws 800 --save /tmp/ocrdet.npz
    python scripts/score_samples.py --weights <run dir or .pdparams> /tmp/paddleocr.npz /tmp/ocrdet.npz

Each file's samples go through the same model in batches (train mode, as in training: batch-statistics BatchNorm and
the threshold branch; no gradient, and the weights are reloaded before each file) and the DB loss with the
configured weights. The script prints each loss term's mean over the batches with its standard error, for each file,
and the difference of the last file from the first with the standard error of a difference of two independent
means. The two implementations draw from different random streams, so the samples are not paired: only a difference
of several standard errors says one pipeline's data is easier or harder for that model. Images are normalised with
the configured `data.batch_normalize` (PaddleOCR's NormalizeImage), as the trainer does.
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import paddle
from hydra.utils import instantiate

from ocrdet.cli.build import build_task
from ocrdet.cli.config import compose_config
from ocrdet.models.weights import load_pretrained
from reference_process import machine  # noqa: E402  (scripts/ is on the path: the script's own folder)

MAPS = ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask")


def batch_losses(task, normalize, weights: str, path: Path, batch: int) -> list[dict[str, float]]:
    """The loss terms of each full batch of the file's samples (a short last batch is left out)."""
    load_pretrained(task.model, weights)
    task.model.train()
    with np.load(path) as saved:
        samples = {key: saved[key] for key in ("image", *MAPS)}
    losses = []
    with paddle.no_grad():
        for start in range(0, len(samples["image"]) // batch * batch, batch):
            images = paddle.to_tensor(np.ascontiguousarray(samples["image"][start : start + batch].transpose(0, 3, 1, 2)))
            targets = {key: paddle.to_tensor(samples[key][start : start + batch].astype(np.float32)) for key in MAPS}
            terms = task.loss(task.model(normalize.normalize_batch(images)), targets)
            losses.append({name: float(value) for name, value in terms.items()})
    return losses


def main(argv: Optional[list[str]] = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a run dir or .pdparams")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("files", nargs="+", type=Path, help=".npz files written by crop_statistics.py --save")
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config("train", ["data=icdar2015"], output_dir=Path(tmp))
        task = build_task(cfg, with_optimizer=False)
    normalize = instantiate(cfg.data.batch_normalize)
    per_file = {}
    for path in args.files:
        losses = batch_losses(task, normalize, args.weights, path, args.batch)
        per_file[str(path)] = {name: np.array([b[name] for b in losses]) for name in losses[0]}
        print(f"{path}: {len(losses)} batches of {args.batch}")
    print(machine())
    results: dict[str, dict[str, float]] = {}
    first = per_file[str(args.files[0])]
    for path in args.files:
        terms = per_file[str(path)]
        results[str(path)] = {}
        for name, values in terms.items():
            se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
            results[str(path)][name] = float(values.mean())
            line = f"{path.name} {name}: {values.mean():.4f} se {se:.4f}"
            if path != args.files[0]:
                base = first[name]
                se_diff = math.hypot(se, base.std(ddof=1) / math.sqrt(len(base)) if len(base) > 1 else float("nan"))
                line += f" | minus {args.files[0].name}: {values.mean() - base.mean():+.4f} se {se_diff:.4f}"
            print(line)
    return results


if __name__ == "__main__":
    main()
