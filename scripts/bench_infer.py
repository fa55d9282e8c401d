"""ms/image of ocrdet's exported student in a `paddle.inference` predictor vs onnxruntime on PaddleOCR's released model.

Both get the same input: a real ICDAR2015 test image (img_1, 1280x720) through ocrdet's PP-OCRv3 eval transforms
(short side 736 -> 736x1312). The student is exported from the released weights with `ocrdet-export`'s code into a
temporary folder and loaded with `ocrdet.det.graph.load_predictor` (oneDNN on with the Paddle 3 workaround);
onnxruntime gets `intra_op_num_threads` = the same thread count. Repetitions alternate between the two, so machine
load hits both equally; the figures are medians. Prints:

  predictor_ms_per_image: X
  onnxruntime_ms_per_image: Y
  ratio_predictor_vs_onnxruntime: X/Y   (target: <= 1)

    python scripts/bench_infer.py [--threads 2] [--reps 10] [--side 736] [--mkldnn 1]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.config import compose_config  # noqa: E402
from ocrdet.det.graph import load_predictor, predict  # noqa: E402
from ocrdet.cli.export import run_export  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights" / "ch_PP-OCRv3_det_student.pdparams"
ONNX = SHARED / "weights" / "ch_PP-OCRv3_det_infer.onnx"
ICDAR2015 = SHARED / "data" / "icdar2015"


def eval_input(root: Path, index: int = 0, side: int = 736) -> np.ndarray:
    """Test image `index` (natural order: 0 is img_1) through the configured eval transforms, as a [1,3,H,W] batch."""
    resize = f"data.val_transforms.resize.limit_side_len={side}"
    overrides = ["data=icdar2015", f"data.root={root}", resize, "weights=-"]
    dataset = instantiate(compose_config("eval", overrides).data).val_dataset()
    return np.ascontiguousarray(dataset[index]["image"][None], dtype=np.float32)


def export_student(weights: Path, out_dir: str) -> None:
    """`ocrdet-export weights=<weights> -o <out_dir>` for the PP-OCRv3 student."""
    run_export(compose_config("export", [f"weights={weights}", f"output_dir={out_dir}"]))


def onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=10, help="timed runs of each, alternating, after one warm-up")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds of idle before each timed run, so the other engine's threads stop spin-waiting")
    parser.add_argument("--side", type=int, default=736, help="eval resize short side (736: PP-OCRv3)")
    parser.add_argument("--mkldnn", type=int, default=1, help="oneDNN in the predictor (1/0)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--onnx", type=Path, default=ONNX)
    parser.add_argument("--root", type=Path, default=ICDAR2015, help="ICDAR2015 root (test/images, test/gts)")
    args = parser.parse_args(argv)

    x = eval_input(args.root, side=args.side)
    session = onnx_session(args.onnx, args.threads)
    feed = {session.get_inputs()[0].name: x}
    with tempfile.TemporaryDirectory(prefix="ocrdet_bench_infer_") as tmp:
        export_student(args.weights, tmp)
        predictor = load_predictor(tmp, threads=args.threads, mkldnn=bool(args.mkldnn))

        runs = {"predictor": lambda: predict(predictor, x), "onnxruntime": lambda: session.run(None, feed)[0]}
        outputs = {name: run() for name, run in runs.items()}  # warm-up: kernel selection, oneDNN primitive caches
        times: Dict[str, List[float]] = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, run in runs.items():
                time.sleep(args.pause)
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)

    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    diff = float(np.abs(outputs["predictor"] - outputs["onnxruntime"]).max())
    print(f"input: {list(x.shape)} threads: {args.threads} reps: {args.reps} mkldnn: {args.mkldnn}")
    print(f"max_abs_diff_predictor_vs_onnxruntime: {diff:.2e}")
    print(f"predictor_ms_per_image: {ms['predictor']:.1f}")
    print(f"onnxruntime_ms_per_image: {ms['onnxruntime']:.1f}")
    print(f"ratio_predictor_vs_onnxruntime: {ms['predictor'] / ms['onnxruntime']:.3f}")
    return {"predictor_ms": ms["predictor"], "onnxruntime_ms": ms["onnxruntime"], "max_abs_diff": diff}


if __name__ == "__main__":
    main()
