"""Learned Pareto fronts of the controllable methods.

* `pareto_front` (Lin et al. 2020, Fig. 7): the synthetic problem's true front and Pareto set
  (closed form) against what each method generates over a dense preference grid, in
  objective space and in the decision space (x_0, x_1).
* `tradeoff_curves` (Fig. 8a / App. C Fig. 12): test-loss and test-accuracy trade-off curves
  of each controllable method (mean over seeds at each preference of the grid), with the
  models of a compared experiment (`compare_with`: grid search, MGDA, Pareto MTL, ...) as
  points on the same axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.metrics.hypervolume import _label, is_controllable, run_records

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def _mean_curve(runs: list[dict], key: str, tasks: list[str], split: str = "test") -> np.ndarray:
    """[P, T] values of `key` ("losses"/"accuracies") averaged over seeds at each preference."""
    curves = [np.array([[c[key][t] for t in tasks] for c in r["curve"][split]]) for r in runs]
    return np.mean(curves, axis=0)


@FIGURES.register("pareto_front")
def pareto_front_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import seaborn as sns

    from mtlpareto.data.synthetic import make_problem

    records = [r for r in run_records(df) if is_controllable(r) and "true_front" in r]
    if not records:
        raise ValueError("the pareto_front figure needs controllable runs on a synthetic dataset")
    info = records[0]["true_front"]
    problem = make_problem(info["problem"], info["dim"])
    u = np.linspace(-1.0, 1.0, 400)
    front, ps = problem.pareto_front(u), problem.pareto_set(u)
    tasks = list(records[0]["splits"]["test"])

    sns.set_theme(style="whitegrid", context="paper")
    palette = sns.color_palette("tab10")
    fig, (ax_f, ax_x) = plt.subplots(1, 2, figsize=(9.6, 4.3))
    ax_f.plot(front[:, 0], front[:, 1], "-", color="k", lw=2, label="true Pareto front", zorder=1)
    ax_x.plot(ps[:, 0], ps[:, 1], "-", color="k", lw=2, label="true Pareto set", zorder=1)
    for i, method in enumerate(dict.fromkeys(r["method"] for r in records)):
        runs = [r for r in records if r["method"] == method]
        color = palette[i % len(palette)]
        for j, run in enumerate(sorted(runs, key=lambda r: r["seed"])):
            f = np.array([[c["losses"][t] for t in tasks] for c in run["curve"]["test"]])
            x = np.array([c["solution"][:2] for c in run["curve"]["test"]])
            coverage = np.mean([r.get("front_coverage", np.nan) for r in runs])
            label = f"{_label(method)} (HV {np.mean([r['hypervolume']['test'] for r in runs]):.3f}, covers {coverage:.0%} of the front)" if j == 0 else None
            ax_f.scatter(f[:, 0], f[:, 1], s=14 if j == 0 else 6, color=color, alpha=0.9 if j == 0 else 0.35, label=label, zorder=3)
            ax_x.scatter(x[:, 0], x[:, 1], s=14 if j == 0 else 6, color=color, alpha=0.9 if j == 0 else 0.35, label=label, zorder=3)
            if j == 0:
                # Arrow from p_1 = 0 to p_1 = 1 along the curve: where the preference moves the solution.
                ax_f.annotate("", xy=f[-1], xytext=f[0], arrowprops=dict(arrowstyle="->", color=color, alpha=0.25))
    ax_f.set_xlabel(f"{tasks[0]}")
    ax_f.set_ylabel(f"{tasks[1]}")
    ax_f.set_title("objective space")
    ax_x.set_xlabel("$x_0$")
    ax_x.set_ylabel("$x_1$")
    ax_x.set_title(f"decision space (first 2 of {problem.dim} dims)")
    for ax in (ax_f, ax_x):
        ax.legend(fontsize=7, loc="upper right", frameon=True)
    fig.suptitle(f"{title}: true HV {info['hypervolume']:.3f} (reference {tuple(records[0]['hypervolume']['reference'])})", fontsize=9)
    fig.tight_layout()
    return fig


@FIGURES.register("tradeoff_curves")
def tradeoff_curves_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import seaborn as sns

    from mtlpareto.metrics.hypervolume import compared_point_sets

    records = run_records(df)
    own = [r for r in records if is_controllable(r)]
    if not own:
        raise ValueError("the tradeoff_curves figure needs runs of a controllable method")
    tasks = list(own[0]["splits"]["test"])
    if len(tasks) != 2:
        raise ValueError(f"the tradeoff_curves figure needs exactly two tasks, got {tasks}")
    others = [r for r in records if not is_controllable(r)]

    sns.set_theme(style="whitegrid", context="paper")
    palette = sns.color_palette("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 4.6))
    methods = list(dict.fromkeys(r["method"] for r in own))
    for i, method in enumerate(methods):
        runs = [r for r in own if r["method"] == method]
        hv = np.array([r["hypervolume"]["test"] for r in runs])
        label = f"{_label(method)} (HV {hv.mean():.3f} ± {hv.std():.3f})"
        for ax, key in zip(axes, ("losses", "accuracies")):
            curve = _mean_curve(runs, key, tasks)
            ax.plot(curve[:, 0], curve[:, 1], "-o", ms=2.5, lw=1.4, color=palette[i % len(palette)], label=label, zorder=2)
    markers = "sDP^vX*<>h"
    compared = compared_point_sets(others, tasks)
    for k, (method, per_seed) in enumerate(compared.items()):
        color = palette[(len(methods) + k) % len(palette)]
        for ax, metric in zip(axes, ("loss", "accuracy")):
            pts = _compared_points(others, method, tasks, metric) if metric == "accuracy" else np.array([p for pts in per_seed.values() for p in pts])
            if len(pts) == 0:
                continue
            ax.scatter(pts[:, 0], pts[:, 1], marker=markers[k % len(markers)], s=26, color=color, edgecolor="k", linewidth=0.4,
                       label=f"{_label(method)} ({others[0]['experiment']})", zorder=3)
    axes[0].set_xlabel(f"{tasks[0]} test loss")
    axes[0].set_ylabel(f"{tasks[1]} test loss")
    axes[0].set_title("test losses (lower is better)")
    axes[1].set_xlabel(f"{tasks[0]} test accuracy [%]")
    axes[1].set_ylabel(f"{tasks[1]} test accuracy [%]")
    axes[1].set_title("test accuracy (higher is better)")
    axes[0].legend(fontsize=6.5, loc="upper right", frameon=True)
    axes[1].legend(fontsize=6.5, loc="lower left", frameon=True)
    fig.suptitle(f"{title}: HV of test losses, reference {tuple(own[0]['hypervolume']['reference'])}", fontsize=9)
    fig.tight_layout()
    return fig


def _compared_points(records: list[dict], method: str, tasks: list[str], metric: str) -> np.ndarray:
    """Test `metric` points of one compared method (single-task runs combined per seed)."""
    from mtlpareto.methods import METHODS

    cls = METHODS.get(method) if method in METHODS else None
    runs = [r for r in records if r["method"] == method]
    if cls is not None and cls.sweep == "tasks":
        by_seed: dict[int, dict] = {}
        for r in runs:
            task = r["variant"].removeprefix("task-")
            by_seed.setdefault(r["seed"], {})[task] = r["splits"]["test"][task][metric]
        return np.array([[s[t] for t in tasks] for s in by_seed.values() if all(t in s for t in tasks)])
    return np.array([[r["splits"]["test"][t][metric] for t in tasks] for r in runs if all(metric in r["splits"]["test"].get(t, {}) for t in tasks)])
