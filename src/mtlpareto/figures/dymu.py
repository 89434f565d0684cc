"""DYMU's figures (Raychaudhuri et al. 2022): controllability, cost vs budget, and chosen trees.

Each reads the `dymu` block of the runs' metrics.json (training/dymu.py `evaluate_dymu`):
the test losses, parameters, FLOPs and tree of every evaluated (preference, budget).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.errors import ConfigError
from mtlpareto.figures import FIGURES, setup_matplotlib

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def dymu_records(df: "pd.DataFrame") -> list[dict]:
    from mtlpareto.metrics.hypervolume import run_records

    records = [r for r in run_records(df) if "dymu" in r]
    if not records:
        raise ConfigError("no DYMU run in this experiment's metrics (method dymu); the DYMU figures need one")
    return records


def _task_names(record: dict) -> list[str]:
    return sorted(record["tasks"], key=lambda t: record["tasks"][t]["order"])


@FIGURES.register("dymu_controllability")
def dymu_controllability_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    """Per task: its test loss as its preference weight grows (the others share the rest), one line per budget."""
    setup_matplotlib()
    import matplotlib.pyplot as plt

    record = dymu_records(df)[0]
    names = _task_names(record)
    curve = record["dymu"]["curve"]
    budgets = sorted({p["budget"] for p in curve})
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.0), squeeze=False)
    colours = plt.cm.viridis(np.linspace(0.0, 0.85, len(budgets)))
    for ax, name in zip(axes[0], names):
        for budget, colour in zip(budgets, colours):
            points = sorted((p["weight"], p["losses"][name]) for p in curve if p["task"] == name and p["budget"] == budget)
            ax.plot([w for w, _ in points], [v for _, v in points], "o-", color=colour, label=f"c = {budget:g}")
        ax.set_xlabel(f"preference r_{name}")
        ax.set_ylabel(f"{name} test loss")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}: DYMU controllability (lower is better)", fontsize=10)
    fig.tight_layout()
    return fig


@FIGURES.register("dymu_cost")
def dymu_cost_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    """Parameters and FLOPs of the chosen trees vs the budget term c (mean and range over the preferences)."""
    setup_matplotlib()
    import matplotlib.pyplot as plt

    record = dymu_records(df)[0]
    block = record["dymu"]
    curve = block["curve"]
    budgets = sorted({p["budget"] for p in curve})
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    for ax, key, label in ((axes[0], "parameters", "parameters (M)"), (axes[1], "flops", "FLOPs (MMAC per image)")):
        values = [[p[key] / 1e6 for p in curve if p["budget"] == b] for b in budgets]
        means = [float(np.mean(v)) for v in values]
        ax.fill_between(budgets, [min(v) for v in values], [max(v) for v in values], color="tab:blue", alpha=0.2, label="range over preferences")
        ax.plot(budgets, means, "o-", color="tab:blue", label="mean over preferences")
        ax.axhline(block["anchor_cost"][key] / 1e6, color="0.3", ls="--", lw=1, label="anchor net (N streams)")
        ax.axhline(block["shared_cost"][key] / 1e6, color="0.3", ls=":", lw=1, label="one shared trunk")
        ax.set_xlabel("budget term c")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: DYMU cost vs budget", fontsize=10)
    fig.tight_layout()
    return fig


def draw_tree(ax, tree: dict, names: list[str], caption: str) -> None:
    """Nodes (layer, stream) of the tree's task paths; one coloured path per task, heads on the right."""
    import matplotlib.pyplot as plt

    parents, heads = tree["parents"], tree["heads"]
    n, layers = len(heads), len(parents) + 1
    colours = plt.cm.tab10(np.arange(n))
    for t in range(n):
        path = [heads[t]]
        for p in reversed(parents):
            path.append(p[path[-1]])
        path = path[::-1]
        offset = (t - (n - 1) / 2) * 0.06  # paths sharing a node stay visible side by side
        xs = list(range(layers)) + [layers]
        ys = [node + offset for node in path] + [t]
        ax.plot(xs, ys, "-", color=colours[t], lw=1.8)
        ax.text(layers + 0.15, t, names[t], va="center", fontsize=7, color=colours[t])
        for layer, node in enumerate(path):
            ax.plot(layer, node, "o", ms=9, mfc="white", mec="0.2")
    ax.set_xlim(-0.5, layers + 1.3)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xticks(list(range(layers)) + [layers], [str(l) for l in range(layers)] + ["head"], fontsize=7)
    ax.set_yticks(range(n), [f"stream {j}" for j in range(n)], fontsize=7)
    ax.invert_yaxis()
    ax.set_title(caption, fontsize=8)


@FIGURES.register("dymu_trees")
def dymu_trees_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    """The chosen trees of each task's strongest preference, at the lowest and highest budget."""
    setup_matplotlib()
    import matplotlib.pyplot as plt

    record = dymu_records(df)[0]
    names = _task_names(record)
    curve = record["dymu"]["curve"]
    budgets = sorted({p["budget"] for p in curve})
    shown = [budgets[0], budgets[-1]] if len(budgets) > 1 else budgets
    fig, axes = plt.subplots(len(shown), len(names), figsize=(3.0 * len(names), 2.4 * len(shown)), squeeze=False)
    for row, budget in zip(axes, shown):
        for ax, name in zip(row, names):
            point = max((p for p in curve if p["task"] == name and p["budget"] == budget), key=lambda p: p["weight"])
            r = ", ".join(f"{v:.2g}" for v in point["preference"])
            draw_tree(ax, point["tree"], names, f"r = ({r}), c = {budget:g}\n{point['parameters'] / 1e6:.2f} M params, {point['flops'] / 1e6:.0f} MMAC")
    fig.suptitle(f"{title}: trees DYMU chooses (layer x stream; each line is a task's path)", fontsize=10)
    fig.tight_layout()
    return fig
