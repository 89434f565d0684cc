"""Pieces shared by the figures: per-seed points of two-task methods, seeds drawn faint with
the mean emphasised, "better" arrows, the zoom rule, preference labels, published points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from mtlpareto.figures.style import MethodStyle, method_style

if TYPE_CHECKING:
    import pandas as pd

SEED_ALPHA = 0.4  # faint: the seeds show the spread, the mean carries the method
SEED_SIZE = 20
MEAN_SIZE = 70

# What a grid point's preference vector means, per method that sweeps the preference grid.
# Linear scalarisation weighs the losses (a larger entry favours that task); Pareto MTL
# (Lin et al. 2019) reads it as a direction in loss space (a larger entry *allows* a larger
# loss on that task, so it favours the other one).
PREFERENCE_MEANING = {"pareto_mtl": "ray"}


def method_label(method: str) -> str:
    from mtlpareto.methods import METHODS

    return (METHODS.get(method).label if method in METHODS else None) or method


def sweep_of(method: str) -> str:
    from mtlpareto.methods import METHODS

    return METHODS.get(method).sweep if method in METHODS else "none"


@dataclass
class Entry:
    """One point of a method on two tasks: its seeds [S, 2] and their mean."""

    method: str
    variant: str
    seeds: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.seeds.mean(axis=0)


def two_task_entries(df: "pd.DataFrame", tasks: Sequence[str], metric: str, split: str = "test", methods: Sequence[str] | None = None) -> dict[str, list[Entry]]:
    """{method: [Entry]} of `metric` on two tasks: one entry per method (per grid point for
    preference sweeps); single-task baselines combine, per seed, each task's dedicated model."""
    t0, t1 = tasks
    sub = df[(df.metric == metric) & (df.split == split)]
    runs = sub.pivot_table(index=["method", "variant", "seed"], columns="task", values="value", sort=False).reset_index()
    out: dict[str, list[Entry]] = {}
    for method in dict.fromkeys(runs.method):
        if methods is not None and method not in methods:
            continue
        m = runs[runs.method == method]
        if t0 not in m or t1 not in m:
            continue
        if sweep_of(method) == "tasks":
            x = m[m.variant == f"task-{t0}"].set_index("seed")[t0]
            y = m[m.variant == f"task-{t1}"].set_index("seed")[t1]
            both = x.to_frame().join(y, how="inner").dropna()
            entries = [Entry(method, "per-task", both[[t0, t1]].to_numpy(dtype=float))] if len(both) else []
        else:
            entries = [Entry(method, str(v), g[[t0, t1]].dropna().to_numpy(dtype=float)) for v, g in m.groupby("variant", sort=False)]
            entries = [e for e in entries if len(e.seeds)]
        if sweep_of(method) == "preferences":
            entries.sort(key=lambda e: parse_preference(e.variant) or ())
        if entries:
            out[method] = entries
    return out


def parse_preference(variant: str) -> tuple[float, ...] | None:
    """'pref_0.333-0.667' -> (0.333, 0.667); None for other variants."""
    if not variant.startswith("pref_"):
        return None
    try:
        return tuple(float(v) for v in variant.removeprefix("pref_").split("-"))
    except ValueError:
        return None


def preference_text(method: str, variant: str) -> str:
    pref = parse_preference(variant)
    if pref is None:
        return variant
    symbol = "u" if PREFERENCE_MEANING.get(method) == "ray" else "w"
    return f"{symbol}=(" + ", ".join(f"{p:.2f}".lstrip("0") for p in pref) + ")"


def preference_note(methods: Sequence[str]) -> str:
    """One sentence per preference meaning among `methods` (for a figure's footnote)."""
    notes = []
    sweeps = [m for m in methods if sweep_of(m) == "preferences"]
    weights = [method_label(m) for m in sweeps if PREFERENCE_MEANING.get(m) != "ray"]
    rays = [method_label(m) for m in sweeps if PREFERENCE_MEANING.get(m) == "ray"]
    if weights:
        notes.append(f"{', '.join(weights)}: w = (w_1, w_2) loss weights, a larger w_t favours task t.")
    if rays:
        notes.append(f"{', '.join(rays)}: u = (u_1, u_2) preference ray in loss space, a larger u_t allows a larger loss on task t (favours the other task).")
    return " ".join(notes)


