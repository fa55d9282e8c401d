"""ArrayPool hands an array out again only when no tensor (or view of one) shares it."""
from __future__ import annotations

import numpy as np

from ocrdet.data.array_pool import ArrayPool, as_tensor


def test_array_is_reused_only_once_no_tensor_or_view_holds_it() -> None:
    pool = ArrayPool(max_arrays=2)
    first = pool.empty((2, 3), np.float32)
    tensor = as_tensor(first)
    first_id = id(first)
    del first
    second = pool.empty((2, 3), np.float32)
    assert id(second) != first_id  # the tensor still shares the first array
    tensor_values = tensor.numpy().copy()
    second.fill(7.0)
    np.testing.assert_array_equal(tensor.numpy(), tensor_values)  # writing the new array left the tensor alone
    del second
    view = tensor[1:]
    del tensor
    third = pool.empty((2, 3), np.float32)
    assert id(third) != first_id  # a view of the tensor still holds the first array
    del third, view
    assert id(pool.empty((2, 3), np.float32)) == first_id  # everything freed: reused, no new allocation
    assert len(pool) == 2


def test_pool_stops_growing_at_its_limit_and_shares_memory() -> None:
    pool = ArrayPool(max_arrays=1)
    held = [pool.empty((4,), np.float32), pool.empty((4,), np.float32)]
    assert len(pool) == 1 and held[0] is not held[1]
    tensor = as_tensor(held[0])
    held[0][:] = 3.0
    np.testing.assert_array_equal(tensor.numpy(), np.full(4, 3.0, np.float32))  # no copy: the same memory
