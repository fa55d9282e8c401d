"""Per-op wall-time accounting for a transform pipeline, opt-in: the datasets run their ops unwrapped, so normal
training pays nothing for it."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, Mapping

from ocrdet.data.transforms.extra import UsesExtraSamples


class TimedOp(UsesExtraSamples):
    """Calls `op` and adds its wall time to `times.seconds[name]`. Forwards `ext_data_num`, so a wrapped op that
    needs extra samples still gets them from the dataset."""

    def __init__(self, name: str, op: Callable, times: OpTimes) -> None:
        self.name = name
        self.op = op
        self.times = times
        self.ext_data_num = op.ext_data_num if isinstance(op, UsesExtraSamples) else 0

    def __call__(self, data: dict) -> dict | None:
        start = time.perf_counter()
        out = self.op(data)
        self.times.seconds[self.name] += time.perf_counter() - start
        self.times.calls[self.name] += 1
        return out


class OpTimes:
    """Accumulated seconds and call counts per op name (per process: loader workers keep their own)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)

    def wrap(self, transforms: Mapping[str, Callable | None]) -> dict[str, Callable | None]:
        """The same named pipeline with each op timed; disabled (None) entries stay disabled."""
        return {name: None if op is None else TimedOp(name, op, self) for name, op in transforms.items()}

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per call, in pipeline order."""
        return {name: 1000.0 * total / self.calls[name] for name, total in self.seconds.items()}
