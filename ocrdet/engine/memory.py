"""glibc allocator settings that keep freed host memory for reuse: no value changes, fewer page faults.

glibc serves a block above its mmap threshold (at most 32 MB) with a fresh mapping and unmaps it when freed, and
returns free heap memory above M_TRIM_THRESHOLD to the OS; either way the next block of that size is page-faulted in
again, 4 KiB at a time. Two kinds of process pay for it:

- a data-loading process that makes multi-MB arrays per sample and frees them once collated (ocrdet's detection
  pipeline at a 960 crop: ~25 MB per sample, ~6000 faults, a third of its time);
- a CPU training process allocates and frees every activation and gradient of a step, many above 32 MB (a 640 crop,
  batch 8: 32 channels at 320x320 are 105 MB): ~650,000 faults and ~3.3 s of kernel time per student step, 30% of
  its 9 s (2-core AMD EPYC, Paddle 3.3.1, whose CPU allocator hands every tensor to malloc).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# Blocks up to this size come from the heap (glibc's maximum on 64-bit): every per-sample array of a 960 or even a
# 2048 crop, while a collated batch (8 x 11 MB images) is still mapped and unmapped on its own.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free heap memory kept for reuse instead of being returned to the OS: several samples' worth.
TRIM_THRESHOLD = 256 * 1024 * 1024


def _mallopt() -> "ctypes._CFuncPtr | None":
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return None


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc keep freed multi-MB blocks (up to MMAP_THRESHOLD each, TRIM_THRESHOLD in all) for reuse in this
    process (both settings are needed: setting either one turns off glibc's dynamic mmap threshold). Returns False,
    changing nothing, where libc is not glibc. For data-loading processes: the loader's workers call it."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc serve every block from its heap (no per-block mappings, whatever the size) and never give freed
    heap memory back to the OS, so each training step reuses the memory of the one before: no page faults after the
    first step. The process then holds its high-water mark (the largest step's working set) until it ends, as a GPU
    caching allocator does; measured at 640 crop, batch 8: 3.42 -> 3.81-3.98 GB peak RSS, 1.3x faster steps.
    Returns False, changing nothing, where libc is not glibc. Blocks allocated before the call keep their kind.

    Threads other than the main one allocate from their own arenas, whose heaps are at most 64 MB: glibc maps a
    larger block for them anyway. Paddle's dygraph allocates on the calling thread; its static executor on CPU must
    run serially for the same effect (`serial_static_executor`)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # M_TRIM_THRESHOLD -1 (as size_t: the maximum) disables trimming, as mallopt(3) documents
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
