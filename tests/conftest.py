"""Shared test fixtures: the ../shared folder (benchmark data, released weights) is optional."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared, skipping the calling test with a clear reason when it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared folder beside the checkout is absent)")
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build ocrdet's CPU kernels (`ocrdet.engine.kernels`) once before any test runs: a fresh machine compiles them
    in ~25 s on first use, which would otherwise fall inside the first training test (or a subprocess of it that runs
    under a timeout). Tests that need them skip if they cannot be built; the rest use Paddle's kernels then."""
    from ocrdet.engine.kernels import load_cpu_kernels

    load_cpu_kernels()
