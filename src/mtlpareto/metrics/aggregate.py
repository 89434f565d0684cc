"""Collect per-run metrics JSON files into one long table (one row per value)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mtlpareto.errors import ConfigError

COLUMNS = ["experiment", "method", "variant", "seed", "preference", "task_index", "split", "task", "metric", "value", "higher_is_better", "primary", "task_order", "source"]


def sharing_label(record: dict) -> str | None:
    """How the run's network shared its layers, when not hard sharing: "MPPS+B" / "MPPS+G"
    (Bernoulli / Gaussian masks, from the epoch log training stored), else None."""
    log = record.get("sharing_log") or []
    mask = log[0].get("mask") if log else None
    return None if mask is None else "MPPS+" + mask[0].upper()


def load_metrics(paths: list[Path]) -> pd.DataFrame:
    """The long frame of every value in the metrics files; each row carries its metric's
    direction and whether it is its task's primary metric (from the record's "tasks")."""
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        directions = record.get("tasks")
        if directions is None:
            raise ConfigError(f"{path} has no task directions (written by an older version): re-run its evaluate job")
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
                            "higher_is_better": bool(directions[task]["higher_is_better"][metric]),
                            "primary": directions[task]["primary"] == metric,
                            "task_order": directions[task]["order"],  # the dataset's task order (JSON keys are sorted)
                            "source": str(path),
                            "sharing": sharing_label(record),
                        }
                    )
    return pd.DataFrame(rows, columns=COLUMNS + ["sharing"])  # sharing: optional in frames built by hand


def selection_scores(val: pd.DataFrame) -> pd.Series:
    """Per grid variant, the score "best on validation" maximises, from each task's primary metric.

    When every task's primary metric is the same metric with the same direction (accuracy for
    all MultiMNIST tasks) the score is its plain mean over tasks and seeds, as in the papers.
    Otherwise units differ (mIoU, depth error): each task's value becomes its signed relative
    difference to that task's mean over the grid, +1 for better (the delta_m normalisation),
    and those are averaged.
    """
    primary = val[val.primary]
    if primary.empty:
        raise ConfigError("no primary-metric values on the validation split to choose a grid point by")
    per = primary.groupby(["variant", "task"]).agg(value=("value", "mean"), metric=("metric", "first"), higher=("higher_is_better", "first")).reset_index()
    sign = per.higher.map({True: 1.0, False: -1.0})
    if per.metric.nunique() == 1 and per.higher.nunique() == 1:
        score = sign * per.value
    else:
        reference = per.groupby("task").value.transform("mean")
        score = sign * (per.value - reference) / reference.abs()
    return score.groupby(per.variant).mean()


def method_summary(df: pd.DataFrame, metric: str, higher_is_better: bool | None = None, split: str = "test") -> pd.DataFrame:
    """One row per (method entry, task): mean and std over seeds of `metric` on `split`.

    - methods run once per seed give their own row;
    - single-task runs (one per task) contribute each task's score from its dedicated model;
    - preference sweeps keep the grid point whose *validation* score is best
      (`selection_scores`: the tasks' primary metrics; never chosen on the test split).

    `higher_is_better` is accepted for callers that pass it; the direction comes from the tasks.
    """
    from mtlpareto.methods import METHODS

    sub = df[df.metric == metric]
    rows = []
    # A method run in several compared experiments (uniform weighting on hard sharing and on
    # MPPS) gives one entry per experiment, labelled with it.
    experiments_of = sub.groupby("method", sort=False).experiment.unique()
    for experiment, method in dict.fromkeys(zip(sub.experiment, sub.method)):
        repeated = len(experiments_of[method]) > 1
        msub = sub[(sub.method == method) & (sub.experiment == experiment)] if repeated else sub[sub.method == method]
        cls = METHODS.get(method)
        sharing = msub.sharing.dropna().unique() if "sharing" in msub else []
        where = f"{sharing[0]}, {experiment}" if len(sharing) else experiment
        label = (cls.label or method) + (f" ({where})" if repeated else "")
        if cls.sweep == "tasks":
            chosen = msub[(msub.split == split) & (msub.task_index.notna())]
            chosen = chosen[[f"task-{t}" == v for t, v in zip(chosen.task, chosen.variant)]]
            variant = "per-task"
        elif cls.sweep == "preferences":
            everything = df[(df.method == method) & (df.experiment == experiment)] if repeated else df[df.method == method]
            val = everything[everything.split == "val"] if (everything.split == "val").any() else everything[everything.split == split]
            variant = selection_scores(val).idxmax()
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
                    "entry_experiment": experiment if repeated else None,  # set when the method is in several experiments
                }
            )
    return pd.DataFrame(rows)
