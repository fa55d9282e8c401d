"""`ocrdet-eval`: evaluate weights on the configured data set's validation split.

`weights=` takes a PaddleOCR-layout `.pdparams`, a checkpoint prefix, or a run directory (its best checkpoint); or an
export (an `ocrdet-export` dir, run by paddle.inference, or its `model.onnx`, run by onnxruntime), evaluated with the
resize, normalisation and post-processing of its `inference.yml` except keys given on the command line.
Trained weights run with `engine=predictor` (the default; CPU only: the weights exported once in-process into a oneDNN
`paddle.inference` predictor, ~5x faster on CPU) or `engine=dygraph` (the model itself): the same P/R/H to the last
box. Either way the images go through `ocrdet.det.evaluator.Evaluator`, the evaluator the Trainer's validation runs:
the next image loads in a thread, DBPostProcess and the metric run inline or in `eval_workers` processes.
The last line printed is `precision=<p> recall=<r> hmean=<h>`.

`search=true` scores a grid of post-processing settings instead (`search_grid`, ocrdet.postprocess.search): one line
per setting, `best: <setting> precision=<p> recall=<r> hmean=<h>` last, the best saved for the run behind
`weights=`. A run's saved search result is applied to its evaluations (keys set on the command line win).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Collection, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ocrdet.utils.setup import setup_cli

setup_cli()

import paddle  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from ocrdet.cli.build import build_data  # noqa: E402
from ocrdet.cli.config import CONF_DIR, check_targets, check_values, run_on_weights  # noqa: E402
from ocrdet.cli.predict import default_submodel  # noqa: E402
from ocrdet.det.deploy import apply_settings, command_line_keys, exported_forward, find_exported  # noqa: E402
from ocrdet.det.evaluator import FORWARDS, Evaluator, MapFn, model_forwards, on_cpu  # noqa: E402
from ocrdet.engine.accelerator import setup_cpu_process  # noqa: E402
from ocrdet.engine.trainer import limit_batches  # noqa: E402
from ocrdet.models.weights import load_for_inference, resolve_weights  # noqa: E402
from ocrdet.postprocess import search as pp_search  # noqa: E402

log = logging.getLogger("ocrdet.eval")
# Taken from the run behind `weights=` (ocrdet.cli.config.adopt_run_config): its model, post-processing and data.
EVAL_RUN_KEYS = ("backbone", "neck", "head", "distill", "members", "model", "loss", "task", "postprocess", "data")
PROGRESS_EVERY = 50  # images between progress lines (the dygraph forward takes ~1 s an image on 2 cores)


def run_eval(cfg: DictConfig, explicit: Collection[str] | None = None) -> dict[str, float]:
    """P/R/H of `cfg.weights` on the val split, named as the Trainer names them (`hmean`, `Student2_hmean`, ...).
    `explicit`: the override keys given on the command line, which an export's inference.yml does not replace
    (default: the running Hydra job's)."""
    forwards = _forwards(cfg, command_line_keys() if explicit is None else explicit)
    dataset = build_data(cfg).val_dataset()  # after _forwards: an export's inference.yml sets the val pipeline
    workers = int(cfg.get("eval_workers", 0))
    with Evaluator(instantiate(cfg.postprocess), instantiate(cfg.metric), workers) as evaluator:
        result = evaluator.evaluate(forwards, dataset, _val_indices(cfg, len(dataset)), PROGRESS_EVERY)
    log.info("%s", result.timing.line(workers))
    return result.metrics


def run_search(cfg: DictConfig, explicit: Collection[str] | None = None) -> pp_search.SearchResult:
    """Compute the val split's maps once with the first evaluated (sub-)model, score `cfg.search_grid` on them,
    print each setting and the best, and save the best for the run behind `cfg.weights` (else this job's dir)."""
    (forward,) = _forwards(cfg, command_line_keys() if explicit is None else explicit, main_only=True).values()
    dataset = build_data(cfg).val_dataset()
    indices = _val_indices(cfg, len(dataset))
    grid = instantiate(cfg.search_grid)
    log.info("computing the probability maps of %d val images", len(indices))
    images = pp_search.cache_maps(forward, dataset, indices)
    log.info("scoring %d post-processing settings", len(grid.settings()))
    postprocess, metric = instantiate(cfg.postprocess), instantiate(cfg.metric)
    results = pp_search.search(images, postprocess, grid, metric, on_result=lambda r: print(r.line(), flush=True))
    split = cfg.data.val.get("split", "val")
    about = f"{len(images)} images of the val split ({split}, data.val_split={cfg.data.get('val_split', 0)})"
    folder = pp_search.run_dir_of(cfg.weights) or Path(cfg.paths.output_dir)
    saved = pp_search.save_best(folder, results, about)
    log.info("best setting saved to %s (every setting in %s)", saved, saved.with_name(pp_search.RESULTS_FILE))
    return pp_search.best(results)


def _forwards(cfg: DictConfig, explicit: Collection[str], main_only: bool = False) -> dict[Optional[str], MapFn]:
    """The evaluated models of `cfg.weights` as forwards, the first the main one: an export's engine (its
    inference.yml applied to `cfg`, except the `explicit` keys), or each evaluated (sub-)model of the trained weights
    (only the first with `main_only`) run as `cfg.engine` says."""
    check_targets(cfg)
    check_values(cfg)
    if cfg.get("engine") not in FORWARDS:
        raise ValueError(f"engine={cfg.get('engine')!r}; choose one of {list(FORWARDS)}")
    if cfg.data.get("val") is None:
        raise ValueError("the data config has no `val` split to evaluate")
    exported = find_exported(cfg.weights, default_submodel(cfg))
    if exported is not None:
        if exported.settings is not None:
            changed = apply_settings(cfg, exported.settings, "data.val_transforms", explicit=explicit)
            log.info("settings from %s: %s", exported.path, ", ".join(changed) or "as configured")
        log.info("exported model %s (%s)", exported.path, exported.kind)
        return {None: exported_forward(exported, threads=_threads(cfg))}
    _select_device(cfg)
    model = instantiate(cfg.model)
    weights = resolve_weights(cfg.weights)
    report = load_for_inference(model, str(weights), prefix=cfg.get("weights_prefix") or "")
    log.info("loaded %s: %d tensors matched, %d unexpected", weights, len(report.matched), len(report.unexpected))
    names = OmegaConf.select(cfg, "task.eval_models", default=None) or [None]  # the task's: what validation scores
    names = names[:1] if main_only else names
    models = {name: model if name is None else model.submodel(name) for name in names}
    if cfg.engine == "predictor" and not on_cpu():
        log.warning("engine=predictor is the CPU (oneDNN) predictor: evaluating with engine=dygraph")
    return model_forwards(models, cfg.engine, _threads(cfg))


def _select_device(cfg: DictConfig) -> None:
    """`trainer.accelerator`: cpu or gpu, else Paddle's default device (a GPU when it was built with CUDA and sees
    one); on the CPU the dygraph forward gets `trainer.cpu_threads` threads, `trainer.cpu_onednn` and
    `trainer.cpu_reuse_memory`, as in fit."""
    accelerator = cfg.trainer.get("accelerator", "auto")
    if accelerator != "auto":
        paddle.set_device(accelerator)
    if on_cpu():
        paddle.set_flags({"FLAGS_use_mkldnn": bool(cfg.trainer.get("cpu_onednn", True))})
        setup_cpu_process(_threads(cfg), bool(cfg.trainer.get("cpu_reuse_memory", True)))


def _val_indices(cfg: DictConfig, size: int) -> range:
    """The val images the Trainer's loop would score (`trainer.limit_val_batches`)."""
    batch_size = cfg.data.eval_batch_size
    batches = limit_batches(math.ceil(size / batch_size), cfg.trainer.get("limit_val_batches"))
    return range(min(size, batches * batch_size))


def _threads(cfg: DictConfig) -> int:
    return int(cfg.trainer.get("cpu_threads") or os.cpu_count() or 1)


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
