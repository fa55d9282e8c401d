"""The engine is the bottom layer: it imports nothing of ocrdet outside `ocrdet.engine`, and names no OCR notion."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "ocrdet" / "engine"


def test_the_engine_imports_only_itself_from_ocrdet():
    outside = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            outside += [f"{path.name}: {n}" for n in names
                        if n.split(".")[0] == "ocrdet" and not n.startswith("ocrdet.engine")]
    assert outside == []


def test_the_engine_names_no_ocr_notion():
    words = re.compile(r"\b(image|hmean|best_accuracy|best_model_dict|polys)\b", re.IGNORECASE)
    found = [f"{p.name}:{i}" for p in sorted(ENGINE.rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if words.search(line)]
    assert found == []
