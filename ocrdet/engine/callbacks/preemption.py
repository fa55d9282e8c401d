"""Pre-emption: SIGTERM (a cluster taking the machine back) and SIGINT save a resumable checkpoint at the next
optimizer-step boundary and exit, instead of losing the run."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from typing import TYPE_CHECKING, Any

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


class Preemption(Callback):
    """Installed by the Trainer for the length of a fit; `requested` holds the signal received, if any."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("received %s: saving a resumable checkpoint at the next step boundary", signal.Signals(signum).name)
        self.requested = signum

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        self.requested = None
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in self.SIGNALS}

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._restore()

    def on_exception(self, trainer: Trainer, module: TrainModule, exception: BaseException) -> None:
        self._restore()

    def save_and_exit(self, trainer: Trainer) -> None:
        """Called by the Trainer at a step boundary once a signal arrived."""
        prefix = trainer.last_checkpoint_prefix
        path = trainer.save_checkpoint(prefix)
        log.warning("saved %s (epoch %d, batch %d); resume with resume=%s", path, trainer.current_epoch,
                    trainer.batch_idx, prefix)
        # loader workers (ours) may be blocked in a read or deferring the group's SIGTERM: end them now. Paddle's
        # SIGCHLD handler would report their end as a crash after the save: this process is exiting, so restore the
        # default first.
        children = multiprocessing.active_children()
        if children and hasattr(signal, "SIGCHLD"):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for child in children:
            child.kill()
        raise SystemExit(128 + self.requested)
