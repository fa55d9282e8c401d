"""ToCHW: HWC -> CHW, the layout the network takes."""
from __future__ import annotations

import numpy as np


class ToCHW:
    def __call__(self, data: dict) -> dict:
        data["image"] = np.ascontiguousarray(data["image"].transpose(2, 0, 1))
        return data
