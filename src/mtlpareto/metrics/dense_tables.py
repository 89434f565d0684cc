"""Dense-prediction tables: every metric of every task, and delta_m against single-task models.

The `dense` table has one row per method entry (as `method_summary` chooses it: its runs, the
single-task models, or a grid point picked on validation) and one column per (task, metric)
except the training losses, then delta_m [%] both ways the field reports it (MTAN / Auto-Lambda
/ MPPS: one primary metric per task; Nash-MTL / FAMO: every metric), each seed of a method
against the single-task models' mean.  Directions come from the tasks (metrics.json "tasks").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtlpareto.errors import ConfigError
from mtlpareto.metrics.delta_m import delta_m
from mtlpareto.metrics.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd

BASELINE = "single_task"
DELTA_M_COLUMNS = {"per_task": "Δm, one metric per task [%]", "every_metric": "Δm, every metric [%]"}


def _metric_keys(df: "pd.DataFrame") -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[tuple[str, str], bool]]:
    shown = df[df.metric != "loss"][["task", "task_order", "metric", "higher_is_better", "primary"]].drop_duplicates(["task", "metric"])
    # Columns in the tasks' order (the dataset's), each task's primary metric first.
    shown = shown.sort_values(["task_order", "primary"], ascending=[True, False], kind="stable")
    every = [(r.task, r.metric) for r in shown.itertuples()]
    primary = [(r.task, r.metric) for r in shown.itertuples() if r.primary]
    return every, primary, {(r.task, r.metric): bool(r.higher_is_better) for r in shown.itertuples()}


@TABLES.register("dense")
def dense_table(df: "pd.DataFrame", split: str = "test") -> "pd.DataFrame":
    import pandas as pd

    from mtlpareto.metrics.aggregate import method_summary

    every, primary, higher = _metric_keys(df)
    rows = []
    chosen: dict[tuple[str | None, str], tuple[str, str]] = {}  # (experiment or None, method) -> (label, variant)
    summaries = {metric: method_summary(df, metric, split=split) for metric in dict.fromkeys(m for _, m in every)}
    for task, metric in every:
        for r in summaries[metric][summaries[metric].task == task].itertuples():
            experiment = r.entry_experiment if isinstance(r.entry_experiment, str) else None  # NaN: a method of one experiment
            chosen[(experiment, r.method)] = (r.label, r.variant)
            rows.append({"method": r.method, "label": r.label, "variant": r.variant, "task": r.task, "column": f"{r.task} {metric}", "metric": metric,
                         "higher_is_better": higher[(r.task, metric)], "mean": r.mean, "std": r.std, "n_seeds": r.n_seeds, "entry_experiment": experiment})
    test = df[df.split == split]
    if any(method == BASELINE for _, method in chosen):
        base = test[(test.method == BASELINE) & (test.variant == "task-" + test.task)]
        baseline = base.groupby(["task", "metric"]).value.mean().to_dict()
        for (experiment, method), (label, variant) in chosen.items():
            if method == BASELINE:
                continue
            own = test[(test.method == method) & (test.variant == variant) & ((test.experiment == experiment) if experiment is not None else True)]
            for name, keys in (("per_task", primary), ("every_metric", every)):
                per_seed = []
                for _, seed_rows in own.groupby("seed"):
                    scores = {(r.task, r.metric): r.value for r in seed_rows.itertuples() if (r.task, r.metric) in keys}
                    if len(scores) != len(keys):
                        raise ConfigError(f"dense table: {method} seed {int(seed_rows.seed.iloc[0])} lacks some of {keys}")
                    per_seed.append(delta_m(scores, baseline, higher))
                series = pd.Series(per_seed, dtype=float)
                rows.append({"method": method, "label": label, "variant": variant, "task": "all", "column": DELTA_M_COLUMNS[name], "metric": f"delta_m_{name}",
                             "higher_is_better": True, "mean": round(float(series.mean()), 4), "std": round(float(series.std(ddof=1)), 4), "n_seeds": len(per_seed), "entry_experiment": experiment})
    return pd.DataFrame(rows)
