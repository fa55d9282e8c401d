"""`ocrdet-export`: trained weights -> paddle.inference model(s) with the inference.yml they were validated with,
optionally model.onnx, and (with a validation set) a check that the export scores what the trained model scores."""
from __future__ import annotations

import copy
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ocrdet.utils.setup import setup_cli

setup_cli()

from ocrdet.cli.build import build_data  # noqa: E402
from ocrdet.cli.config import CONF_DIR, check_targets, run_on_weights  # noqa: E402
from ocrdet.det.deploy import (  # noqa: E402
    ONNX_FILE,
    SETTINGS_FILE,
    ExportedModel,
    InferenceSettings,
    apply_settings,
    convert_to_onnx,
    default_model_name,
    differences,
    exported_forward,
    paddleocr_call,
    settings_from_config,
    write_settings,
)
from ocrdet.det.graph import export_inference  # noqa: E402
from ocrdet.det.evaluator import EvalResult, Evaluator, MapFn, dygraph_forward  # noqa: E402
from ocrdet.models.distillation import DistillationModel  # noqa: E402
from ocrdet.models.weights import load_for_inference, resolve_weights  # noqa: E402
from ocrdet.engine import checkpoint_io  # noqa: E402
from ocrdet.engine.loggers.sweep import find_training_run  # noqa: E402

log = logging.getLogger("ocrdet.det.graph")
# Taken from the run behind `weights=` (ocrdet.cli.config.adopt_run_config): its architecture, post-processing and data
# (whose val split the export is verified on, and whose val pipeline inference.yml records).
EXPORT_RUN_KEYS = ("backbone", "neck", "head", "distill", "members", "model", "postprocess", "data")
VERIFY_FILE = "verification.json"
# Float noise between the dygraph forward and an exported engine (maps equal to ~1e-5) can flip a box whose score
# sits on a threshold; more than this many boxes is not noise.
NOISE_BOXES = 1


class ExportVerificationError(RuntimeError):
    """The exported model does not score what the trained model scores on the validation set."""


def validation_settings(cfg: DictConfig) -> InferenceSettings:
    """The pre/post-processing the model is validated with: data's val pipeline (else eval_transforms) + postprocess."""
    transforms = cfg.data.val_transforms if cfg.get("data") is not None else cfg.eval_transforms
    return settings_from_config(transforms, cfg.postprocess, cfg.get("model_name") or default_model_name(cfg.model))


def recorded_settings(cfg: DictConfig) -> InferenceSettings:
    """What inference.yml records: the validation settings, with `deploy_resize`'s non-null keys on top."""
    validated = validation_settings(cfg)
    resize = dict(validated.resize)
    resize.update({k: v for k, v in (cfg.get("deploy_resize") or {}).items() if v is not None})
    return replace(validated, resize=resize)


def run_export(cfg: DictConfig) -> list[str]:
    check_targets(cfg)
    model = instantiate(cfg.model)
    weights = resolve_weights(cfg.weights)
    load_for_inference(model, str(weights))
    out = Path(cfg.output_dir)
    if isinstance(model, DistillationModel):
        targets = {out / name: model.submodel(name) for name in (cfg.submodels or model.names)}
    else:
        targets = {out: model}
    if cfg.format not in ("paddle", "onnx"):
        raise ValueError(f"format={cfg.format!r}; choose paddle or onnx")
    settings = recorded_settings(cfg)
    verify = cfg.get("data") is not None if cfg.get("verify") is None else bool(cfg.verify)
    written = []
    for folder, layer in targets.items():
        check = (lambda staging, layer=layer: verify_export(layer, staging, cfg)) if verify else None
        try:
            files = _export_atomically(layer, folder, settings, onnx=cfg.format == "onnx", check=check)
        except ExportVerificationError as error:
            raise ExportVerificationError(f"{folder}: {error}") from None
        for path in files:
            print(f"wrote {path}")
        run = find_training_run(checkpoint_io.read_states(weights))
        if verify:
            figures = json.loads((folder / VERIFY_FILE).read_text(encoding="utf-8"))
            scores = "; ".join(f"{k} {_phr(v)}" for k, v in figures.items() if k == "dygraph" or k.startswith("exported"))
            print(f"verified {folder} on {figures['images']} validation images: {scores}")
            if run is not None:
                _log_figures(*run, folder, figures)
        if run is not None and cfg.get("mlflow_model", True):
            from ocrdet.det.serving import MODEL_NAME, log_export_model

            uri = log_export_model(folder, *run, MODEL_NAME if len(targets) == 1 else f"{MODEL_NAME}_{folder.name}")
            print(f"MLflow model: {uri} (serve: mlflow models serve -m {uri} --env-manager local)")
        print(f"PaddleOCR 3.x: {paddleocr_call(settings, folder)}")
        written += files
    return written


