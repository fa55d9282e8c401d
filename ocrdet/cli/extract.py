"""`ocrdet-extract`: pull one sub-model's weights out of a distillation checkpoint (spec section 6.6).

    ocrdet-extract outputs/cml/runs/<ts> --model Student -o student.pdparams

The result has sub-model-relative keys (`backbone.…`), so it serves as a student-only `pretrained` file or as the
CML teacher (`Teacher` pretrained = the DML run's extracted `Student`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

import paddle  # noqa: E402

from ocrdet.engine.checkpoint_io import atomic_write  # noqa: E402
from ocrdet.models.weights import load_params  # noqa: E402


def submodel_names(state: Dict[str, Any]) -> List[str]:
    """The sub-model prefixes of a distillation state dict (`Student`, `Teacher`, …), in order of appearance."""
    return list(dict.fromkeys(key.split(".", 1)[0] for key in state if "." in key))


def extract_submodel(state: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The entries of sub-model `name` with the `name.` prefix stripped; KeyError listing the names present.

    Matching is on the whole `name.` prefix, so `Student` never takes `Student2.` keys.
    """
    prefix = f"{name}."
    sub = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    if not sub:
        raise KeyError(f"no sub-model {name!r}; sub-models present: {', '.join(submodel_names(state)) or 'none'}")
    return sub


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrdet-extract", description="Write one sub-model of a distillation checkpoint as its own .pdparams."
    )
    parser.add_argument("checkpoint", help="a .pdparams file, a PaddleOCR prefix, or a run/checkpoint directory")
    parser.add_argument("--model", required=True, help="sub-model name, e.g. Student, Student2 or Teacher")
    parser.add_argument("-o", "--output", required=True, help="output file (.pdparams is appended if missing)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        state = load_params(args.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    try:
        sub = extract_submodel(state, args.model)
    except KeyError as exc:
        parser.error(f"{args.checkpoint}: {exc.args[0]}")

    out = Path(args.output)
    if out.suffix != ".pdparams":
        out = out.with_name(out.name + ".pdparams")  # what `pretrained` and load_pretrained expect
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda path: paddle.save(sub, path))
    print(f"wrote {len(sub)} tensors ({args.model}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
