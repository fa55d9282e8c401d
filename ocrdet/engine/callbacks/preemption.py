"""Pre-emption: SIGTERM (a cluster taking the machine back) and SIGINT save a resumable checkpoint at the next
optimizer-step boundary and exit, instead of losing the run.

A read that never returns (a FIFO or a file on a hung network mount) keeps the main thread inside the data
loader's C++ wait, where Python never runs its signal handler. So the signal also reaches a watcher thread through
`signal.set_wakeup_fd` (written by the C-level handler at once): when the main thread is still waiting for data
`GRACE_S` seconds later, the watcher saves the state of the last completed step itself (the step lock keeps the main
thread from starting a step meanwhile) and ends the process with the signal's exit code."""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from ocrdet.engine.callbacks.base import Callback

if TYPE_CHECKING:
    from ocrdet.engine.module import TrainModule
    from ocrdet.engine.trainer import Trainer

log = logging.getLogger(__name__)


class Preemption(Callback):
    """Installed by the Trainer for the length of a fit; `requested` holds the signal received, if any."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)
    GRACE_S = 5.0  # how long the main thread may take to reach a step boundary before the watcher saves instead

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}
        self.step_lock = threading.Lock()  # held by the main thread while a step changes the state
        self._waiting_for_data = False
        self._trainer: Trainer | None = None
        self._wakeup: tuple[int, int] | None = None
        self._previous_wakeup_fd = -1

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested is None:
            log.warning("received %s: saving a resumable checkpoint at the next step boundary",
                        signal.Signals(signum).name)
        self.requested = signum

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        self.requested = None
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        self._trainer = trainer
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in self.SIGNALS}
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._wakeup = (read_fd, write_fd)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_fd,), name="ocrdet-preemption", daemon=True).start()

    @contextlib.contextmanager
    def waiting_for_data(self) -> Iterator[None]:
        """Marks the main thread's wait for the next batch: the state is that of the last completed step."""
        self._waiting_for_data = True
        try:
            yield
        finally:
            self._waiting_for_data = False

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 1)
            except OSError:
                return
            if not data:
                return  # the pipe was closed at the end of the fit
            if data[0] not in self.SIGNALS:
                continue
            self.requested = self.requested or data[0]
            deadline = time.monotonic() + self.GRACE_S
            while time.monotonic() < deadline:
                time.sleep(0.1)
                if not self._waiting_for_data:
                    break  # the main thread is at work: it saves at the next step boundary
            else:
                self._save_from_watcher()

    def _save_from_watcher(self) -> None:
        trainer = self._trainer
        if trainer is None or not self.step_lock.acquire(timeout=1.0):
            return
        # the data arrived meanwhile, or a gradient accumulation is half done: the main thread's boundary check saves
        if not self._waiting_for_data or trainer.accumulated_batches:
            self.step_lock.release()
            return
        signum = self.requested or signal.SIGTERM
        log.warning("the main thread has waited for data for %.0f s since %s (a blocked read?): saving from the "
                    "signal watcher", self.GRACE_S, signal.Signals(signum).name)
        try:
            self._save(trainer)
        finally:
            logging.shutdown()  # flush the log files: the process ends without unwinding the blocked main thread
            os._exit(128 + signum)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            for fd in reversed(self._wakeup):  # the write end first: the watcher's read then returns b""
                os.close(fd)
            self._wakeup = None
        self._trainer = None

    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._restore()

    def on_exception(self, trainer: Trainer, module: TrainModule, exception: BaseException) -> None:
        self._restore()

    def _save(self, trainer: Trainer) -> None:
        prefix = trainer.last_checkpoint_prefix
        path = trainer.save_checkpoint(prefix)
        log.warning("saved %s (epoch %d, batch %d); resume with resume=%s", path, trainer.current_epoch,
                    trainer.batch_idx, prefix)

    def save_and_exit(self, trainer: Trainer) -> None:
        """Called by the Trainer at a step boundary once a signal arrived."""
        self._save(trainer)
        # loader workers (ours) may be blocked in a read or deferring the group's SIGTERM: end them now. Paddle's
        # SIGCHLD handler would report their end as a crash after the save: this process is exiting, so restore the
        # default first.
        children = multiprocessing.active_children()
        if children and hasattr(signal, "SIGCHLD"):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for child in children:
            child.kill()
        raise SystemExit(128 + self.requested)
