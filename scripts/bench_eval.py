"""ICDAR2015 test evaluation end to end (PP-OCRv3 eval settings: short side 736, DBPostProcess 0.3/0.6/1.5, quads)
through ocrdet's data set, transforms, post-processing and metric, for up to three forwards of the released student:

  dygraph    the dygraph model, oneDNN on (the per-image work of `ocrdet-eval engine=dygraph` and of validation
             during training), post-processing inline;
  predictor  the exported model in `paddle.inference` (oneDNN + workaround), post-processing inline;
  pooled     the same predictor with DBPostProcess + metric in `--workers` processes (ocrdet.det.evaluator), so the
             next forward runs while earlier images are scored: what `ocrdet-eval` runs by default.

Variants alternate in chunks of `--chunk` images, so machine load hits all of them alike. Samples are prefetched
in a thread for every variant. End to end = from the first sample load to the last image scored (decode, resize,
normalize, forward, post-process, metric); export, predictor creation and worker start-up happen once before.

Reference (`--reference paddleocr`, default): PaddleOCR's own validation work per image, in its own environment
(`scripts/paddleocr_reference.py eval`): its eval-mode model on the same normalized image, then its DBPostProcess,
each chunk timed right after ocrdet's variants. Its figure leaves out decoding, resizing and the metric, which
ocrdet's include, so the ratio understates ocrdet. Prints per variant images/s end to end with its in-run ratio to
PaddleOCR's, the post-process+metric share of the wall time, and P/R/H, with the machine line.

    python scripts/bench_eval.py                    # all 500 test images (long: ~10-30 min on 2 cores)
    python scripts/bench_eval.py --limit 50         # quick
    python scripts/bench_eval.py --variants pooled --workers 2
    python scripts/bench_eval.py --reference none   # ocrdet only
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import paddle

from bench_infer import ICDAR2015, WEIGHTS
from bench_train import set_cpu_threads
from reference_process import ReferenceProcess, add_reference_args, machine
from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.config import compose_config  # noqa: E402
from ocrdet.det.evaluator import EvalResult, EvalTiming, Evaluator, model_forwards  # noqa: E402
from ocrdet.models.weights import load_pretrained  # noqa: E402

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
    add_reference_args(parser)
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
    reference = None
    if args.reference == "paddleocr":
        reference = ReferenceProcess(
            ["eval", "--weights", str(args.weights.resolve()), "--threads", str(args.threads)],
            python=args.reference_python, checkout=args.paddleocr, mkl=args.reference_mkl,
            malloc=args.reference_malloc,
        )
    reference_s: List[float] = []
    scratch = tempfile.TemporaryDirectory()
    try:
        for forward in forwards.values():  # warm-up on a small image: kernel selection and primitive caches
            forward(np.zeros((1, 3, 64, 64), "float32"))
        parts: Dict[str, List[EvalResult]] = {v: [] for v in variants}
        for start in range(0, count, args.chunk):
            chunk = range(start, min(start + args.chunk, count))
            for v in variants:
                parts[v].append(evaluators[v].evaluate({None: forwards[v]}, dataset, chunk))
            if reference is not None:
                for i in chunk:
                    sample = dataset[i]
                    saved = Path(scratch.name) / f"{i}.npz"
                    np.savez(saved, image=np.asarray(sample["image"][None], np.float32), shape=sample["shape"][None])
                    if not reference_s:  # its first call builds kernels and caches: warm it up on the first image
                        reference.request(f"forward {saved}")
                    reference_s.append(float(reference.request(f"forward {saved}")[0]))
    finally:
        for evaluator in evaluators.values():
            evaluator.close()
        if reference is not None:
            reference.close()
        scratch.cleanup()

    print(f"machine: {machine()}")
    print(f"images: {count} threads: {args.threads} workers (pooled): {args.workers} chunk: {args.chunk}")
    reference_rate = len(reference_s) / sum(reference_s) if reference_s else None
    if reference_rate is not None:
        print(f"eval_paddleocr_images_per_s: {reference_rate:.3f} (its model forward + DBPostProcess, same images, "
              f"same run)")
    results = {v: _merge(parts[v]) for v in variants}
    for v, result in results.items():
        t, m = result.timing, result.metrics
        rate = t.images_per_s
        ratio = f" ({rate / reference_rate:.2f}x PaddleOCR's, same run)" if reference_rate else ""
        print(f"eval_{v}_images_per_s: {rate:.3f}{ratio}")
        print(f"eval_{v}_post_share: {t.post_share:.3f} (post-process+metric {1000 * t.post / t.images:.0f} ms/image, "
              f"forward {1000 * t.forward / t.images:.0f} ms/image, waiting for samples "
              f"{1000 * t.wait_load / t.images:.0f} ms/image, for workers "
              f"{1000 * t.wait_post / t.images:.0f} ms/image)")
        print(f"eval_{v}_metrics: precision={m['precision']:.6f} recall={m['recall']:.6f} hmean={m['hmean']:.6f}")
    return results


if __name__ == "__main__":
    main()
