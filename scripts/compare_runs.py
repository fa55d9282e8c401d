#!/usr/bin/env python
"""Same as `ocrdet-compare` (see ocrdet/tools/compare.py), runnable from a checkout without installing."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocrdet.tools.compare import main  # noqa: E402

if __name__ == "__main__":
    main()
