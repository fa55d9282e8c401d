"""The benchmark scripts import each other by module name (`from bench_train import ...`), as when run as
`python scripts/<name>.py`: put scripts/ on the path for their smoke tests."""
from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
