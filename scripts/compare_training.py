#!/usr/bin/env python
"""Side by side: PaddleOCR's own trainer and ocrdet-train on the same short finetune, every final model scored alike.

    python scripts/compare_training.py --seeds 0 1 2 --epochs 2 --out /tmp/compare

Both finetune the released PP-OCRv3 student on ICDAR2015 train (crop, batch, lr, warm-up + cosine, L2 and CPU
threads the same; PaddleOCR counts its run in epochs, so the budget is whole epochs and ocrdet gets
`trainer.max_steps` = epochs x batches per epoch). PaddleOCR runs as `tools/train.py -c <its student yml, with the
data, crop, batch, lr and run length written into a copy>` in its own Python; its per-step loss is read from its log
(`log_smooth_window=1`, `print_batch_step=1`), ocrdet's from its progress lines (window 1, every step). Every final
checkpoint is then scored by `ocrdet-eval` on the test split (PaddleOCR's `latest.pdparams` loads as it is).

Threads: PaddleOCR sets none, and Paddle then uses OMP_NUM_THREADS (1 when unset); both trainers and the evaluations
get OMP_NUM_THREADS=--threads, and ocrdet `trainer.cpu_threads` the same. Both use --workers loader processes.

Each run lives in `<out>/<trainer>-<pipeline>-seed<N>/` with its log, wall time and score; a run whose `result.json`
exists is not run again, so the script can be stopped, resumed or extended with more seeds. The table printed at the
end gives, per trainer and pipeline, the mean and spread (sample standard deviation, min..max) over the seeds of the
training loss averaged over the last two thirds of the steps, the test hmean and the wall times, then each ocrdet
pipeline's difference from PaddleOCR paired by seed (one seed, one start) and whether its mean loss lies inside
PaddleOCR's mean ± sd and its mean hmean above PaddleOCR's mean - sd. Each result.json records the run's
MKL_DEBUG_CPU_TYPE (PaddleOCR's as `--paddleocr-mkl` sets it; ocrdet's own as `import ocrdet` sets it on AMD).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocrdet.data.labels import parse_icdar2015_gt  # noqa: E402
from reference_process import reference_environment  # noqa: E402

PPOCR_CONFIG = "configs/det/ch_PP-OCRv3/ch_PP-OCRv3_det_student.yml"
# ocrdet variants (data pipelines, the eager step): the name in the table -> overrides (`default` is whatever
# conf/transforms/db_train.yaml says)
PIPELINES = {
    "default": [],
    "fused": ["data.train_transforms.augment.fused=true"],
    "unfused": ["data.train_transforms.augment.fused=false"],
    "eager": ["trainer.compile=false"],  # the default pipeline, its training step run eagerly instead of compiled
}
PPOCR_STEP = re.compile(r"global_step: (\d+),.*?\bloss: ([0-9.eE+-]+)")
OCRDET_STEP = re.compile(r"\] step (\d+) \| loss=([0-9.eE+-]+)")
HMEAN = re.compile(r"precision=([0-9.]+) recall=([0-9.]+) hmean=([0-9.]+)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    shared = REPO.parent / "shared"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paddleocr", type=Path, default=shared / "reference" / "PaddleOCR", help="PaddleOCR checkout")
    parser.add_argument(
        "--paddleocr-python",
        default=os.environ.get("PADDLEOCR_PYTHON", "/work/ppocr_venv/bin/python"),
        help="Python with PaddleOCR's requirements (default: $PADDLEOCR_PYTHON or /work/ppocr_venv/bin/python)",
    )
    parser.add_argument(
        "--paddleocr-mkl", choices=["shipped", "avx2"], default="shipped",
        help="PaddleOCR's MKL dispatch: as it ships (generic kernels on AMD CPUs) or AVX2 as ocrdet sets it on AMD",
    )
    parser.add_argument("--data-root", type=Path, default=shared / "data" / "icdar2015")
    parser.add_argument("--weights", type=Path, default=shared / "weights" / "ch_PP-OCRv3_det_student.pdparams")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2, help="run length (125 steps per epoch at batch 8)")
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-epochs", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS (and ocrdet trainer.cpu_threads)")
    parser.add_argument("--workers", type=int, default=2, help="loader processes of both trainers")
    parser.add_argument("--train-images", type=int, default=None, help="train on the first N images only (both)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--trainers", nargs="+", choices=["paddleocr", "ocrdet"], default=["paddleocr", "ocrdet"])
    parser.add_argument("--pipelines", nargs="+", choices=sorted(PIPELINES), default=["default"])
    parser.add_argument("--out", type=Path, default=Path("outputs/compare_training"))
    parser.add_argument("--nice", type=int, default=10, help="niceness of the runs (0: none)")
    parser.add_argument("--report-only", action="store_true", help="print the table of the runs already done")
    return parser.parse_args(argv)


def write_label_file(data_root: Path, split: str, path: Path, limit: int | None = None) -> int:
    """PaddleOCR's `image<TAB>json` label file for an ICDAR2015 split (paths relative to data_root; the first `limit`
    images by name); the count."""
    images = sorted((data_root / split / "images").glob("*.jpg"))[:limit]
    lines = []
    for image in images:
        annotation = parse_icdar2015_gt(data_root / split / "gts" / f"gt_{image.stem}.txt")
        boxes = [
            {"transcription": text, "points": poly.tolist()}
            for poly, text in zip(annotation.polys, annotation.texts)
        ]
        lines.append(f"{split}/images/{image.name}\t{json.dumps(boxes, ensure_ascii=False)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(images)


def paddleocr_config(args: argparse.Namespace, run: Path, seed: int, label_file: Path) -> Path:
    """A copy of PaddleOCR's student config set to this finetune."""
    config = yaml.safe_load((args.paddleocr / PPOCR_CONFIG).read_text(encoding="utf-8"))
    config["Global"].update(
        use_gpu=False,
        epoch_num=args.epochs,
        seed=seed,
        print_batch_step=1,
        log_smooth_window=1,
        eval_batch_step=[0, 10**9],  # no evaluation during the run: both are scored afterwards alike
        save_epoch_step=10**9,
        save_model_dir=str(run / "model"),
        pretrained_model=str(args.weights.with_suffix("")),
    )
    config["Optimizer"]["lr"].update(learning_rate=args.lr, warmup_epoch=args.warmup_epochs)
    for split, label in (("Train", label_file), ("Eval", label_file)):  # Eval is built but never run
        config[split]["dataset"].update(data_dir=str(args.data_root), label_file_list=[str(label)])
        config[split]["loader"]["num_workers"] = args.workers
    config["Train"]["loader"]["batch_size_per_card"] = args.batch
    for op in config["Train"]["dataset"]["transforms"]:
        if "EastRandomCropData" in op:
            op["EastRandomCropData"]["size"] = [args.crop, args.crop]
    path = run / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def ocrdet_overrides(args: argparse.Namespace, run: Path, seed: int, steps: int, pipeline: str) -> list[str]:
    # The label file PaddleOCR reads, so that both train on exactly the same images and polygons.
    label = str(args.out / "train_icdar2015_label.txt")
    return [
        "data=paddleocr_label",
        f"data.data_dir={args.data_root}",
        f"data.train_label_files=[{label}]",
        f"data.val_label_files=[{label}]",
        "finetune=pretrained",
        f"finetune.pretrained={args.weights}",
        f"data.crop_size={args.crop}",
        f"data.batch_size={args.batch}",
        f"data.num_workers={args.workers}",
        f"optim.lr={args.lr}",
        f"optim.warmup_epochs={args.warmup_epochs}",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=null",
        "trainer.check_val_every_n_epoch=null",
        f"trainer.cpu_threads={args.threads}",
        "callbacks.progress.refresh_rate=1",
        "callbacks.progress.smooth_window=1",
        "logger=none",
        f"seed={seed}",
        f"hydra.run.dir={run / 'train'}",
        *PIPELINES[pipeline],
    ]


