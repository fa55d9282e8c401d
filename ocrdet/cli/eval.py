"""`ocrdet-eval`: evaluate weights on the configured data set's validation split.

`weights=` takes a PaddleOCR-layout `.pdparams`, a checkpoint prefix, or a run directory (its best checkpoint); or an
export (an `ocrdet-export` dir, run by paddle.inference, or its `model.onnx`, run by onnxruntime), evaluated with the
resize, normalisation and post-processing of its `inference.yml` except keys given on the command line.
`engine=predictor` (the default on CPU) exports each evaluated model in-process and runs it in a oneDNN
`paddle.inference` predictor while the next image loads in a thread, DBPostProcess and the metric inline or in
`eval_workers` processes (ocrdet.det.evaluator):
the same P/R/H as `engine=dygraph` (the Trainer's validation loop, also sharded over `trainer.devices` ranks) to
the last box, several times faster on CPU.
The last line printed is `precision=<p> recall=<r> hmean=<h>`.

`search=true` scores a grid of post-processing settings instead (`search_grid`, ocrdet.postprocess.search): one line
per setting, `best: <setting> precision=<p> recall=<r> hmean=<h>` last, the best saved for the run behind
`weights=`. A run's saved search result is applied to its evaluations (keys set on the command line win).
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Collection

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ocrdet.utils.setup import setup_cli

setup_cli()

import paddle  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.build import build_data, build_task, build_trainer  # noqa: E402
from ocrdet.cli.config import CONF_DIR, check_targets, check_values, run_on_weights  # noqa: E402
from ocrdet.det.deploy import ExportedModel, apply_settings, command_line_keys, exported_forward, find_exported  # noqa: E402
from ocrdet.engine import checkpoint_io  # noqa: E402
from ocrdet.engine.module import TrainModule  # noqa: E402
from ocrdet.engine.trainer import limit_batches  # noqa: E402
from ocrdet.models.weights import load_for_inference  # noqa: E402
from ocrdet.postprocess import search as pp_search  # noqa: E402
from ocrdet.cli.predict import default_submodel  # noqa: E402

log = logging.getLogger("ocrdet.eval")
ENGINES = ("predictor", "dygraph")
# Taken from the run behind `weights=` (ocrdet.cli.config.adopt_run_config): its model, post-processing and data.
EVAL_RUN_KEYS = ("backbone", "neck", "head", "distill", "members", "model", "loss", "task", "postprocess", "data")


def run_eval(cfg: DictConfig, explicit: Collection[str] | None = None) -> dict[str, float]:
    """P/R/H of `cfg.weights` on the val split. `explicit`: the override keys given on the command line, which an
    export's inference.yml does not replace (default: the running Hydra job's)."""
    check_targets(cfg)
    check_values(cfg)
    engine = cfg.get("engine", "dygraph")
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}; choose one of {list(ENGINES)}")
    if cfg.data.get("val") is None:
        raise ValueError("the data config has no `val` split to evaluate")
    exported = find_exported(cfg.weights, default_submodel(cfg))
    if exported is not None:
        return evaluate_export(exported, cfg, command_line_keys() if explicit is None else explicit)
    task = _load_task(cfg)
    if engine == "predictor":
        reason = _predictor_unavailable(cfg)
        if reason is None:
            return evaluate_with_predictor(task, cfg)
        log.warning("engine=predictor %s: evaluating with engine=dygraph", reason)
    trainer = build_trainer(cfg, logger=None)
    metrics = trainer.validate(task, build_data(cfg).val_dataloader())
    return {k.split("/", 1)[-1]: v for k, v in metrics.items()}


def _load_task(cfg: DictConfig) -> TrainModule:
    """The task with `cfg.weights` loaded, after checking there is a val split to evaluate."""
    if cfg.data.get("val") is None:
        raise ValueError("the data config has no `val` split to evaluate")
    task = build_task(cfg, with_optimizer=False)
    weights = checkpoint_io.resolve_weights(cfg.weights)
    report = load_for_inference(task.model, str(weights), prefix=cfg.get("weights_prefix") or "")
    log.info("loaded %s: %d tensors matched, %d unexpected", weights, len(report.matched), len(report.unexpected))
    return task


def run_search(cfg: DictConfig) -> pp_search.SearchResult:
    """Compute the val split's maps once with the first evaluated (sub-)model, score `cfg.search_grid` on them,
    print each setting and the best, and save the best for the run behind `cfg.weights` (else this job's dir)."""
    task = _load_task(cfg)
    name = task.eval_models[0]
    model = task.model if name is None else task.model.submodel(name)
    dataset = build_data(cfg).val_dataset()
    indices = _val_indices(cfg, len(dataset))
    grid = instantiate(cfg.search_grid)
    with tempfile.TemporaryDirectory(prefix="ocrdet-search-") as tmp:
        if cfg.get("engine", "dygraph") == "predictor" and _predictor_unavailable(cfg) is None:
            from ocrdet.det.graph import export_inference, load_predictor
            from ocrdet.det.evaluator import predictor_forward

            export_inference(model, os.path.join(tmp, "inference"))
            forward = predictor_forward(load_predictor(tmp, threads=_threads(cfg)))
        else:
            from ocrdet.det.evaluator import dygraph_forward

            forward = dygraph_forward(model)
        log.info("computing the probability maps of %d val images", len(indices))
        images = pp_search.cache_maps(forward, dataset, indices)
    log.info("scoring %d post-processing settings", len(grid.settings()))
    metric = next(iter(task.metrics.values()))
    results = pp_search.search(images, task.postprocess, grid, metric, on_result=lambda r: print(r.line(), flush=True))
    split = cfg.data.val.get("split", "val")
    about = f"{len(images)} images of the val split ({split}, data.val_split={cfg.data.get('val_split', 0)})"
    folder = pp_search.run_dir_of(cfg.weights) or Path(cfg.paths.output_dir)
    saved = pp_search.save_best(folder, results, about)
    log.info("best setting saved to %s (every setting in %s)", saved, saved.with_name(pp_search.RESULTS_FILE))
    return pp_search.best(results)


def _predictor_unavailable(cfg: DictConfig) -> str | None:
    """Why the predictor engine cannot run this config (None when it can)."""
    if cfg.trainer.devices != 1 or cfg.trainer.get("nnodes", 1) != 1:
        return "runs in one process (the dygraph loop shards over ranks)"
    if cfg.trainer.accelerator == "gpu" or (cfg.trainer.accelerator == "auto" and paddle.is_compiled_with_cuda()):
        return "is the CPU (oneDNN) predictor"
    return None


def evaluate_with_predictor(task: TrainModule, cfg: DictConfig) -> dict[str, float]:
    """Export every evaluated (sub-)model into a temporary folder, evaluate it with `ocrdet.det.evaluator`'s
    `evaluate_exported` (oneDNN predictor) over the val split, and name the metrics as the Trainer does
    (`precision`, `Student2_hmean`, ...)."""
    from ocrdet.det.graph import export_inference
    from ocrdet.det.evaluator import evaluate_exported

    dataset = build_data(cfg).val_dataset()
    indices = _val_indices(cfg, len(dataset))
    threads = _threads(cfg)
    workers = cfg.get("eval_workers", 0)
    metric = next(iter(task.metrics.values()))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ocrdet-eval-") as tmp:
        for i, name in enumerate(task.eval_models):
            folder = os.path.join(tmp, str(i))
            model = task.model if name is None else task.model.submodel(name)
            export_inference(model, os.path.join(folder, "inference"))
            result = evaluate_exported(folder, dataset, task.postprocess, metric, threads, workers, indices)
            timing = result.timing
            log.info(
                "%s: %d images in %.1f s (%.2f images/s; forward %.0f ms/image, post-process+metric %.0f ms/image "
                "in %d worker(s))", name or "model", timing.images, timing.total, timing.images_per_s,
                1000 * timing.forward / max(timing.images, 1), 1000 * timing.post / max(timing.images, 1), workers,
            )
            prefix = "" if i == 0 else f"{name}_"
            results.update({f"{prefix}{k}": float(v) for k, v in result.metrics.items()})
    return results


def _val_indices(cfg: DictConfig, size: int) -> range:
    """The val images the Trainer's loop would score (`trainer.limit_val_batches`)."""
    batch_size = cfg.data.eval_batch_size
    batches = limit_batches(math.ceil(size / batch_size), cfg.trainer.get("limit_val_batches"))
    return range(min(size, batches * batch_size))


def _threads(cfg: DictConfig) -> int:
    return int(cfg.trainer.get("cpu_threads") or os.cpu_count() or 1)


def evaluate_export(exported: ExportedModel, cfg: DictConfig, explicit: Collection[str] = ()) -> dict[str, float]:
    """Evaluate an exported model (paddle.inference or onnxruntime) over the val split, its pipeline and
    post-processing set from the export's inference.yml except the `explicit` keys."""
    from ocrdet.det.evaluator import PooledEvaluator

    if exported.settings is not None:
        changed = apply_settings(cfg, exported.settings, "data.val_transforms", explicit=explicit)
        log.info("settings from %s: %s", exported.path, ", ".join(changed) or "as configured")
    dataset = build_data(cfg).val_dataset()
    forward = exported_forward(exported, threads=_threads(cfg))
    with PooledEvaluator(instantiate(cfg.postprocess), instantiate(cfg.metric), cfg.get("eval_workers", 0)) as pool:
        result = pool.evaluate(forward, dataset, _val_indices(cfg, len(dataset)))
    log.info("%s (%s): %d images in %.1f s", exported.path, exported.kind, result.timing.images, result.timing.total)
    return result.metrics


@hydra.main(config_path=str(CONF_DIR), config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float:
    return run_on_weights(cfg, EVAL_RUN_KEYS, evaluate_or_search)


def evaluate_or_search(cfg: DictConfig) -> float:
    """`search=true`: the post-processing search on the val split; else one evaluation. Returns the hmean."""
    user_overrides = [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
    pp_search.apply_saved_postprocess(cfg, user_overrides)
    if cfg.get("search"):
        chosen = run_search(cfg)
        print(f"best: {chosen.line()}")
        return chosen.metrics["hmean"]
    metrics = run_eval(cfg)
    print(f"precision={metrics['precision']:.6f} recall={metrics['recall']:.6f} hmean={metrics['hmean']:.6f}")
    return metrics["hmean"]


if __name__ == "__main__":
    main()
