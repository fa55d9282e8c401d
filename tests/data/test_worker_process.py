"""The loader workers' process settings (in a child process: they are process-wide)."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHILD = """
from ocrdet.engine.memory import reuse_freed_memory
from ocrdet.data.datamodule import setup_worker_process
setup_worker_process()
print(reuse_freed_memory())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is glibc's")
def test_worker_process_reuses_freed_memory():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"]  # both mallopt calls succeeded


def test_worker_setup_in_a_session_leader():
    """A process started by `setsid` (a daemon, some job runners) leads its session, where setpgid fails with EPERM;
    it already has a group of its own, so the setup keeps it and goes on (bench_data.py runs it in-process)."""
    child = CHILD + "import os\nprint(os.getpgid(0) == os.getpid())\n"
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True,
                         start_new_session=True).stdout.split()
    assert out[-1] == "True"
