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


def to_markdown(summary: "pd.DataFrame", title: str, experiment: str | None = None) -> str:
    """Wide Markdown: one row per method entry, one column per task, 'mean ± std'.

    Where results/published.yaml has the paper's number for the same experiment, method,
    task and metric, it stands beside ours in a '(paper)' column.
    """
    from mtlpareto.metrics.reported import published_lookup

    tasks = list(dict.fromkeys(summary.task))
    metric = summary.metric.iloc[0] if len(summary) else ""
    published = published_lookup()
    rows = list(summary.itertuples())
    has_paper = {t for t in tasks if any((experiment, r.method, str(t), r.metric) in published for r in rows)}
    columns = []
    for t in tasks:
        columns.append(f"{t} {metric}")
        if t in has_paper:
            columns.append(f"{t} (paper)")
    lines = [f"### {title}", "", "| Method | " + " | ".join(columns) + " | seeds |", "|" + "---|" * (len(columns) + 2)]
    cited = {}
    for label, group in summary.groupby("label", sort=False):
        cells = []
        by_task = {r.task: r for r in group.itertuples()}
        for t in tasks:
            r = by_task.get(t)
            cells.append(f"{r.mean:.2f} ± {r.std:.2f}" if r is not None else "–")
            if t in has_paper:
                pub = published.get((experiment, r.method, str(t), r.metric)) if r is not None else None
                if pub:
                    cited[pub["citation"]] = None
                cells.append(f"{pub['value']:.2f}" if pub else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {int(group.n_seeds.min())} |")
    if cited:
        lines += ["", "Paper columns (the papers' settings, as in the `paper` profile): " + "; ".join(cited) + "."]
    return "\n".join(lines) + "\n"


def write_table(name: str, df: "pd.DataFrame", experiment: str, title: str, csv_path: Path, md_path: Path) -> "pd.DataFrame":
    summary = TABLES.get(name)(df)
    atomic_write_text(summary.to_csv(index=False), csv_path)
    atomic_write_text(to_markdown(summary, title, experiment), md_path)
    return summary


from mtlpareto.metrics import error_tables  # noqa: E402,F401  (registers per_task_error, average_error)
from mtlpareto.metrics import hypervolume as _hypervolume  # noqa: E402,F401  (registers hypervolume)