def n_seeds_text(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def draw_entries(ax: Any, method: str, entries: list[Entry], label: str | None, annotate: bool = True) -> None:
    """Seeds as faint points, each entry's mean emphasised; a preference sweep's means joined
    in grid order and labelled with what their preference means."""
    style = method_style(method)
    for e in entries:
        if len(e.seeds) > 1:
            ax.scatter(e.seeds[:, 0], e.seeds[:, 1], s=SEED_SIZE, marker=style.marker, color=style.color, alpha=SEED_ALPHA, linewidths=0, zorder=2)
    means = np.array([e.mean for e in entries])
    if len(entries) > 1:
        ax.plot(means[:, 0], means[:, 1], "-", color=style.color, lw=1.0, alpha=0.7, zorder=3)
    ax.scatter(means[:, 0], means[:, 1], s=MEAN_SIZE, marker=style.marker, color=style.color, edgecolors="black", linewidths=0.6, zorder=4, label=label)
    if annotate and sweep_of(method) == "preferences":
        for e in entries:
            ax.annotate(preference_text(method, e.variant), e.mean, textcoords="offset points", xytext=(5, 4), fontsize=6.5, color=style.color,
                        annotation_clip=True, zorder=5)


def better_arrow(ax: Any, higher_is_better: bool) -> None:
    """'better' with an arrow pointing to the better corner, just above the axes (off the data)."""
    text = "better \u2197 (top right)" if higher_is_better else "better \u2199 (bottom left)"
    ax.text(1.0, 1.01, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color="0.2", fontweight="bold")


def zoom_box(points: np.ndarray, higher_is_better: bool, share: float = 0.5, max_area: float = 0.25) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) around the best `share` of the points (nearest the ideal corner, in
    units of the full span), padded; None when that box is not much smaller than the full view."""
    pts = np.asarray(points, dtype=float)
    if len(pts) < 4:
        return None
    lo, hi = pts.min(0), pts.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    ideal = hi if higher_is_better else lo
    dist = np.linalg.norm((pts - ideal) / span, axis=1)
    near = pts[np.argsort(dist, kind="stable")[: math.ceil(share * len(pts))]]
    b_lo, b_hi = near.min(0), near.max(0)
    pad = np.maximum(0.15 * (b_hi - b_lo), 0.04 * span)
    b_lo, b_hi = b_lo - pad, b_hi + pad
    share_of_view = (b_hi - b_lo) / span
    if np.prod(share_of_view) > max_area or (share_of_view > 0.6).any():  # a strip along one side is no zoom
        return None
    return (float(b_lo[0]), float(b_hi[0]), float(b_lo[1]), float(b_hi[1]))


def published_points(experiment: str, tasks: Sequence[str], metric: str) -> dict[str, tuple[np.ndarray, str]]:
    """{method: (point [2], citation)} of the papers' comparable numbers on both tasks."""
    from mtlpareto.metrics.reported import published_lookup

    published = published_lookup()
    methods = dict.fromkeys(k[1] for k in published if k[0] == experiment and k[3] == metric)
    out = {}
    for method in methods:
        entries = [published.get((experiment, method, str(t), metric)) for t in tasks]
        if all(entries):
            out[method] = (np.array([e["value"] for e in entries], dtype=float), short_citation(entries[0]))
    return out


def short_citation(entry: dict) -> str:
    """'Sener & Koltun 2018, Table 3' from a published entry (authors, year of its source, table)."""
    import re

    source = entry["citation"].split(",")[0]
    year = re.findall(r"(?:19|20)\d\d", entry["citation"])
    return f"{source} {year[-1] if year else ''}".strip() + f", {entry['table']}"


def legend_handle(method: str, label: str, curve: bool = False) -> Any:
    from matplotlib.lines import Line2D

    style: MethodStyle = method_style(method)
    if curve:
        return Line2D([], [], color=style.color, marker=style.marker, linestyle=style.linestyle, lw=1.8, ms=5, label=label)
    return Line2D([], [], color=style.color, marker=style.marker, linestyle="none", ms=8, markeredgecolor="black", markeredgewidth=0.6, label=label)
