"""Validation inside `fit` against `ocrdet-eval`, on the same ICDAR2015 test images, timed in one run.

Both sides run their real code: `fit` = the Trainer's validation loop (`Trainer.validate`, the loop `fit` runs at
`val_check_interval`) over the DetectionTask built from the train config (`data=icdar2015`, the released student as
`finetune.pretrained`), which exports the current weights and scores through the predictor forward
(`task.eval_forward`, default `predictor` on CPU); `eval` = `ocrdet-eval`'s `run_eval` on the same images and weights.
Each side's time includes what it pays per validation (export, predictor creation, loading, post-processing, metric).
The sides alternate (`--rounds`, the order flipped each round) so machine load hits both alike; each line gives the
in-run ratio fit / eval and the machine. Both must print the same P/R/H.

    python scripts/bench_validation.py                 # 500 test images, 2 rounds (long: ~10-20 min on 2 cores)
    python scripts/bench_validation.py --images 50     # quick
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from bench_infer import ICDAR2015, WEIGHTS  # noqa: E402
from reference_process import machine  # noqa: E402

from ocrdet.cli.build import build_data, build_task, build_trainer  # noqa: E402
from ocrdet.cli.config import compose_config  # noqa: E402
from ocrdet.cli.eval import run_eval  # noqa: E402
from ocrdet.models.weights import load_pretrained  # noqa: E402


def _fit_validation(root: Path, weights: Path, images: int, threads: int, out: Path) -> Callable[[], Dict[str, float]]:
    overrides = [
        "data=icdar2015", f"data.root={root}", f"trainer.limit_val_batches={images}", f"trainer.cpu_threads={threads}",
        "logger=none", "data.eval_num_workers=0",
    ]
    cfg = compose_config("train", overrides, output_dir=out / "fit")
    task = build_task(cfg, with_optimizer=False)
    load_pretrained(task.model, str(weights))
    loader = build_data(cfg).val_dataloader()
    trainer = build_trainer(cfg, logger=None)
    return lambda: {k.split("/", 1)[-1]: v for k, v in trainer.validate(task, loader).items()}


def _eval(root: Path, weights: Path, images: int, threads: int, out: Path) -> Callable[[], Dict[str, float]]:
    overrides = [
        "data=icdar2015", f"data.root={root}", f"weights={weights}", f"trainer.limit_val_batches={images}",
        f"trainer.cpu_threads={threads}",
    ]
    cfg = compose_config("eval", overrides, output_dir=out / "eval")
    keys = [o.split("=", 1)[0] for o in overrides]
    return lambda: run_eval(cfg, keys)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    """Per side: its median seconds (`seconds`) and its P/R/H."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500, help="first N test images (validation batches of 1)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--root", type=Path, default=ICDAR2015)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_validation"))
    args = parser.parse_args(argv)

    sides = {
        "fit": _fit_validation(args.root, args.weights, args.images, args.threads, args.out),
        "eval": _eval(args.root, args.weights, args.images, args.threads, args.out),
    }
    seconds: Dict[str, List[float]] = {name: [] for name in sides}
    metrics: Dict[str, Dict[str, float]] = {}
    for r in range(args.rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            t0 = time.perf_counter()
            metrics[name] = sides[name]()
            seconds[name].append(time.perf_counter() - t0)
    print(f"machine: {machine()}")
    print(f"images: {args.images} rounds: {args.rounds} threads: {args.threads}")
    for name in sides:
        m = metrics[name]
        print(f"validation_{name}_s: {statistics.median(seconds[name]):.1f} (rounds: "
              f"{', '.join(f'{s:.1f}' for s in seconds[name])}) precision={m['precision']:.6f} "
              f"recall={m['recall']:.6f} hmean={m['hmean']:.6f}")
    ratio = statistics.median(seconds["fit"]) / statistics.median(seconds["eval"])
    print(f"validation_fit_vs_eval: {ratio:.2f}x the time of ocrdet-eval (target <= 1.3x)")
    return {name: {"seconds": statistics.median(seconds[name]), **metrics[name]} for name in sides}


if __name__ == "__main__":
    main()
