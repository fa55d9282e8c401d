"""`ocrdet-compare`: a table of an MLflow experiment's training runs, best first.

    ocrdet-compare [-e train] [--tracking-uri sqlite:///outputs/mlflow.db] [--sweep DIR | --parent RUN_ID]
                   [--metric val/hmean] [--mode max]

Columns: run id, name, status, the params whose values differ between the listed runs, and the best value of the
metric over each run's history. The resolved config repeats a value wherever it is interpolated (`neck.*`,
`model.neck.*`, `task.model.neck.*`): such copies are shown once, under the shortest key. Per-run paths (values
containing the run's own `paths.output_dir`) and `paths.*`/`logger.*` params never count as differences.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ocrdet.engine.loggers.sweep import PARENT_TAG, ROLE_TAG, SWEEP_DIR_TAG

DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"  # the training default (paths.output_root=outputs)
IGNORED_PREFIXES = ("paths.", "logger.", "hydra.")
MISSING = "-"
RUN_DIR = "<run dir>"


@dataclass
class RunRow:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    best: float | None


@dataclass
class Comparison:
    metric: str
    diff_keys: list[str]
    rows: list[RunRow]


def _normalised(params: dict[str, str]) -> dict[str, str]:
    """Params with the run's own output dir replaced by a placeholder, so per-run paths compare equal."""
    run_dir = params.get("paths.output_dir")
    if not run_dir:
        return dict(params)
    return {k: v.replace(run_dir, RUN_DIR) for k, v in params.items()}


def differing_params(params: Sequence[dict[str, str]]) -> list[str]:
    """Keys whose values differ between the runs (a key a run lacks counts as `-`), interpolated copies collapsed
    to their shortest key, in key order."""
    runs = [_normalised(p) for p in params]
    keys = sorted({k for p in runs for k in p if not k.startswith(IGNORED_PREFIXES)})
    by_values: dict[tuple[str, ...], str] = {}
    for key in keys:
        values = tuple(p.get(key, MISSING) for p in runs)
        if len(set(values)) < 2:
            continue
        kept = by_values.get(values)
        if kept is None or (len(key), key) < (len(kept), kept):
            by_values[values] = key
    return sorted(by_values.values())


def best_value(history: Sequence[float], mode: str) -> float | None:
    if not history:
        return None
    return max(history) if mode == "max" else min(history)


def compare(
    tracking_uri: str,
    experiment: str,
    metric: str = "val/hmean",
    mode: str = "max",
    parent: str | None = None,
    sweep_dir: str | None = None,
) -> Comparison:
    """The runs of `experiment` (optionally only the children of a parent run or of a sweep dir's parent), sorted
    by their best `metric` (descending for mode=max; runs without it last). Sweep parent runs are left out."""
    from ocrdet.engine.loggers.mlflow import mlflow_client

    client = mlflow_client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise SystemExit(f"no experiment {experiment!r} in {tracking_uri}; experiments: {names}")
    filters = []
    if parent:
        filters.append(f"tags.`{PARENT_TAG}` = '{parent}'")
    if sweep_dir:
        filters.append(f"tags.`{SWEEP_DIR_TAG}` = '{Path(sweep_dir).resolve()}'")
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], " and ".join(filters), max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            break
    runs = [r for r in runs if r.data.tags.get(ROLE_TAG) != "sweep"]
    rows = [
        RunRow(
            run_id=r.info.run_id,
            name=r.info.run_name or "",
            status=r.info.status,
            params=dict(r.data.params),
            best=best_value([m.value for m in client.get_metric_history(r.info.run_id, metric)], mode),
        )
        for r in runs
    ]
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda row: (row.best is None, sign * row.best if row.best is not None else 0.0, row.name))
    return Comparison(metric=metric, diff_keys=differing_params([row.params for row in rows]), rows=rows)


def _cell(value: Any, width: int = 48) -> str:
    text = str(value)
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def format_table(comparison: Comparison) -> str:
    """Plain aligned columns, one header line, one line per run."""
    headers = ["run", "name", "status", *comparison.diff_keys, f"best {comparison.metric}"]
    lines = [
        [
            row.run_id[:8],
            row.name,
            row.status,
            *(_normalised(row.params).get(k, MISSING) for k in comparison.diff_keys),
            f"{row.best:.6f}" if row.best is not None else MISSING,
        ]
        for row in comparison.rows
    ]
    cells = [[_cell(c) for c in line] for line in [headers, *lines]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ocrdet-compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("-e", "--experiment", default="train", help="MLflow experiment (the task_name; default: train)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help=f"default: {DEFAULT_TRACKING_URI}")
    parser.add_argument("--metric", default="val/hmean", help="the metric to rank by (default: val/hmean)")
    parser.add_argument("--mode", choices=("max", "min"), default="max", help="best = largest (max) or smallest")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--parent", help="only the children of this parent run id")
    scope.add_argument("--sweep", help="only the jobs of this --multirun sweep dir")
    args = parser.parse_args(argv)
    from ocrdet.utils.setup import quiet_warnings

    quiet_warnings()
    comparison = compare(args.tracking_uri, args.experiment, args.metric, args.mode, args.parent, args.sweep)
    if not comparison.rows:
        print(f"no runs in experiment {args.experiment!r}" + (" for that sweep" if args.parent or args.sweep else ""))
        return
    print(format_table(comparison))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
