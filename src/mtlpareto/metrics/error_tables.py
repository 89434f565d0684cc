"""Error tables of the many-task experiments (seed 001, Sener & Koltun 2018, CelebA).

* ``per_task_error`` - Table 5: test error [%] = 100 - accuracy, per task, mean ± std over seeds;
* ``average_error`` - Table 1: the mean error over the tasks (one row per method, task "mean"),
  mean ± std over seeds.

The average is taken per seed first (mean over the tasks of one seed's runs), then mean and
sample std (ddof=1, as every table here; NaN for one seed) over seeds: the std is the spread of the average
itself, not the mean of the per-task spreads.  Which run stands for a method follows
``method_summary``: its own runs, one dedicated model per task for single-task baselines, and
for preference sweeps the grid point chosen on the validation error (never on the test split).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtlpareto.metrics.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd


def error_frame(df: "pd.DataFrame") -> "pd.DataFrame":
    """The accuracy rows of a long metrics frame as error rows: metric 'error', value 100 - accuracy."""
    err = df[df.metric == "accuracy"].copy()
    err["metric"] = "error"
    err["value"] = 100.0 - err["value"]
    err["higher_is_better"] = False
    return err


@TABLES.register("per_task_error")
def per_task_error_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """Seed 001 Table 5: test error [%] per task (attribute), mean ± std over seeds."""
    from mtlpareto.metrics.aggregate import method_summary

    return method_summary(error_frame(df), "error", higher_is_better=False)


@TABLES.register("average_error")
def average_error_table(df: "pd.DataFrame", split: str = "test") -> "pd.DataFrame":
    """Seed 001 Table 1: mean test error [%] over all tasks, mean ± std over seeds."""
    import pandas as pd

    from mtlpareto.metrics.aggregate import method_summary

    err = error_frame(df)
    # method_summary picks each method's entry (variant); reuse its choice, then average per seed.
    chosen = method_summary(err, "error", higher_is_better=False, split=split)
    columns = ["method", "label", "variant", "task", "metric", "split", "mean", "std", "n_seeds", "n_tasks"]
    rows = []
    for method, entry in chosen.groupby("method", sort=False):
        variant = entry.variant.iloc[0]
        sub = err[(err.method == method) & (err.split == split)]
        if variant == "per-task":
            sub = sub[[f"task-{t}" == v for t, v in zip(sub.task, sub.variant)]]
        else:
            sub = sub[sub.variant == variant]
        per_seed = sub.groupby("seed").value.mean()
        rows.append(
            {
                "method": method,
                "label": entry.label.iloc[0],
                "variant": variant,
                # "mean", the key results/published.yaml gives Table 1, so the paper's value joins.
                "task": "mean",
                "metric": "error",
                "split": split,
                "mean": round(float(per_seed.mean()), 4),
                "std": round(float(per_seed.std(ddof=1)), 4),  # NaN for one seed
                "n_seeds": int(per_seed.size),
                "n_tasks": int(sub.task.nunique()),
            }
        )
    return pd.DataFrame(rows, columns=columns)
