"""Learned Pareto fronts of the controllable methods.

* `pareto_front` (Lin et al. 2020, Fig. 7): the synthetic problem's true front and Pareto set
  (closed form) against what each method generates over a dense preference grid, in
  objective space and in the decision space (x_0, x_1), with preference rays: the solution a
  preference p asks for lies on the ray p_1 f_1 = p_2 f_2 (the convention of
  controllable.directions), and the solutions each method generates *at* those preferences
  are drawn large, so one sees whether they land on their rays (Pareto MTL) or collapse to
  the ends of a concave front (linear scalarisation).  One seed per method is drawn in full,
  the one with the median hypervolume, because a mean over seeds of points near a front lies
  off it; the other seeds are faint.
* `tradeoff_curves` (Fig. 8a / App. C Fig. 12): test-loss and test-accuracy trade-off curves
  of each controllable method (mean over seeds at each preference, seeds faint), with the
  models of a compared experiment (`compare_with`: grid search, MGDA, Pareto MTL, ...) as
  points on the same axes (seeds faint, mean emphasised) and a zoom on where they crowd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.figures.common import (
    better_arrow, draw_entries, legend_handle, method_label, n_seeds_text, preference_note, two_task_entries, zoom_box,
)
from mtlpareto.figures.style import method_style
from mtlpareto.metrics.hypervolume import is_controllable, run_records

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

RAY_PREFERENCES = (0.1, 0.3, 0.5, 0.7, 0.9)  # first entry p_1 of the rays drawn on the synthetic figure


def _mean_curve(runs: list[dict], key: str, tasks: list[str], split: str = "test") -> np.ndarray:
    """[P, T] values of `key` ("losses"/"accuracies") averaged over seeds at each preference."""
    return np.mean([_curve(r, key, tasks, split) for r in runs], axis=0)


def _curve(run: dict, key: str, tasks: list[str], split: str = "test") -> np.ndarray:
    return np.array([[c[key][t] for t in tasks] for c in run["curve"][split]], dtype=float)


def hv_text(values: list[float]) -> str:
    """'HV 0.194 (1 seed)' or 'HV 0.270 ± 0.013 (sd, 3 seeds)': no spread for one seed."""
    arr = np.asarray(values, dtype=float)
    if len(arr) == 1:
        return f"HV {arr[0]:.3f}, 1 seed"
    return f"HV {arr.mean():.3f} ± {arr.std(ddof=1):.3f} (sd), {len(arr)} seeds"


def median_run(runs: list[dict]) -> dict:
    """The run with the median test hypervolume (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: (r["hypervolume"]["test"], r["seed"]))
    return ordered[(len(ordered) - 1) // 2]


def ray_end(p1: float, limit: float) -> np.ndarray:
    """End of the ray p_1 f_1 = p_2 f_2 (direction (1/p_1, 1/p_2)) where it leaves [0, limit]^2."""
    direction = np.array([1.0 / p1, 1.0 / (1.0 - p1)])
    return direction * (limit / direction.max())


def _nearest_indices(preferences: np.ndarray, targets: tuple[float, ...]) -> list[int]:
    return [int(np.argmin(np.abs(preferences - t))) for t in targets]


@FIGURES.register("pareto_front")
def pareto_front_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    from mtlpareto.data.synthetic import make_problem

    records = [r for r in run_records(df) if is_controllable(r) and "true_front" in r]
    if not records:
        raise ValueError("the pareto_front figure needs controllable runs on a synthetic dataset")
    info = records[0]["true_front"]
    problem = make_problem(info["problem"], info["dim"])
    u = np.linspace(-1.0, 1.0, 400)
    front, ps = problem.pareto_front(u), problem.pareto_set(u)
    tasks = list(records[0]["splits"]["test"])
    reference = tuple(records[0]["hypervolume"]["reference"])

    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_f, ax_x) = plt.subplots(1, 2, figsize=(10.0, 4.9))
    ax_f.plot(front[:, 0], front[:, 1], "-", color="k", lw=2.2, zorder=1)
    ax_x.plot(ps[:, 0], ps[:, 1], "-", color="k", lw=2.2, zorder=1)
    limit = 1.05
    for p1 in RAY_PREFERENCES:
        end = ray_end(p1, limit)
        ax_f.plot([0, end[0]], [0, end[1]], ls=(0, (2, 2)), color="0.55", lw=0.8, zorder=0)
        ax_f.annotate(f"p=({p1:.1f}, {1 - p1:.1f})", end, textcoords="offset points", xytext=(2, 2), fontsize=6, color="0.4",
                      ha="right" if end[0] >= limit - 1e-9 else "left", va="bottom" if end[1] < limit - 1e-9 else "top")
    handles = [Line2D([], [], color="k", lw=2.2, label="true Pareto front / set (closed form)"),
               Line2D([], [], color="0.55", lw=0.8, ls=(0, (2, 2)), label="preference ray $p_1 f_1 = p_2 f_2$")]
    for method in dict.fromkeys(r["method"] for r in records):
        runs = sorted((r for r in records if r["method"] == method), key=lambda r: r["seed"])
        style = method_style(method)
        shown = median_run(runs)
        for run in runs:
            f = _curve(run, "losses", tasks)
            x = np.array([c["solution"][:2] for c in run["curve"]["test"]], dtype=float)
            main = run is shown
            kwargs = dict(marker=style.marker, color=style.color, linewidths=0, zorder=3 if main else 2,
                          s=9 if main else 5, alpha=0.85 if main else 0.25)
            ax_f.scatter(f[:, 0], f[:, 1], **kwargs)
            ax_x.scatter(x[:, 0], x[:, 1], **kwargs)
            if main:
                prefs = np.array([c["preference"][0] for c in run["curve"]["test"]])
                at_rays = _nearest_indices(prefs, RAY_PREFERENCES)
                big = dict(marker=style.marker, color=style.color, s=60, edgecolors="black", linewidths=0.7, zorder=4)
                ax_f.scatter(f[at_rays, 0], f[at_rays, 1], **big)
                ax_x.scatter(x[at_rays, 0], x[at_rays, 1], **big)
                for i, p1 in zip(at_rays, RAY_PREFERENCES):  # which ray each large point answers
                    ax_f.annotate(f"{p1:.1f}", f[i], textcoords="offset points", xytext=(-6, -9), fontsize=6, color=style.color, ha="right")
        coverage = [r["front_coverage"] for r in runs if "front_coverage" in r]
        extra = f"; covers {np.mean(coverage):.0%} of the front" if coverage else ""
        label = f"{method_label(method)} ({hv_text([r['hypervolume']['test'] for r in runs])}{extra})"
        handles.append(legend_handle(method, label))
    ax_f.set_xlim(-0.02, limit)
    ax_f.set_ylim(-0.02, limit)
    ax_f.set_aspect("equal")
    ax_f.set_xlabel(f"${tasks[0][0]}_{tasks[0][1:]}$ (objective 1, dimensionless)" if len(tasks[0]) == 2 else tasks[0])
    ax_f.set_ylabel(f"${tasks[1][0]}_{tasks[1][1:]}$ (objective 2, dimensionless)" if len(tasks[1]) == 2 else tasks[1])
    ax_f.set_title("(a) objective space; large: solutions at the rays' preferences (labelled $p_1$)", fontsize=8.5, loc="left", pad=14)
    better_arrow(ax_f, higher_is_better=False)
    ax_x.set_xlabel("$x_0$")
    ax_x.set_ylabel("$x_1$")
    ax_x.set_title(f"(b) decision space (first 2 of {problem.dim} dims)", fontsize=8.5, loc="left", pad=14)
    ref = ", ".join(f"{v:g}" for v in reference)
    fig.suptitle(f"{title}: true front HV {info['hypervolume']:.3f} (reference point ({ref})); "
                 "each method's median-HV seed, other seeds faint", fontsize=9)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=2, fontsize=7.5, frameon=False)
    fig.tight_layout()
    return fig


