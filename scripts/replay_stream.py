#!/usr/bin/env python
"""Separate the data from the trainer: save a trainer's training batches, then train on saved batches.

    python scripts/replay_stream.py dump --impl ocrdet --seed 0 --batches 125 --out /tmp/ocrdet0.npz
    /work/ppocr_venv/bin/python scripts/replay_stream.py dump --impl paddleocr --config <run>/config.yml \\
        --seed 0 --batches 125 --out /tmp/paddleocr0.npz
    python scripts/replay_stream.py train /tmp/ocrdet0.npz --init-seed 0
    /work/ppocr_venv/bin/python scripts/replay_stream.py train /tmp/paddleocr0.npz --impl paddleocr --config <run>/config.yml

`dump` iterates the trainer's own training loader as its run with that seed does (ocrdet: `build_data` of the train
config with `data.*` overrides; PaddleOCR: `build_dataloader` of a config written by scripts/compare_training.py,
seeded as its tools/train.py seeds) and saves the first N batches: uint8 images (the normalisation undone exactly)
and the four DB targets, in the format of crop_statistics.py --save. The first batch's loss under the released
weights equals the first step's loss in that trainer's log, so the file is the run's batch stream.

`train` finetunes the released student on a saved stream, one batch per step in order, with ocrdet's (or, with
`--impl paddleocr`, PaddleOCR's own) model, DB loss, Adam, L2 and warm-up + cosine, in eager mode, and prints the
mean of each loss term over the last two thirds of the steps. The threshold branch, which the released file does not
carry, starts from `paddle.seed(--init-seed)`; both trainers build their layers in the same order, so one seed gives
both the same start (tests/models/test_paddleocr_start.py). `--init` starts from a file instead (e.g. one saved by
`--save-init`). Training both trainers on the same stream, and one trainer on both
streams, tells a difference made by the data from one made by the trainer.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MAPS = ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask")
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
TERMS = ("loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW images normalised as (u / 255 - mean) / std back to their uint8 NHWC values (exact: the float32 error is
    far below half a grey level, which is checked)."""
    values = (images.transpose(0, 2, 3, 1).astype(np.float64) * STD + MEAN) * 255
    rounded = np.rint(values)
    if np.abs(values - rounded).max() > 0.01:
        raise ValueError("the batch images are not ImageNet-normalised uint8 images")
    return rounded.astype(np.uint8)


def save_batches(batches, count: int, out: Path) -> int:
    arrays: dict[str, list[np.ndarray]] = {"image": [], **{key: [] for key in MAPS}}
    for i, (image, maps) in enumerate(batches):
        if i == count:
            break
        arrays["image"].append(to_uint8(image))
        for key, value in zip(MAPS, maps):
            arrays[key].append(value.astype(np.float32 if key == "threshold_map" else np.uint8))
    np.savez(out, **{key: np.concatenate(values) for key, values in arrays.items()})
    return sum(len(images) for images in arrays["image"])


def ocrdet_batches(seed: int, crop: int, batch: int, workers: int, overrides: list[str]):
    sys.path.insert(0, str(REPO))
    from ocrdet.cli.build import build_data
    from ocrdet.cli.config import compose_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config("train", ["data=icdar2015", f"data.crop_size={crop}", f"data.batch_size={batch}",
                                       f"data.num_workers={workers}", f"seed={seed}", *overrides], output_dir=Path(tmp))
        for item in build_data(cfg).train_dataloader():
            yield item["image"].numpy(), [item[key].numpy() for key in MAPS]


def paddleocr_batches(checkout: Path, config_path: Path, seed: int):
    import paddle
    import yaml

    sys.path.insert(0, str(checkout))
    from ppocr.data import build_dataloader
    from ppocr.utils.logging import get_logger

    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    paddle.set_device("cpu")
    # tools/train.py's seeding before it builds the loader (the workers' seeds are drawn from np.random)
    paddle.seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    for item in build_dataloader(config, "Train", paddle.CPUPlace(), get_logger(), seed=seed):
        yield item[0].numpy(), [t.numpy() for t in item[1:]]


def ocrdet_trainer(args: argparse.Namespace, steps_per_epoch: int):
    """(model, loss function, optimizer, scheduler, normalise) of ocrdet, eager."""
    import paddle
    from hydra.utils import instantiate

    sys.path.insert(0, str(REPO))
    from ocrdet.cli.build import build_task
    from ocrdet.cli.config import compose_config
    from ocrdet.engine.optim import adam_warmup_cosine
    from ocrdet.models.weights import load_pretrained

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config("train", ["data=icdar2015"], output_dir=Path(tmp))
    task = build_task(cfg, with_optimizer=False)
    load_pretrained(task.model, str(args.init or args.weights))
    optimizer, scheduler = adam_warmup_cosine(task.model.parameters(), steps_per_epoch=steps_per_epoch,
                                              total_steps=steps_per_epoch, lr=args.lr, warmup_epochs=args.warmup_epochs)
    normalize = instantiate(cfg.data.batch_normalize)

    def step(image: np.ndarray, maps: list[np.ndarray]) -> dict[str, float]:
        images = normalize.normalize_batch(paddle.to_tensor(np.ascontiguousarray(image.transpose(0, 3, 1, 2))))
        batch = {key: paddle.to_tensor(value.astype(np.float32)) for key, value in zip(MAPS, maps)}
        terms = task.loss(task.model(images), batch)
        terms["loss"].backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        return {name: float(terms[name]) for name in TERMS}

    return task.model, step


