"""Where the loop runs: device selection, CPU math threads and oneDNN (what the Trainer sets up before a fit)."""
from __future__ import annotations

import os

import paddle

from ocrdet.engine.memory import keep_freed_memory


def select_accelerator(accelerator: str, cpu_onednn: bool = True) -> str:
    """Set Paddle's device for this rank and return "cpu" or "gpu" (`auto`: a GPU when one is visible)."""
    if accelerator == "auto":
        accelerator = "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() else "cpu"
    if accelerator not in ("cpu", "gpu"):
        raise ValueError(f"trainer.accelerator={accelerator!r}: choose auto, cpu or gpu")
    if accelerator == "gpu":
        paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().device_id}")
    else:
        paddle.set_device("cpu")
        # Stack notes measured ~1.25x (MobileNetV3) to ~1.7x (ResNet50) from it; with Paddle 3.3.1 here a dygraph
        # step shows no oneDNN primitive (ONEDNN_VERBOSE) and no difference (bench_train 0.98-1.04x).
        paddle.set_flags({"FLAGS_use_mkldnn": bool(cpu_onednn)})
    return accelerator


def cpu_threads_per_rank(threads: int | None, ranks: int) -> int:
    """`threads`, or the machine's cores shared by the ranks running on it."""
    return threads or max(1, (os.cpu_count() or 1) // max(1, ranks))


def set_cpu_threads(threads: int) -> None:
    """Paddle sets OMP_NUM_THREADS=1 when it is unset, leaving all but one core idle on a CPU run."""
    core = getattr(getattr(paddle, "base", None), "core", None) or getattr(getattr(paddle, "fluid", None), "core", None)
    if core is not None and hasattr(core, "set_num_threads"):
        core.set_num_threads(int(threads))


def setup_cpu_process(threads: int, reuse_memory: bool = True) -> None:
    """A CPU training process: `threads` math threads and, with `reuse_memory`, freed memory kept for the next step
    (`ocrdet.engine.memory.keep_freed_memory`: no page faults after the first step, 1.3x faster student steps)."""
    set_cpu_threads(threads)
    if reuse_memory:
        keep_freed_memory()


def serial_static_executor() -> None:
    """Run static programs' ops one after another on the calling thread (FLAGS_new_executor_serial_run), for compiled
    training on CPU. Paddle's default executor runs independent ops on several threads, each with its own OpenMP team:
    on a 2-core machine that oversubscribes the cores (kernel time 3-4 s of a 9 s student step), allocates from other
    threads' arenas (mapped and unmapped per block, whatever `keep_freed_memory` says) and holds ~1.6x the memory
    (5.8 vs 3.5 GB at 640 crop, batch 8). Serially the compiled step runs at the eager one's speed with no page faults.
    """
    paddle.set_flags({"FLAGS_new_executor_serial_run": True})
