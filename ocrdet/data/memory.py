"""Allocator settings for processes that run the data pipeline.

Every sample allocates ~25 MB of fresh multi-MB arrays at 960 (the canvas, four float32 maps, the float32 image)
and frees them once collated. glibc serves blocks of that size with mmap, or with heap memory that it trims back to
the OS as soon as ~2x that much is free at the top, so each new array is page-faulted in again (~6000 faults per
sample: a third of the pipeline's time at 960). Keeping freed memory for reuse removes that cost without changing
any value.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap (glibc's maximum on 64-bit): every per-sample array of a 960 or even a
# 2048 crop, while a collated batch (8 x 11 MB images) is still mapped and unmapped on its own.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free heap memory kept for reuse instead of being returned to the OS: several samples' worth.
TRIM_THRESHOLD = 256 * 1024 * 1024


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc keep freed multi-MB blocks for reuse in this process (both settings are needed: setting either
    one turns off glibc's dynamic mmap threshold). Returns False, changing nothing, where libc is not glibc.

    Meant for data-loading processes: the loader's workers call it; it bounds the memory held back by
    TRIM_THRESHOLD."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