def run_logged(command: list[str], log: Path, env: dict, cwd: Path, nice: int) -> tuple[float, float]:
    """Run `command` with stdout+stderr into `log`; (wall seconds, CPU seconds of the process and the children it
    waited for, e.g. loader workers). Raises on failure (the log says why).

    CPU time tells a slow run from a starved one: two runs sharing the cores take longer in wall time, not in CPU.
    """
    if nice:
        command = ["nice", "-n", str(nice), *command]
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (safe beside parallel runs)
        process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"exit {code}: {' '.join(command)} (see {log})")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def step_losses(log: Path, pattern: re.Pattern) -> dict[int, float]:
    """Per-step total loss from a training log (the last value logged for a step wins)."""
    losses = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = pattern.search(line)
        if match:
            losses[int(match.group(1))] = float(match.group(2))
    return losses


def late_mean(losses: dict[int, float], steps: int) -> float:
    """Mean loss over the last two thirds of the run (steps after steps/3)."""
    late = [value for step, value in losses.items() if step > steps / 3]
    if not late:
        raise ValueError("no loss logged in the last two thirds of the run")
    return statistics.fmean(late)


def evaluate(args: argparse.Namespace, weights: Path, run: Path, env: dict) -> dict[str, float]:
    command = [
        sys.executable, "-m", "ocrdet.cli.eval", "data=icdar2015", f"data.root={args.data_root}",
        f"weights={weights}", f"trainer.cpu_threads={args.threads}", f"hydra.run.dir={run / 'eval'}",
    ]
    wall, _ = run_logged(command, run / "eval.log", env, REPO, args.nice)
    match = None
    for line in (run / "eval.log").read_text(encoding="utf-8").splitlines():
        match = HMEAN.search(line) or match
    if match is None:
        raise RuntimeError(f"no score in {run / 'eval.log'}")
    precision, recall, hmean = (float(v) for v in match.groups())
    return {"precision": precision, "recall": recall, "hmean": hmean, "eval_wall_s": wall}


