"""Loader iterators the engine leaves before their end (the fit loop stops at `num_training_batches`, a limited
validation at its limit), and the data modules above that wrap them."""
from __future__ import annotations

import inspect
from typing import Any

WORKER_SHUTDOWN_S = 5.0  # how long close_iterator waits for each loader worker to exit


def close_iterator(iterator: Any) -> None:
    """End a loader iterator that was left before its end. Paddle's multi-process iterator stops its worker processes
    only when driven to StopIteration or collected, and its own reader thread keeps it from being collected: every
    epoch the fit loop ends at `num_training_batches` (never asking for the end) and every limited validation would
    leave its workers behind, each pinning a copy-on-write snapshot of the trainer's memory (a 12-epoch CPU run went
    out of memory). Iterators with `close()` (wrappers) close themselves; Paddle's is shut down, waiting at most
    WORKER_SHUTDOWN_S for each worker (a worker stuck in a read must not hang the exit)."""
    close = getattr(iterator, "close", None)
    if callable(close):
        close()
        return
    shutdown = getattr(iterator, "_try_shutdown_all", None)
    if callable(shutdown):
        if "timeout" in inspect.signature(shutdown).parameters:  # the multi-process iterator's
            shutdown(timeout=WORKER_SHUTDOWN_S)
        else:
            shutdown()
