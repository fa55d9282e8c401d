"""ICDAR2015 test evaluation end to end (PP-OCRv3 eval settings: short side 736, DBPostProcess 0.3/0.6/1.5, quads)
through ocrdet's data set, transforms, post-processing and metric, for up to three forwards of the released student:

  dygraph    the dygraph model, oneDNN on (the per-image work of `ocrdet-eval engine=dygraph` and of validation
             during training), post-processing inline;
  predictor  the exported model in `paddle.inference` (oneDNN + workaround), post-processing inline;
  pooled     the same predictor with DBPostProcess + metric in `--workers` processes (ocrdet.det.evaluator), so the
             next forward runs while earlier images are scored: what `ocrdet-eval` runs by default.

Variants alternate in chunks of `--chunk` images, so machine load hits all of them alike. Samples are prefetched
in a thread for every variant. End to end = from the first sample load to the last image scored (decode, resize,
normalize, forward, post-process, metric); export, predictor creation and worker start-up happen once before. Prints per variant images/s end to end with its ratio to PaddleOCR's 0.6 images/s
model throughput (target >= 1.5x), the post-process+metric share of the wall time, and P/R/H.

    python scripts/bench_eval.py                    # all 500 test images (long: ~10-30 min on 2 cores)
    python scripts/bench_eval.py --limit 50         # quick
    python scripts/bench_eval.py --variants pooled --workers 2
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import paddle

from bench_infer import ICDAR2015, WEIGHTS
from bench_train import set_cpu_threads
from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.config import compose_config  # noqa: E402
from ocrdet.det.evaluator import EvalResult, EvalTiming, Evaluator, model_forwards  # noqa: E402
from ocrdet.models.weights import load_pretrained  # noqa: E402

PADDLEOCR_IMAGES_PER_S = 0.6  # PaddleOCR's model throughput in ICDAR2015 eval on this machine kind (736x1312)
VARIANTS = ("dygraph", "predictor", "pooled")


def _merge(results: List[EvalResult]) -> EvalResult:
    merged = EvalResult({None: np.sum([r.counts[None] for r in results], axis=0)}, results[0].metric, EvalTiming())
    for r in results:
        for name in ("images", "total", "forward", "post", "wait_load", "wait_post"):
            setattr(merged.timing, name, getattr(merged.timing, name) + getattr(r.timing, name))
    return merged


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, EvalResult]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N test images (default: all 500)")
    parser.add_argument("--workers", type=int, default=1, help="post-processing processes of the pooled variant")
    parser.add_argument("--threads", type=int, default=2, help="CPU math threads of every forward")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--chunk", type=int, default=10, help="images per variant before switching to the next")
    parser.add_argument("--side", type=int, default=736, help="eval resize short side (736: PP-OCRv3)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--root", type=Path, default=ICDAR2015)
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {VARIANTS}")

    paddle.set_device("cpu")
    set_cpu_threads(args.threads)
    paddle.set_flags({"FLAGS_use_mkldnn": True})  # as the trainer's cpu_onednn default
    overrides = [
        "data=icdar2015", f"data.root={args.root}", f"data.val_transforms.resize.limit_side_len={args.side}",
        f"weights={args.weights}",
    ]
    cfg = compose_config("eval", overrides)
    dataset = instantiate(cfg.data).val_dataset()
    postprocess = instantiate(cfg.postprocess)
    metric = instantiate(cfg.metric)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))

    model = instantiate(cfg.model)
    load_pretrained(model, str(args.weights))
    forwards = {}
    if "dygraph" in variants:
        forwards["dygraph"] = model_forwards({None: model}, "dygraph")[None]
    if {"predictor", "pooled"} & set(variants):
        forward = model_forwards({None: model}, "predictor", args.threads)[None]
        forwards.update({v: forward for v in ("predictor", "pooled") if v in variants})
    evaluators = {v: Evaluator(postprocess, metric, workers=args.workers if v == "pooled" else 0) for v in variants}
    try:
        for forward in forwards.values():  # warm-up on a small image: kernel selection and primitive caches
            forward(np.zeros((1, 3, 64, 64), "float32"))
        parts: Dict[str, List[EvalResult]] = {v: [] for v in variants}
        for start in range(0, count, args.chunk):
            chunk = range(start, min(start + args.chunk, count))
            for v in variants:
                parts[v].append(evaluators[v].evaluate({None: forwards[v]}, dataset, chunk))
    finally:
        for evaluator in evaluators.values():
            evaluator.close()

    print(f"images: {count} threads: {args.threads} workers (pooled): {args.workers} chunk: {args.chunk}")
    results = {v: _merge(parts[v]) for v in variants}
    for v, result in results.items():
        t, m = result.timing, result.metrics
        rate = t.images_per_s
        print(f"eval_{v}_images_per_s: {rate:.3f} (ratio vs PaddleOCR {PADDLEOCR_IMAGES_PER_S}: "
              f"{rate / PADDLEOCR_IMAGES_PER_S:.2f}x)")
        print(f"eval_{v}_post_share: {t.post_share:.3f} (post-process+metric {1000 * t.post / t.images:.0f} ms/image, "
              f"forward {1000 * t.forward / t.images:.0f} ms/image, waiting for samples "
              f"{1000 * t.wait_load / t.images:.0f} ms/image, for workers "
              f"{1000 * t.wait_post / t.images:.0f} ms/image)")
        print(f"eval_{v}_metrics: precision={m['precision']:.6f} recall={m['recall']:.6f} hmean={m['hmean']:.6f}")
    return results


if __name__ == "__main__":
    main()