def one_run(args: argparse.Namespace, trainer: str, pipeline: str, seed: int, steps: int, label_file: Path) -> dict:
    run = (args.out / f"{trainer}-{pipeline}-seed{seed}").resolve()
    result_file = run / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    run.mkdir(parents=True, exist_ok=True)
    base = reference_environment(args.paddleocr_mkl) if trainer == "paddleocr" else os.environ
    env = dict(base, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    print(f"[{time.strftime('%H:%M:%S')}] {trainer} {pipeline} seed {seed}: training {steps} steps", flush=True)
    if trainer == "paddleocr":
        config = paddleocr_config(args, run, seed, label_file)
        command = [args.paddleocr_python, "tools/train.py", "-c", str(config)]
        wall, cpu = run_logged(command, run / "train.log", env, args.paddleocr, args.nice)
        losses = step_losses(run / "train.log", PPOCR_STEP)
        weights = run / "model" / "latest.pdparams"
    else:
        command = [sys.executable, "-m", "ocrdet.cli.train", *ocrdet_overrides(args, run, seed, steps, pipeline)]
        wall, cpu = run_logged(command, run / "train.log", env, REPO, args.nice)
        losses = step_losses(run / "train.log", OCRDET_STEP)
        weights = run / "train" / "checkpoints" / "latest.pdparams"
    if max(losses, default=0) != steps:
        raise RuntimeError(f"{run}: the log ends at step {max(losses, default=0)}, expected {steps}")
    print(f"[{time.strftime('%H:%M:%S')}] {trainer} {pipeline} seed {seed}: scoring {weights}", flush=True)
    result = {
        "trainer": trainer, "pipeline": pipeline, "seed": seed, "steps": steps, "train_wall_s": wall,
        "train_cpu_s": cpu, "mkl_debug_cpu_type": env.get("MKL_DEBUG_CPU_TYPE"),
        "late_loss": late_mean(losses, steps), **evaluate(args, weights, run, env),
    }
    result_file.write_text(json.dumps(result, indent=1))
    print(f"    loss {result['late_loss']:.4f}  hmean {result['hmean']:.4f}  ({wall:.0f} s)", flush=True)
    return result


def spread(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f} [{min(values):.{digits}f}..{max(values):.{digits}f}]"


def report(results: list[dict]) -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        key = (result["trainer"], "-" if result["trainer"] == "paddleocr" else result["pipeline"])
        groups.setdefault(key, []).append(result)
    rows = ["| trainer | pipeline | seeds | loss, last 2/3 (mean ± sd [min..max]) | test hmean | P | R | train wall s "
            "| train CPU s | eval wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (trainer, pipeline), group in sorted(groups.items()):
        seeds = ",".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        rows.append(
            f"| {trainer} | {pipeline} | {seeds} | {spread([r['late_loss'] for r in group], 4)} | "
            f"{spread([r['hmean'] for r in group], 4)} | {statistics.fmean(r['precision'] for r in group):.4f} | "
            f"{statistics.fmean(r['recall'] for r in group):.4f} | "
            f"{spread([r['train_wall_s'] for r in group], 0)} | "
            f"{spread([r['train_cpu_s'] for r in group], 0) if all('train_cpu_s' in r for r in group) else '-'} | "
            f"{statistics.fmean(r['eval_wall_s'] for r in group):.0f} |"
        )
    rows += paired(groups)
    rows += verdict(groups)
    return "\n".join(rows)


def seed_pairs(groups: dict[tuple[str, str], list[dict]]) -> list[tuple[str, list[tuple[dict, dict]]]]:
    """Per ocrdet variant, its runs paired with PaddleOCR's run of the same seed (variants with >= 2 pairs)."""
    reference = {r["seed"]: r for r in groups.get(("paddleocr", "-"), [])}
    out = []
    for (trainer, pipeline), group in sorted(groups.items()):
        pairs = [(r, reference[r["seed"]]) for r in group if trainer == "ocrdet" and r["seed"] in reference]
        if len(pairs) >= 2:
            out.append((pipeline, pairs))
    return out


def verdict(groups: dict[tuple[str, str], list[dict]]) -> list[str]:
    """Issue 11's criteria per ocrdet variant, on the seeds it shares with PaddleOCR: its mean loss inside
    PaddleOCR's seed spread (mean ± sd), its mean test hmean not below PaddleOCR's by more than that spread."""
    lines = []
    for pipeline, pairs in seed_pairs(groups):
        theirs_loss, theirs_hmean = [b["late_loss"] for _, b in pairs], [b["hmean"] for _, b in pairs]
        loss_mean, loss_sd = statistics.fmean(theirs_loss), statistics.stdev(theirs_loss)
        hmean_mean, hmean_sd = statistics.fmean(theirs_hmean), statistics.stdev(theirs_hmean)
        ours_loss = statistics.fmean(a["late_loss"] for a, _ in pairs)
        ours_hmean = statistics.fmean(a["hmean"] for a, _ in pairs)
        inside = "inside" if abs(ours_loss - loss_mean) <= loss_sd else "outside"
        below = "not below" if ours_hmean >= hmean_mean - hmean_sd else "below"
        lines.append(
            f"\nocrdet {pipeline} ({len(pairs)} seeds): mean loss {ours_loss:.4f} is {inside} PaddleOCR's "
            f"{loss_mean:.4f} ± {loss_sd:.4f} (difference {ours_loss - loss_mean:+.4f}); mean test hmean "
            f"{ours_hmean:.4f} vs PaddleOCR's {hmean_mean:.4f} - {hmean_sd:.4f}: {below} by more than the spread"
        )
    return lines


def paired(groups: dict[tuple[str, str], list[dict]]) -> list[str]:
    """Per-seed differences of each ocrdet pipeline from PaddleOCR. The same seed gives both trainers the same
    starting weights (tests/models/test_paddleocr_start.py), so a pair differs only in its data stream and float
    rounding: the sd of the differences is the spread that a trainer difference has to stand out of."""
    lines = []
    for pipeline, pairs in seed_pairs(groups):
        loss = [a["late_loss"] - b["late_loss"] for a, b in pairs]
        hmean = [a["hmean"] - b["hmean"] for a, b in pairs]
        lines.append(
            f"\nocrdet {pipeline} minus PaddleOCR, paired by seed ({len(pairs)} seeds, same start): loss "
            f"{statistics.fmean(loss):+.4f} ± {statistics.stdev(loss):.4f} (standard error "
            f"{statistics.stdev(loss) / math.sqrt(len(loss)):.4f}), test hmean {statistics.fmean(hmean):+.4f} ± "
            f"{statistics.stdev(hmean):.4f} (standard error {statistics.stdev(hmean) / math.sqrt(len(hmean)):.4f})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.data_root, args.weights = args.data_root.resolve(), args.weights.resolve()
    args.paddleocr = args.paddleocr.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*/result.json"))]
        print(report(results))
        return
    label_file = args.out / "train_icdar2015_label.txt"
    images = write_label_file(args.data_root, "train", label_file, args.train_images)
    steps = args.epochs * math.ceil(images / args.batch)
    runs = [  # seeds outermost: an interrupted comparison still has both trainers per seed
        (trainer, pipeline, seed)
        for seed in args.seeds
        for trainer in args.trainers
        for pipeline in (["-"] if trainer == "paddleocr" else args.pipelines)
    ]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        results = list(pool.map(lambda run: one_run(args, *run, steps, label_file), runs))
    print(f"\n{images} training images, {steps} steps of {args.batch} at crop {args.crop}, lr {args.lr}, "
          f"warm-up {args.warmup_epochs} epochs, {args.threads} threads, {args.workers} workers\n")
    print(report(results))


if __name__ == "__main__":
    main()