def paddleocr_trainer(args: argparse.Namespace, steps_per_epoch: int):
    """The same with PaddleOCR's own model, DBLoss and optimizer, from the config's Architecture/Loss/Optimizer."""
    import paddle
    import yaml

    sys.path.insert(0, str(args.paddleocr))
    from ppocr.losses import build_loss
    from ppocr.modeling.architectures import build_model
    from ppocr.optimizer import build_optimizer
    from ppocr.utils.save_load import load_pretrained_params

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    config["Optimizer"]["lr"].update(learning_rate=args.lr, warmup_epoch=args.warmup_epochs)
    model = build_model(config["Architecture"])
    load_pretrained_params(model, str(Path(args.init or args.weights).with_suffix("")))
    loss_fn = build_loss(config["Loss"])
    optimizer, scheduler = build_optimizer(config["Optimizer"], epochs=1, step_each_epoch=steps_per_epoch, model=model)

    def step(image: np.ndarray, maps: list[np.ndarray]) -> dict[str, float]:
        normalised = ((image.astype(np.float32) / np.float32(255) - MEAN.astype(np.float32)) / STD.astype(np.float32))
        batch = [paddle.to_tensor(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))]
        batch += [paddle.to_tensor(value.astype(np.float32)) for value in maps]
        terms = loss_fn(model(batch[0]), batch)
        terms["loss"].backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        return {name: float(terms[name]) for name in TERMS}

    return model, step


def train(args: argparse.Namespace) -> dict[str, float]:
    import paddle

    paddle.set_device("cpu")
    paddle.seed(args.init_seed)
    with np.load(args.stream) as saved:
        stream = {key: saved[key] for key in ("image", *MAPS)}
    steps = len(stream["image"]) // args.batch if args.steps is None else args.steps
    build = paddleocr_trainer if args.impl == "paddleocr" else ocrdet_trainer
    model, step = build(args, steps)
    if args.save_init:
        paddle.save(model.state_dict(), str(args.save_init))
    model.train()
    losses = []
    for i in range(steps):
        part = slice(i * args.batch, (i + 1) * args.batch)
        losses.append(step(stream["image"][part], [stream[key][part] for key in MAPS]))
        if args.verbose:
            print(f"step {i + 1} " + " ".join(f"{k}={v:.6f}" for k, v in losses[-1].items()), flush=True)
    tail = losses[steps // 3:]
    result = {name: float(np.mean([t[name] for t in tail])) for name in TERMS}
    print(f"{args.impl} on {args.stream.name}, {steps} steps, init seed {args.init_seed}: last two thirds "
          + " ".join(f"{k}={v:.4f}" for k, v in result.items()), flush=True)
    result["first_loss"] = losses[0]["loss"]
    return result


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="save the first batches of a trainer's training loader")
    dump.add_argument("--impl", choices=["ocrdet", "paddleocr"], default="ocrdet")
    dump.add_argument("--config", type=Path, help="paddleocr: the config compare_training.py wrote for the run")
    dump.add_argument("--seed", type=int, default=0)
    dump.add_argument("--batches", type=int, default=125)
    dump.add_argument("--crop", type=int, default=320, help="ocrdet (PaddleOCR's comes from its config)")
    dump.add_argument("--batch", type=int, default=8, help="ocrdet (PaddleOCR's comes from its config)")
    dump.add_argument("--workers", type=int, default=2, help="ocrdet loader processes")
    dump.add_argument("--out", type=Path, required=True)
    dump.add_argument("overrides", nargs="*", help="ocrdet config overrides (e.g. data.train_transforms.augment.fused=false)")
    fit = sub.add_parser("train", help="finetune the released student on a saved stream, in order")
    fit.add_argument("stream", type=Path)
    fit.add_argument("--impl", choices=["ocrdet", "paddleocr"], default="ocrdet")
    fit.add_argument("--config", type=Path, help="paddleocr: its config (Architecture, Loss, Optimizer)")
    fit.add_argument("--weights", type=Path, default=SHARED / "weights" / "ch_PP-OCRv3_det_student.pdparams")
    fit.add_argument("--init", type=Path, default=None, help="start from this file instead (all tensors)")
    fit.add_argument("--save-init", type=Path, default=None, help="save the starting weights here")
    fit.add_argument("--init-seed", type=int, default=0)
    fit.add_argument("--batch", type=int, default=8)
    fit.add_argument("--steps", type=int, default=None, help="default: every full batch of the file")
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument("--warmup-epochs", type=float, default=0.4)
    fit.add_argument("--verbose", action="store_true", help="print every step's loss terms")
    for command in (dump, fit):
        command.add_argument("--paddleocr", type=Path, default=SHARED / "reference" / "PaddleOCR")
    args = parser.parse_args(argv)
    if args.command == "train":
        if args.impl == "paddleocr" and args.config is None:
            parser.error("train --impl paddleocr needs --config")
        return train(args)
    if args.impl == "paddleocr":
        if args.config is None:
            parser.error("dump --impl paddleocr needs --config")
        batches = paddleocr_batches(args.paddleocr, args.config, args.seed)
    else:
        batches = ocrdet_batches(args.seed, args.crop, args.batch, args.workers, args.overrides)
    count = save_batches(batches, args.batches, args.out)
    print(f"{count} samples of {args.impl} seed {args.seed} saved to {args.out}")
    return {"samples": count}


if __name__ == "__main__":
    main()
