"""KeepKeys: drop everything but the named keys, so collate and workers move only what the model needs."""
from __future__ import annotations


class KeepKeys:
    def __init__(self, keys: list[str]) -> None:
        self.keys = list(keys)

    def __call__(self, data: dict) -> dict:
        missing = [k for k in self.keys if k not in data]
        if missing:
            raise KeyError(f"KeepKeys: sample has no {missing}; it has {sorted(data)}")
        return {k: data[k] for k in self.keys}
