"""Exclusive capacity over the epochs (MPPS, Shi et al. 2023 Figs. 3 and 5): learned and targeted.

One line per run group (experiment, method, mask kind, schedule, target updates), the mean
over its seeds: the model's EC of the learned mask distribution Phi after each epoch (solid),
the EC its target Pi had during that epoch (dashed) and the schedule's value (dotted); the right
panel shows the learned EC of each masked layer (first layer lightest), and the last one every
schedule of the target EC over the paper's NYUv2 / Cityscapes curriculum (200 epochs, 25 frozen
at each end, `steps` 4 for step), from the function training uses.  The numbers come from
the `sharing_log` that training stores in the checkpoint and evaluation copies into
metrics.json; runs without one (hard sharing) are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.errors import ConfigError
from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.figures.common import method_label
from mtlpareto.metrics.hypervolume import run_records

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd


def ec_groups(records: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Per group label the seed-mean curves [epochs] ("learned", "target", "scheduled") and
    per-layer curves [layers, epochs] ("layers")."""
    grouped: dict[str, list[list[dict]]] = {}
    for record in records:
        log = record.get("sharing_log")
        if not log or "exclusive_capacity" not in log[0]:
            continue
        first = log[0]
        label = f"{record['experiment']}: {method_label(record['method'])}, {first['mask']}, {first['schedule']}" + ("" if first.get("target_update", True) else ", no target update")
        grouped.setdefault(label, []).append(log)
    curves = {}
    for label, logs in grouped.items():
        if len({len(log) for log in logs}) != 1:
            raise ConfigError(f"ec_curves: the seeds of {label!r} logged different numbers of epochs")
        curves[label] = {
            "learned": np.mean([[e["exclusive_capacity"] for e in log] for log in logs], axis=0),
            "target": np.mean([[e["target_exclusive_capacity"] for e in log] for log in logs], axis=0),
            "scheduled": np.mean([[e["scheduled_capacity"] for e in log] for log in logs], axis=0),
            "layers": np.mean([[e["layer_exclusive_capacity"] for e in log] for log in logs], axis=0).T,
        }
    return curves


@FIGURES.register("ec_curves")
def ec_curves_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt

    curves = ec_groups(run_records(df))
    if not curves:
        raise ConfigError("ec_curves: no run of this experiment logged exclusive capacities (use architecture: mpps)")
    fig, (ax, ax_layers, ax_schedules) = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
    colours = plt.get_cmap("tab10")
    for i, (label, c) in enumerate(curves.items()):
        epochs = np.arange(1, len(c["learned"]) + 1)
        colour = colours(i % 10)
        ax.plot(epochs, c["learned"], "-o", color=colour, label=f"{label} (learned Φ)", markersize=4)
        ax.plot(epochs, c["target"], "--", color=colour, label=f"{label} (target Π)")
        ax.plot(epochs, c["scheduled"], ":", color=colour, alpha=0.7)
        n_layers = c["layers"].shape[0]
        for j, layer in enumerate(c["layers"]):
            ax_layers.plot(epochs, layer, "-", color=colour, alpha=0.35 + 0.65 * (j + 1) / n_layers, linewidth=1)
        ax_layers.plot([], [], "-", color=colour, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("exclusive capacity EC")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("model EC (dotted: schedule)", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
    ax_layers.set_xlabel("epoch")
    ax_layers.set_title("learned EC per masked layer (darker: later layer)", fontsize=9)
    ax_layers.legend(fontsize=6, loc="lower left")
    from matplotlib.ticker import MaxNLocator

    from mtlpareto.models.mpps import SCHEDULES, scheduled_capacity

    paper_epochs, frozen = 200, 25
    for schedule, style in zip(SCHEDULES, ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))):
        values = [scheduled_capacity(schedule, e, paper_epochs, frozen, 0.01, steps=4) for e in range(paper_epochs)]
        ax_schedules.plot(np.arange(1, paper_epochs + 1), values, linestyle=style, color="black", label=schedule)
    ax_schedules.set_xlabel("epoch")
    ax_schedules.set_title(f"target EC schedules ({paper_epochs} epochs, {frozen} frozen at each end)", fontsize=9)
    ax_schedules.legend(fontsize=6, loc="lower left")
    ax_schedules.grid(alpha=0.3)
    for a in (ax, ax_layers):
        a.grid(alpha=0.3)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{title}: exclusive capacity over training", fontsize=10)
    fig.tight_layout()
    return fig
