"""One process at a time in a run directory: two runs writing the same `checkpoints/latest` and MLflow run would
interleave their files. An advisory `flock` on `<run dir>/.ocrdet.lock`: the kernel drops it when its holder dies,
SIGKILL included, so a crashed run never leaves a stale lock."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected
    fcntl = None

LOCK_NAME = ".ocrdet.lock"
_held: dict[Path, int] = {}  # this process's locks -> nesting depth (main() and run_train() both take it)


class RunDirLocked(RuntimeError):
    """Another live process holds the run directory."""


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory for the duration; RunDirLocked naming the holder's pid when another process has it."""
    path = (Path(run_dir) / LOCK_NAME).resolve()
    if fcntl is None or path in _held:
        _held[path] = _held.get(path, 0) + 1
        try:
            yield
        finally:
            _held[path] -= 1
            if not _held[path]:
                del _held[path]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise RunDirLocked(
                f"{path.parent} is in use by another run (pid {holder}, lock {path}); wait for it to end or use "
                "another run dir (hydra.run.dir=...)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
    finally:
        os.close(fd)  # releases the flock
