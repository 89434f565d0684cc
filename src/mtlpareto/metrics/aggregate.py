"""Collect per-run metrics JSON files into one long table (one row per value)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COLUMNS = ["experiment", "method", "variant", "seed", "preference", "task_index", "split", "task", "metric", "value"]


def load_metrics(paths: list[Path]) -> pd.DataFrame:
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        for split, per_task in record["splits"].items():
            for task, metrics in per_task.items():
                for metric, value in metrics.items():
                    rows.append(
                        {
                            "experiment": record["experiment"],
                            "method": record["method"],
                            "variant": record["variant"],
                            "seed": record["seed"],
                            "preference": tuple(record["preference"]) if record.get("preference") else None,
                            "task_index": record.get("task"),
                            "split": split,
                            "task": task,
                            "metric": metric,
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows, columns=COLUMNS)


def method_summary(df: pd.DataFrame, metric: str, higher_is_better: bool = True, split: str = "test") -> pd.DataFrame:
    """One row per (method entry, task): mean and std over seeds of `metric` on `split`.

    - methods run once per seed give their own row;
    - single-task runs (one per task) contribute each task's score from its dedicated model;
    - preference sweeps keep the grid point whose *validation* score, averaged over tasks and
      seeds, is best (never chosen on the test split).
    """
    from mtlpareto.methods import METHODS

    sub = df[df.metric == metric]
    rows = []
    for method in dict.fromkeys(sub.method):
        msub = sub[sub.method == method]
        cls = METHODS.get(method)
        label = cls.label or method
        if cls.sweep == "tasks":
            chosen = msub[(msub.split == split) & (msub.task_index.notna())]
            chosen = chosen[[f"task-{t}" == v for t, v in zip(chosen.task, chosen.variant)]]
            variant = "per-task"
        elif cls.sweep == "preferences":
            val = msub[msub.split == "val"] if (msub.split == "val").any() else msub[msub.split == split]
            score = val.groupby("variant").value.mean()
            variant = score.idxmax() if higher_is_better else score.idxmin()
            chosen = msub[(msub.split == split) & (msub.variant == variant)]
            label = f"{label} (best on val)"
        else:
            chosen = msub[msub.split == split]
            variant = "default"
        for task, group in chosen.groupby("task", sort=False):
            rows.append(
                {
                    "method": method,
                    "label": label,
                    "variant": variant,
                    "task": task,
                    "metric": metric,
                    "split": split,
                    "mean": round(float(group.value.mean()), 4),
                    "std": round(float(group.value.std(ddof=1)), 4),  # sample std; NaN for one seed
                    "n_seeds": int(group.seed.nunique()),
                }
            )
    return pd.DataFrame(rows)
