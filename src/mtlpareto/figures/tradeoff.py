"""Two-task accuracy profile in the style of Sener & Koltun 2018, Fig. 3 (left vs right test accuracy).

Panels: (a) every method, each seed a faint point and the mean emphasised, preference sweeps
as joined grid points labelled with what their preference means; (b) a zoom on the crowded
best corner when it holds most methods in a small part of (a); (c) the paper's published
points (results/published.yaml) on their own axes, since the paper's settings (full MNIST,
100 epochs) put them far from a quick profile's.  One legend outside the data, every method
once, with its registry style (figures.style).
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.figures.common import (
    better_arrow, draw_entries, legend_handle, method_label, n_seeds_text, preference_note,
    published_points, sweep_of, two_task_entries, zoom_box,
)
from mtlpareto.figures.style import method_style

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

UNITS = {"accuracy": "[%]", "error": "[%]", "loss": "(cross-entropy)"}
HIGHER_IS_BETTER = {"accuracy": True, "error": False, "loss": False}


def axis_label(task: str, metric: str) -> str:
    return f"{task} task: test {metric} {UNITS.get(metric, '')}".strip()


@FIGURES.register("tradeoff")
def tradeoff_figure(df: "pd.DataFrame", title: str, metric: str = "accuracy") -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    tasks = list(dict.fromkeys(df.task))
    if len(tasks) != 2:
        raise ValueError(f"the tradeoff figure needs exactly two tasks, got {tasks}")
    higher = HIGHER_IS_BETTER.get(metric, True)
    entries = two_task_entries(df, tasks, metric)
    if not entries:
        raise ValueError(f"the tradeoff figure found no test {metric} of both tasks")
    experiment = str(df.experiment.iloc[0])
    published = published_points(experiment, tasks, metric)
    means = np.array([e.mean for es in entries.values() for e in es])
    box = zoom_box(means, higher)

    sns.set_theme(style="whitegrid", context="paper")
    panels = ["all"] + (["zoom"] if box else []) + (["paper"] if published else [])
    widths = {"all": 1.0, "zoom": 1.0, "paper": 0.75}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * sum(widths[p] for p in panels) + 0.4, 4.9),
                             gridspec_kw={"width_ratios": [widths[p] for p in panels]}, squeeze=False)
    ax_by = dict(zip(panels, axes[0]))

    handles = []
    for method, es in entries.items():
        n = max(len(e.seeds) for e in es)
        what = {"preferences": f"{len(es)}-point grid, ", "tasks": "one model per task, "}.get(sweep_of(method), "")
        label = f"{method_label(method)} ({what}{n_seeds_text(n)})"
        for name in ("all", "zoom"):
            if name in ax_by:
                draw_entries(ax_by[name], method, es, label=None)
        handles.append(legend_handle(method, label))

    ax = ax_by["all"]
    ax.set_title("(a) all methods", fontsize=9, loc="left")
    if box:
        x0, x1, y0, y1 = box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.9, ec="0.35", zorder=6))
        zoom = ax_by["zoom"]
        zoom.set_xlim(x0, x1)
        zoom.set_ylim(y0, y1)
        zoom.set_title("(b) zoom: dashed box of (a)", fontsize=9, loc="left")
    if published:
        pax = ax_by["paper"]
        for method, (point, _) in published.items():
            style = method_style(method)
            pax.scatter([point[0]], [point[1]], s=70, marker=style.marker, color=style.color, edgecolors="black", linewidths=0.6, zorder=4)
            if method not in entries:
                handles.append(legend_handle(method, f"{method_label(method)} (paper only)"))
        pts = np.array([p for p, _ in published.values()])
        pad = np.maximum(0.12 * (pts.max(0) - pts.min(0)), 0.15)
        pax.set_xlim(pts[:, 0].min() - pad[0], pts[:, 0].max() + pad[0])
        pax.set_ylim(pts[:, 1].min() - pad[1], pts[:, 1].max() + pad[1])
        citations = dict.fromkeys(c for _, c in published.values())
        letter = "(c)" if box else "(b)"
        pax.set_title(f"{letter} published: " + "; ".join(citations), fontsize=8, loc="left", pad=14)
    for name, a in ax_by.items():
        a.set_xlabel(axis_label(tasks[0], metric))
        a.set_ylabel(axis_label(tasks[1], metric))
        better_arrow(a, higher)
    fig.suptitle(f"{title}: test {metric} of the two tasks; faint: single seeds, large: mean over seeds", fontsize=9.5)
    # The preference note heads the legend: both sit below the panels, off the data.
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=4, fontsize=7.5, frameon=False,
               title=textwrap.fill(preference_note(list(entries)), 160) or None, title_fontsize=7.5)
    fig.tight_layout()
    return fig
