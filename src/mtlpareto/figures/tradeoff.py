"""Two-task trade-off figure in the style of seed 001 Fig. 3 (left vs right test accuracy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtlpareto.figures import FIGURES, setup_matplotlib

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def _per_run_scores(df: "pd.DataFrame", metric: str, split: str = "test") -> "pd.DataFrame":
    sub = df[(df.metric == metric) & (df.split == split)]
    return sub.pivot_table(index=["method", "variant", "seed"], columns="task", values="value", sort=False).reset_index()


@FIGURES.register("tradeoff")
def tradeoff_figure(df: "pd.DataFrame", title: str, metric: str = "accuracy") -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from mtlpareto.methods import METHODS

    tasks = list(dict.fromkeys(df.task))
    if len(tasks) != 2:
        raise ValueError(f"the tradeoff figure needs exactly two tasks, got {tasks}")
    t0, t1 = tasks
    runs = _per_run_scores(df, metric)
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    palette = sns.color_palette("tab20")
    markers = "osD^vP*Xhp<>"
    others = [m for m in dict.fromkeys(runs.method)]
    for i, method in enumerate(others):
        cls = METHODS.get(method)
        label = cls.label or method
        sub = runs[runs.method == method]
        if cls.sweep == "preferences":
            mean = sub.groupby("variant", sort=False)[[t0, t1]].mean()
            color = palette[i % len(palette)]
            ax.plot(mean[t0], mean[t1], "-", color=color, lw=1, alpha=0.6, zorder=1)
            ax.scatter(mean[t0], mean[t1], color=color, marker="x", s=28, label=f"{label} (preference grid)", zorder=2)
            for variant, row in mean.iterrows():
                # label each grid point with its first preference entry
                weight = variant.removeprefix("pref_").split("-")[0]
                ax.annotate(weight, (row[t0], row[t1]), textcoords="offset points", xytext=(4, 3), fontsize=6, color=color)
            continue
        if cls.sweep == "tasks":
            # one dedicated model per task: combine task-t scores of the task-t models
            x = sub[sub.variant == f"task-{t0}"].set_index("seed")[t0]
            y = sub[sub.variant == f"task-{t1}"].set_index("seed")[t1]
            point = pd.DataFrame({t0: x, t1: y}).dropna()
        else:
            point = sub[[t0, t1]]
        ax.errorbar(
            point[t0].mean(), point[t1].mean(), xerr=point[t0].std(ddof=0), yerr=point[t1].std(ddof=0),
            fmt=markers[i % len(markers)], color=palette[i % len(palette)], ms=7, capsize=3, label=label, zorder=3,
        )
    ax.set_xlabel(f"{t0} digit {metric} [%] (test)")
    ax.set_ylabel(f"{t1} digit {metric} [%] (test)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=True)
    fig.tight_layout()
    return fig
