"""Entry point of one rank started by `ocrdet.cli.launch`: read the driver's resolved config and train."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ocrdet.utils.setup import setup_cli

setup_cli()

from ocrdet.engine.distributed import rank  # noqa: E402
from ocrdet.cli.launch import METRICS_FILE  # noqa: E402
from ocrdet.cli.train import run_train  # noqa: E402


def main(config_path: str) -> None:
    cfg = OmegaConf.load(config_path)
    run_dir = Path(cfg.paths.output_dir)
    logging.basicConfig(
        level=logging.INFO if rank() == 0 else logging.WARNING,
        format=f"[%(asctime)s][rank {rank()}][%(name)s][%(levelname)s] - %(message)s",
        handlers=[logging.StreamHandler(), *([logging.FileHandler(run_dir / f"{cfg.task_name}.log")] if rank() == 0 else [])],
    )
    metrics = run_train(cfg)
    if rank() == 0:
        (run_dir / METRICS_FILE).write_text(json.dumps(metrics))


if __name__ == "__main__":
    main(sys.argv[1])
