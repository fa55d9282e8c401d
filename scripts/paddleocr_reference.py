"""PaddleOCR's own training step or data pipeline, driven one unit at a time over stdin (the benchmarks' reference).

Runs in PaddleOCR's environment (`/work/ppocr_venv/bin/python`: numpy<2, paddle 3.3.1), never imports ocrdet, and
builds everything from PaddleOCR's checkout and config the way `tools/train.py` does. The benchmark that starts it
sends one command per line and reads one answer per line, so reference and ocrdet units can alternate in time and
share the machine's load:

    train: `step` -> `step <seconds> <loss>`    (model + loss + backward + optimizer step + clear_grad + lr step)
    data:  `batch a.jpg,b.jpg,...` -> `batch <seconds>` (decode -> PaddleOCR's train transforms -> stack)
    eval:  `forward x.npz` -> `forward <seconds> <boxes>` (its eval-mode model on the saved normalized image, then its
           DBPostProcess with the saved shape: the per-image work of PaddleOCR's validation, tools/program.py eval)
    both:  `quit`

    python scripts/paddleocr_reference.py train --checkout ../shared/reference/PaddleOCR --mode student --batch-file b.npz
    python scripts/paddleocr_reference.py eval --checkout ../shared/reference/PaddleOCR --weights ../shared/weights/ch_PP-OCRv3_det_student.pdparams
    python scripts/paddleocr_reference.py data --checkout ../shared/reference/PaddleOCR --root ../shared/data/icdar2015 --crop 960
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

# PaddleOCR's det configs for each benchmark mode (relative to the checkout).
CONFIGS = {
    "student": "configs/det/ch_PP-OCRv3/ch_PP-OCRv3_det_student.yml",
    "cml": "configs/det/ch_PP-OCRv3/ch_PP-OCRv3_det_cml.yml",
}
# PaddleOCR's det batch order (the config's KeepKeys), which its DBLoss indexes positionally.
BATCH_KEYS = ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask")


def load_config(checkout: Path, mode: str) -> Dict[str, Any]:
    import yaml

    with open(checkout / CONFIGS[mode]) as f:
        return yaml.safe_load(f)


def set_threads(threads: int) -> None:
    """Paddle pins its math library to one thread at import; both sides of a comparison use the same count."""
    import paddle
    from paddle.base import core

    paddle.set_device("cpu")
    core.set_num_threads(int(threads))


def build_train_step(checkout: Path, mode: str, batch_file: str) -> Callable[[], float]:
    """A closure running one PaddleOCR training step (tools/program.py's non-AMP branch) on the saved batch."""
    import numpy as np
    import paddle
    from ppocr.losses import build_loss
    from ppocr.modeling.architectures import build_model
    from ppocr.optimizer import build_optimizer

    config = load_config(checkout, mode)
    model = build_model(config["Architecture"])
    loss_class = build_loss(config["Loss"])
    optimizer, lr_scheduler = build_optimizer(config["Optimizer"], epochs=500, step_each_epoch=100, model=model)
    model.train()
    saved = np.load(batch_file)
    batch = [paddle.to_tensor(saved[key]) for key in BATCH_KEYS]

    def step() -> float:
        preds = model(batch[0])
        loss = loss_class(preds, batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if not isinstance(optimizer._learning_rate, float):
            lr_scheduler.step()
        # PaddleOCR's CML total is not a scalar (its sum keeps a batch-shaped term); its log shows the mean
        return float(loss.numpy().mean())

    return step


def build_eval_forward(checkout: Path, weights: Path) -> Callable[[str], int]:
    """A closure scoring one saved image the way PaddleOCR's validation does: model forward, then DBPostProcess."""
    import numpy as np
    import paddle
    from ppocr.modeling.architectures import build_model
    from ppocr.postprocess import build_post_process
    from ppocr.utils.save_load import load_pretrained_params

    config = load_config(checkout, "student")
    model = build_model(config["Architecture"])
    load_pretrained_params(model, str(weights.with_suffix("")))
    model.eval()
    postprocess = build_post_process(config["PostProcess"], config["Global"])

    def forward(path: str) -> int:
        saved = np.load(path)
        with paddle.no_grad():
            preds = model(paddle.to_tensor(saved["image"]))
        result = postprocess({"maps": preds["maps"]}, saved["shape"])
        return len(result[0]["points"])

    return forward


def icdar2015_samples(root: Path) -> List[Dict[str, Any]]:
    """ICDAR2015 train images with their gt files turned into PaddleOCR's label JSON (what DetLabelEncode reads)."""
    samples = []
    for image in sorted((root / "train" / "images").glob("*.jpg")):
        boxes = []
        gt = root / "train" / "gts" / f"gt_{image.stem}.txt"
        for line in gt.read_text(encoding="utf-8-sig").splitlines():
            parts = line.strip().split(",")
            if len(parts) < 9:
                continue
            xy = [int(float(v)) for v in parts[:8]]
            points = [xy[i:i + 2] for i in range(0, 8, 2)]
            boxes.append({"transcription": ",".join(parts[8:]), "points": points})
        samples.append({"img_path": str(image), "label": json.dumps(boxes)})
    return samples


def build_data_batch(checkout: Path, root: Path, crop: int) -> Callable[[List[str]], None]:
    """A closure producing one stacked batch through PaddleOCR's own train transforms at `crop` (student config)."""
    import numpy as np
    from ppocr.data.imaug import create_operators, transform

    config = load_config(checkout, "student")
    transforms = config["Train"]["dataset"]["transforms"]
    for op in transforms:
        if "EastRandomCropData" in op:
            op["EastRandomCropData"]["size"] = [crop, crop]
    ops = create_operators(transforms, config["Global"])
    samples = icdar2015_samples(root)
    by_name = {Path(s["img_path"]).name: i for i, s in enumerate(samples)}

    def load(name: str) -> List[Any]:
        # SimpleDataSet.__getitem__: read the bytes, run the ops, redraw another image when an op drops the sample
        index = by_name[name]
        while True:
            sample = samples[index]
            with open(sample["img_path"], "rb") as f:
                data = {"img_path": sample["img_path"], "label": sample["label"], "image": f.read()}
            out = transform(data, ops)
            if out is not None:
                return out
            index = np.random.randint(len(samples))

    def batch(names: List[str]) -> None:
        loaded = [load(name) for name in names]
        [np.stack(field) for field in zip(*loaded)]  # paddle.io's default collate of the KeepKeys lists

    return batch


def protocol_channel() -> Any:
    """The answers' own stream: stdout's pipe, which everything else (PaddleOCR logs to stdout) leaves for stderr."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def serve(channel: Any, handlers: Dict[str, Callable[[str], str]]) -> None:
    print("ready", file=channel, flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "quit":
            return
        print(handlers[command](arg), file=channel, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["train", "data", "eval"])
    parser.add_argument("--checkout", required=True, type=Path)
    parser.add_argument("--mode", choices=sorted(CONFIGS), default="student")
    parser.add_argument("--batch-file", help="train: .npz with the batch arrays (BATCH_KEYS)")
    parser.add_argument("--root", type=Path, help="data: the ICDAR2015 root (train/images, train/gts)")
    parser.add_argument("--crop", type=int, default=960)
    parser.add_argument("--weights", type=Path, help="eval: the .pdparams to score with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    channel = protocol_channel()
    checkout = args.checkout.resolve()
    sys.path.insert(0, str(checkout))
    os.chdir(checkout)  # PaddleOCR resolves some resources relative to its root
    set_threads(args.threads)
    import numpy as np

    np.random.seed(args.seed)
    if args.what == "train":
        step = build_train_step(checkout, args.mode, args.batch_file)

        def on_step(_: str) -> str:
            start = time.perf_counter()
            loss = step()
            return f"step {time.perf_counter() - start:.6f} {loss:.6f}"

        serve(channel, {"step": on_step})
    elif args.what == "eval":
        forward = build_eval_forward(checkout, args.weights.resolve())

        def on_forward(arg: str) -> str:
            start = time.perf_counter()
            boxes = forward(arg)
            return f"forward {time.perf_counter() - start:.6f} {boxes}"

        serve(channel, {"forward": on_forward})
    else:
        make_batch = build_data_batch(checkout, args.root.resolve(), args.crop)

        def on_batch(arg: str) -> str:
            start = time.perf_counter()
            make_batch(arg.split(","))
            return f"batch {time.perf_counter() - start:.6f}"

        serve(channel, {"batch": on_batch})


if __name__ == "__main__":
    main()
