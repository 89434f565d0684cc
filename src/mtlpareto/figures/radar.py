"""Radar charts of per-task test error, in the style of seed 001 Fig. 2 (CelebA, 40 attributes).

One polygon per method (mean error over seeds of the entry ``per_task_error`` reports); lower is
better.  As in the paper, the tasks are split in two charts for legibility: "easy" (left: the half
with the lower error, averaged over methods) and "hard" (right), each sorted by that average so
the charts read the same way for any number of tasks.  Each chart's radius starts at 0 and ends
just above its largest error, so the easy attributes' small errors stay visible.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.figures.common import n_seeds_text
from mtlpareto.figures.style import method_style

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

MIN_AXES = 3  # a radar with fewer spokes is a line, not a polygon
SPLIT_FROM = 8  # with fewer tasks one chart stays legible


def radar_groups(errors: "pd.DataFrame") -> list[tuple[str, list[str]]]:
    """[(title, tasks)]: tasks sorted by error averaged over methods; halves when there are many."""
    order = list(errors.mean(axis=1).sort_values(kind="mergesort").index)  # stable: ties keep task order
    if len(order) < SPLIT_FROM:
        return [("all tasks", order)]
    half = (len(order) + 1) // 2
    return [("easy (lower error)", order[:half]), ("hard (higher error)", order[half:])]


@FIGURES.register("radar")
def radar_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    from mtlpareto.metrics.error_tables import per_task_error_table

    summary = per_task_error_table(df)
    if summary.empty:
        raise ValueError("the radar figure needs test accuracy in the metrics; none found")
    # rows: tasks in first-seen order, columns: method labels in table order
    errors = summary.pivot_table(index="task", columns="label", values="mean", sort=False)
    tasks = list(dict.fromkeys(summary.task))
    errors = errors.loc[tasks, list(dict.fromkeys(summary.label))]
    if len(tasks) < MIN_AXES:
        raise ValueError(f"the radar figure needs at least {MIN_AXES} tasks, got {tasks}")
    groups = radar_groups(errors)
    method_of = dict(zip(summary.label, summary.method))
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, len(groups), figsize=(6.2 * len(groups), 6.4), subplot_kw={"projection": "polar"}, squeeze=False)
    for ax, (name, group) in zip(axes[0], groups):
        angles = np.linspace(0.0, 2.0 * math.pi, len(group), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])  # repeat the first spoke to close the polygon
        for label in errors.columns:
            values = errors.loc[group, label].to_numpy(dtype=float)
            style = method_style(method_of[label])
            n = int(summary[summary.label == label].n_seeds.max())
            ax.plot(closed, np.concatenate([values, values[:1]]), ms=3, lw=1.2, label=f"{label} ({n_seeds_text(n)})", **style.line_kwargs())
        ax.set_xticks(angles)
        ax.set_xticklabels([t.replace("_", " ") for t in group], fontsize=6)
        top = float(np.nanmax(errors.loc[group].to_numpy(dtype=float)))
        ax.set_ylim(0.0, top * 1.1 if top > 0 else 1.0)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(f"{name}: test error [%]", fontsize=9, pad=18)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=True)
    fig.suptitle(f"{title}: per-task test error [%], mean over seeds; lower (nearer the centre) is better", fontsize=10)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 0.95))
    return fig
