"""Multi-process launch from the Hydra CLI.

Hydra runs only in the driver: it composes the config and pins the run directory (so ranks never race on
`${now:}` dirs, also under --multirun); the driver saves the resolved config and starts
`python -m paddle.distributed.launch` on a plain worker entry point that reads it. Rank 0 alone writes logs,
checkpoints and MLflow records; the driver returns rank 0's final metrics to Hydra (and its sweepers).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

RESOLVED_CONFIG = "launch_config.yaml"
METRICS_FILE = "final_metrics.json"


def launch_command(devices: int, nnodes: int, master: str | None, run_dir: Path, accelerator: str) -> list[str]:
    """The `paddle.distributed.launch` command that starts `devices` ranks on this node."""
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(run_dir / "launch_logs")]
    if nnodes > 1:
        if not master:
            raise ValueError("trainer.nnodes > 1 needs trainer.master=<host:port> of the first node")
        cmd += ["--nnodes", str(nnodes), "--master", master]
    if accelerator == "gpu":
        cmd += ["--devices", ",".join(str(i) for i in range(devices))]
    else:  # CPU: gloo processes; `--devices` is refused without GPUs
        cmd += ["--nproc_per_node", str(devices)]
    # launch runs a script path (it has no `-m`); the worker imports the installed package
    worker = Path(__file__).resolve().with_name("worker.py")
    return [*cmd, str(worker), str(run_dir / RESOLVED_CONFIG)]


def launch(cfg: DictConfig) -> dict[str, float]:
    """Save the resolved config in the run dir and run the ranks; return rank 0's final metrics."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(resolved, run_dir / RESOLVED_CONFIG)
    trainer = cfg.trainer
    accelerator = trainer.accelerator
    if accelerator == "auto":
        import paddle

        accelerator = "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() else "cpu"
    cmd = launch_command(
        int(trainer.devices), int(trainer.get("nnodes", 1)), trainer.get("master"), run_dir, accelerator
    )
    env = {**os.environ, "OCRDET_WORKER": "1"}
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"distributed run failed (exit {result.returncode}); rank logs: {run_dir / 'launch_logs'}"
        )
    metrics_file = run_dir / METRICS_FILE
    return json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}


def is_worker() -> bool:
    """True inside a rank started by `launch` (which must not launch again)."""
    return os.environ.get("OCRDET_WORKER") == "1"
