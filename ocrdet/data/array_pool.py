"""Batch-sized numpy arrays lent to Paddle tensors without a copy, and reused once no tensor shares them.

A training batch at 960 is ~88 MB of float32 image plus ~88 MB of targets. glibc maps blocks that large anew on
every allocation and unmaps them on free, so each fresh batch array is page-faulted in again (~45k faults, more
time than the arithmetic that fills it). Reusing the same arrays avoids that. Reuse is safe: an array is handed out
again only when its reference count shows that nothing else holds it: a tensor made with `as_tensor` (and every view
or reshape of that tensor) keeps a reference through the DLPack capsule until it is freed.
"""
from __future__ import annotations

import sys
from typing import List, Tuple

import numpy as np


class ArrayPool:
    """`empty(shape, dtype)` returns a free pooled array of that shape, or a new one (pooled while fewer than
    `max_arrays` exist; beyond that, e.g. when a caller keeps every batch, plain allocations)."""

    def __init__(self, max_arrays: int = 8) -> None:
        self.max_arrays = int(max_arrays)
        self._arrays: List[np.ndarray] = []
        self._arrays.append(np.empty(0))
        self._free_refcount = self._refcount(0)  # what a pooled array that nobody else holds counts
        self._arrays.clear()

    def _refcount(self, index: int) -> int:
        return sys.getrefcount(self._arrays[index])

    def empty(self, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        for index in range(len(self._arrays)):
            array = self._arrays[index]
            if array.shape == shape and array.dtype == dtype:
                del array  # the check below must see only the pool's own reference
                if self._refcount(index) <= self._free_refcount:
                    return self._arrays[index]
        array = np.empty(shape, dtype)
        if len(self._arrays) < self.max_arrays:
            self._arrays.append(array)
        return array

    def __len__(self) -> int:
        return len(self._arrays)


def as_tensor(array: np.ndarray) -> "paddle.Tensor":
    """A CPU Paddle tensor sharing `array`'s memory (DLPack): no copy."""
    import paddle

    return paddle.utils.dlpack.from_dlpack(np.ascontiguousarray(array).__dlpack__())


def host_view(tensor: "paddle.Tensor") -> np.ndarray:
    """A CPU tensor's values as a numpy array sharing its memory (DLPack, no copy) where Paddle's tensors support it
    (3.x), else a copy (`tensor.numpy()`). For reading: writes would show in the tensor."""
    if hasattr(tensor, "__dlpack__"):
        return np.from_dlpack(tensor)
    return tensor.numpy()
