"""Tables of an experiment: machine-readable CSV first, Markdown rendered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from typing import TYPE_CHECKING

from mtlpareto.registry import Registry
from mtlpareto.io import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

# A table builder turns the experiment's long metrics frame into a summary frame with
# columns label, task, mean, std (plus any others kept in the CSV).
TABLES: Registry[Callable[["pd.DataFrame"], "pd.DataFrame"]] = Registry("table")


@TABLES.register("accuracy")
def accuracy_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """Seed 001 Table 3: test accuracy [%] per task, mean +- std over seeds."""
    from mtlpareto.metrics.aggregate import method_summary

    return method_summary(df, "accuracy", higher_is_better=True)


def to_markdown(summary: "pd.DataFrame", title: str) -> str:
    """Wide Markdown: one row per method entry, one column per task, 'mean ± std'."""
    tasks = list(dict.fromkeys(summary.task))
    metric = summary.metric.iloc[0] if len(summary) else ""
    header = "| Method | " + " | ".join(f"{t} {metric}" for t in tasks) + " | seeds |"
    lines = [f"### {title}", "", header, "|" + "---|" * (len(tasks) + 2)]
    for label, group in summary.groupby("label", sort=False):
        by_task = {r.task: f"{r.mean:.2f} ± {r.std:.2f}" for r in group.itertuples()}
        seeds = int(group.n_seeds.min())
        lines.append(f"| {label} | " + " | ".join(by_task.get(t, "–") for t in tasks) + f" | {seeds} |")
    return "\n".join(lines) + "\n"


def write_table(name: str, df: "pd.DataFrame", title: str, csv_path: Path, md_path: Path) -> "pd.DataFrame":
    summary = TABLES.get(name)(df)
    atomic_write_text(summary.to_csv(index=False), csv_path)
    atomic_write_text(to_markdown(summary, title), md_path)
    return summary
