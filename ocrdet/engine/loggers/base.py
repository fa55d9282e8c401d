"""Logger contract (Lightning's shape). The Trainer calls loggers on the global-zero rank only."""
from __future__ import annotations

from typing import Any, Mapping


class Logger:
    def log_hyperparams(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_artifact(self, path: str, artifact_path: str | None = None) -> None: ...
    def set_tags(self, tags: Mapping[str, str]) -> None: ...
    def finalize(self, status: str) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue logging into the same place."""
        return {}


def flatten(params: Mapping[str, Any], parent: str = "", sep: str = ".") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become their string form (MLflow params are strings)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{parent}{sep}{key}" if parent else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat
