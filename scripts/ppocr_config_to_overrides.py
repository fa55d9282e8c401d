#!/usr/bin/env python
"""From a checkout without installing: the same as `ocrdet-from-paddleocr` (ocrdet/tools/from_paddleocr.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocrdet.tools.from_paddleocr import main  # noqa: E402

if __name__ == "__main__":
    main()
