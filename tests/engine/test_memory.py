"""`keep_freed_memory` (the CPU Trainer's `cpu_reuse_memory`): freed tensors' memory is reused, not page-faulted in
again. In child processes: the setting is process-wide. Faults are counted by the kernel (ru_minflt), no timing."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from ocrdet.engine import accelerator
from ocrdet.engine.trainer import Trainer

# A 64 MiB tensor (16384 pages of 4 KiB), above glibc's largest mmap threshold (32 MiB): by default each one is a
# fresh mapping, faulted in page by page when written. The faults of the third allocate-write-free round are printed.
CHILD = """
import resource, sys
import paddle
from ocrdet.engine.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensor = paddle.full([16 * 2**20], 1.0, dtype="float32")
    del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(), faults()
print(faults())
"""


def _faults(setting: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, setting], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    default, kept = _faults("default"), _faults("keep")
    # default: every page again (16384, or 32 with transparent huge pages); kept: the block is reused as it is
    assert default >= 32
    assert kept <= default // 8


def test_a_cpu_trainer_keeps_freed_memory_unless_told_not_to(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(accelerator, "keep_freed_memory", lambda: calls.append("keep") or True)
    Trainer(accelerator="cpu", max_steps=1, default_root_dir=str(tmp_path))
    assert calls == ["keep"]
    Trainer(accelerator="cpu", max_steps=1, default_root_dir=str(tmp_path), cpu_reuse_memory=False)
    assert calls == ["keep"]