def _phr(metrics: dict[str, float]) -> str:
    return f"P/R/H {metrics['precision']:.6f}/{metrics['recall']:.6f}/{metrics['hmean']:.6f}"


def _export_atomically(
    model: Any, folder: Path, settings: InferenceSettings, onnx: bool,
    check: Callable[[Path], dict[str, Any]] | None = None,
) -> list[str]:  # fmt: skip
    """Write every file into a temporary folder, verify them there (`check` returns the figures or raises), then
    rename each into place: a kill mid-export or a failed check leaves the previous model files intact (never a new
    graph beside old weights), and the settings only arrive with their model."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as staging_dir:
        staging = Path(staging_dir)
        staged = [Path(p) for p in export_inference(model, str(staging / "inference"))]
        if onnx:
            staged.append(convert_to_onnx(staging, staging / ONNX_FILE))
        staged.append(write_settings(staging / SETTINGS_FILE, settings))
        if check is not None:
            figures = check(staging)
            staged.append(staging / VERIFY_FILE)
            staged[-1].write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        final = []
        for path in staged:
            target = folder / path.name
            path.replace(target)
            final.append(str(target))
    return final


def _score(forward: MapFn, cfg: DictConfig, settings: InferenceSettings | None, limit: int | None) -> EvalResult:
    """P/R/H of `forward` over data's val split, its pipeline and post-processing set to `settings` (None: as
    configured)."""
    cfg = copy.deepcopy(cfg)  # changed below
    if settings is not None:
        apply_settings(cfg, settings, "data.val_transforms")
    dataset = build_data(cfg).val_dataset()
    indices = range(min(len(dataset), limit if limit is not None else len(dataset)))
    with Evaluator(instantiate(cfg.postprocess), instantiate(cfg.metric)) as evaluator:
        return evaluator.evaluate({None: forward}, dataset, indices)


def verify_export(layer: Any, folder: Path, cfg: DictConfig) -> dict[str, Any]:
    """Score the export in `folder` (each engine written) with its inference.yml and the dygraph `layer` with the
    validation config on the same val images; return the figures, or raise ExportVerificationError naming the
    settings that differ when the figures differ beyond float noise."""
    if cfg.get("data") is None or cfg.data.get("val") is None:
        raise ValueError("verify=true needs a validation set: data=<set> with a val split")
    from ocrdet.det.deploy import find_exported

    limit = cfg.get("verify_images")
    reference = _score(dygraph_forward(layer), cfg, None, limit)
    figures: dict[str, Any] = {"images": reference.timing.images, "dygraph": reference.metrics}
    paddle_model = find_exported(folder, engine="paddle")
    engines = [paddle_model] + ([ExportedModel("onnx", folder / ONNX_FILE, paddle_model.settings)]
                                if (folder / ONNX_FILE).is_file() else [])  # fmt: skip
    changed = differences(paddle_model.settings, validation_settings(cfg))
    failures = []
    for exported in engines:
        result = _score(exported_forward(exported, threads=cfg.threads), cfg, exported.settings, limit)
        figures[f"exported ({exported.kind})"] = result.metrics
        gap = int(abs(result.counts[None] - reference.counts[None]).max())
        if gap > (0 if changed else NOISE_BOXES):
            failures.append(f"{exported.kind}: {_phr(result.metrics)} vs dygraph {_phr(reference.metrics)} "
                            f"({gap} boxes apart)")  # fmt: skip
    figures["settings_differences"] = changed
    if failures:
        why = (f"{SETTINGS_FILE} differs from the validation config in: {'; '.join(changed)} (recorded vs validated)"
               if changed else "no setting differs: the exported graph computes something else than the model")  # fmt: skip
        raise ExportVerificationError(
            f"the export does not score what the trained model scores on {figures['images']} validation images: "
            f"{'; '.join(failures)}. {why}. Nothing was written (verify=false exports without the check)"
        )
    return figures


def _log_figures(client: Any, run_id: str, folder: Path, figures: dict[str, Any]) -> None:
    """Add the verification figures (`export/paddle_hmean`, ...) and the file to the MLflow run that trained them."""
    for key, values in figures.items():
        if key.startswith("exported"):
            engine = key.split("(")[-1].rstrip(")")
            for name, value in values.items():
                client.log_metric(run_id, f"export/{engine}_{name}", float(value))
    client.log_artifact(run_id, str(folder / VERIFY_FILE), "export")
    log.info("verification figures logged to MLflow run %s", run_id)


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
    try:
        run_on_weights(cfg, EXPORT_RUN_KEYS, run_export)
    except ExportVerificationError as error:
        log.error("%s", error)
        sys.exit(1)


def main() -> None:
    sys.argv = [sys.argv[0], *_translate_output_flag(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