@FIGURES.register("tradeoff_curves")
def tradeoff_curves_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import textwrap

    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    records = run_records(df)
    own = [r for r in records if is_controllable(r)]
    if not own:
        raise ValueError("the tradeoff_curves figure needs runs of a controllable method")
    tasks = list(own[0]["splits"]["test"])
    if len(tasks) != 2:
        raise ValueError(f"the tradeoff_curves figure needs exactly two tasks, got {tasks}")
    own_methods = list(dict.fromkeys(r["method"] for r in own))
    others = [r for r in records if not is_controllable(r)]
    other_experiment = others[0]["experiment"] if others else None
    compared = {metric: two_task_entries(df[df.experiment == other_experiment], tasks, metric) for metric in ("loss", "accuracy")} if others else {"loss": {}, "accuracy": {}}
    reference = tuple(own[0]["hypervolume"]["reference"])

    sns.set_theme(style="whitegrid", context="paper")
    rows = [("loss", "losses", False), ("accuracy", "accuracies", True)]
    boxes = {m: zoom_box(np.array([e.mean for es in compared[m].values() for e in es]), h) if compared[m] else None for m, _, h in rows}
    ncols = 2 if any(boxes.values()) else 1
    fig, axes = plt.subplots(2, ncols, figsize=(5.0 * ncols, 8.6), squeeze=False)
    handles = []
    for method in own_methods:
        runs = [r for r in own if r["method"] == method]
        style = method_style(method)
        for (metric, key, _), row in zip(rows, axes):
            mean = _mean_curve(runs, key, tasks)
            for ax in row:
                if len(runs) > 1:
                    for run in runs:
                        seed_curve = _curve(run, key, tasks)
                        ax.plot(seed_curve[:, 0], seed_curve[:, 1], ls=style.linestyle, color=style.color, lw=0.8, alpha=0.3, zorder=2)
                ax.plot(mean[:, 0], mean[:, 1], color=style.color, ls=style.linestyle, lw=1.8, marker=style.marker, ms=3.5, zorder=3)
        handles.append(legend_handle(method, f"{method_label(method)} ({hv_text([r['hypervolume']['test'] for r in runs])})", curve=True))
    for method in compared["loss"] or compared["accuracy"]:
        for (metric, _, _), row in zip(rows, axes):
            if method in compared[metric]:
                for ax in row:
                    draw_entries(ax, method, compared[metric][method], label=None)
        n = max(len(e.seeds) for e in (compared["loss"].get(method) or compared["accuracy"][method]))
        handles.append(legend_handle(method, f"{method_label(method)} ({other_experiment}, {n_seeds_text(n)})"))
    names = {"loss": "test loss (cross-entropy)", "accuracy": "test accuracy [%]"}
    for (metric, _, higher), row in zip(rows, axes):
        box = boxes[metric]
        for j, ax in enumerate(row):
            ax.set_xlabel(f"{tasks[0]} task: {names[metric]}")
            ax.set_ylabel(f"{tasks[1]} task: {names[metric]}")
            better_arrow(ax, higher)
            letter = "abcd"[2 * (metric == "accuracy") + j] if ncols == 2 else "ab"[metric == "accuracy"]
            if j == 0:
                ax.set_title(f"({letter}) {names[metric]}", fontsize=8.5, loc="left", pad=14)
            if metric == "loss" and j == 0:
                ax.scatter([reference[0]], [reference[1]], marker="+", s=90, color="0.2", zorder=5)
                ax.annotate(f"HV reference ({', '.join(f'{v:g}' for v in reference)})", reference, textcoords="offset points",
                            xytext=(-4, -10), ha="right", fontsize=6.5, color="0.2")
        if ncols == 2:
            if box:
                x0, x1, y0, y1 = box
                row[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.9, ec="0.35", zorder=6))
                row[1].set_xlim(x0, x1)
                row[1].set_ylim(y0, y1)
                row[1].set_title(f"({'abcd'[2 * (metric == 'accuracy') + 1]}) zoom on the dashed box", fontsize=8.5, loc="left", pad=14)
            else:
                row[1].set_visible(False)
    compared_text = f"; {other_experiment} models: faint seeds, large mean" if others else ""
    fig.suptitle(f"{title}: trade-off curves (mean over seeds at each preference, seeds faint)\n"
                 f"hypervolume of test losses, reference point ({', '.join(f'{v:g}' for v in reference)}){compared_text}", fontsize=9)
    note = preference_note(list(compared["loss"] or compared["accuracy"]))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.01), ncol=2, fontsize=7.5, frameon=False,
               title=textwrap.fill(note, 110) or None, title_fontsize=7.5)
    fig.tight_layout()
    return fig
