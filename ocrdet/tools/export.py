"""`ocrdet-export`: trained weights -> paddle.inference model(s), for the eval model or chosen sub-models."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ocrdet.utils.setup import quiet_warnings

quiet_warnings()

from ocrdet.config import CONF_DIR, check_targets  # noqa: E402
from ocrdet.engine import checkpoint_io  # noqa: E402
from ocrdet.export import export_inference  # noqa: E402
from ocrdet.models.distillation import DistillationModel  # noqa: E402
from ocrdet.models.weights import load_for_inference  # noqa: E402

log = logging.getLogger("ocrdet.export")


def run_export(cfg: DictConfig) -> list[str]:
    check_targets(cfg)
    model = instantiate(cfg.model)
    weights = checkpoint_io.resolve_weights(cfg.weights)
    load_for_inference(model, str(weights))
    out = Path(cfg.output_dir)
    if isinstance(model, DistillationModel):
        targets = {out / name: model.submodel(name) for name in (cfg.submodels or model.names)}
    else:
        targets = {out: model}
    written = []
    for folder, layer in targets.items():
        written += _export_atomically(layer, folder)
    for path in written:
        print(f"wrote {path}")
    return written


def _export_atomically(model, folder: Path) -> list[str]:
    """Export into a temporary folder, then rename each file into place: a kill mid-export leaves the previous
    model files intact (never a new graph beside old weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as staging:
        staged = export_inference(model, str(Path(staging) / "inference"))
        final = []
        for path in staged:
            target = folder / Path(path).name
            os.replace(path, target)
            final.append(str(target))
    return final


def _translate_output_flag(argv: Sequence[str]) -> list[str]:
    """Accept `-o DIR` / `--output DIR` (PaddleOCR-style) as Hydra's `output_dir=DIR`."""
    args, i = [], 0
    while i < len(argv):
        if argv[i] in ("-o", "--output") and i + 1 < len(argv):
            args.append(f"output_dir={argv[i + 1]}")
            i += 2
        else:
            args.append(argv[i])
            i += 1
    return args


@hydra.main(config_path=str(CONF_DIR), config_name="export", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    run_export(cfg)


def main() -> None:
    sys.argv = [sys.argv[0], *_translate_output_flag(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
