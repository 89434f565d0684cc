"""Figures: structure, not pixels.  Every registered method has its own style (colour and a
shape that survives without colour), the same in every figure; each method is in a legend
once; axes are labelled with units; preferences say what they mean; bytes are reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import long_frame, task_directions
import yaml
from matplotlib.colors import to_hex

from mtlpareto import pipeline
from mtlpareto.figures import FIGURES, save_figure
from mtlpareto.figures.common import parse_preference, preference_text, zoom_box
from mtlpareto.figures.style import CURATED, assign_styles, method_style, method_styles
from mtlpareto.methods import METHODS
from mtlpareto.metrics.aggregate import COLUMNS, load_metrics

# --------------------------------------------------------------------------- styles


def test_every_registered_method_has_a_distinct_colour_and_a_distinct_shape():
    styles = method_styles()
    assert set(styles) == set(METHODS)
    assert len({s.color for s in styles.values()}) == len(styles)
    # identity never rests on colour alone (colour-blind readers, greyscale print)
    assert len({s.shape for s in styles.values()}) == len(styles)


def test_a_new_method_gets_a_style_no_other_method_has_and_the_others_keep_theirs():
    names = [*METHODS, "zz_new", "aa_new"]
    styles = assign_styles(names)
    assert all(styles[n] == CURATED[n] for n in METHODS if n in CURATED)
    assert len({s.shape for s in styles.values()}) == len(names)
    assert styles["aa_new"].color not in {styles[n].color for n in METHODS}
    assert assign_styles(names) == styles  # deterministic
    assert method_style("not_registered").shape not in {s.shape for s in method_styles().values()}


def test_a_method_registered_after_the_first_lookup_gets_a_style(monkeypatch):
    method_style("uniform")  # fills the cache before the new registration
    monkeypatch.setitem(METHODS._items, "zz_late", object())
    late = method_style("zz_late")
    assert late.shape not in {method_style(n).shape for n in METHODS if n != "zz_late"}
    assert "zz_late" in method_styles()


# --------------------------------------------------------------------------- helpers


def test_preference_labels_say_what_the_number_means():
    assert parse_preference("pref_0.333-0.667") == (0.333, 0.667) and parse_preference("default") is None
    assert preference_text("linear", "pref_0.333-0.667") == "w=(.33, .67)"  # loss weights
    assert preference_text("pareto_mtl", "pref_0.333-0.667") == "u=(.33, .67)"  # a loss-space ray


def test_zoom_box_frames_the_crowded_best_corner_only_when_it_is_small():
    crowded = np.array([[70, 68], [71, 67], [72, 69], [70.5, 68.5], [40, 30], [45, 50], [55, 35], [60, 45]])
    x0, x1, y0, y1 = zoom_box(crowded, higher_is_better=True)
    assert x0 < 70 and x1 > 72 and y0 < 67 and y1 > 69 and x0 > 55
    spread = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)
    assert zoom_box(spread, higher_is_better=True) is None


# --------------------------------------------------------------------------- tradeoff (Sener & Koltun Fig. 3)

ACC = {  # (method, variant, seed): (left, right)
    ("uniform", "default", 0): (70.0, 68.0), ("uniform", "default", 1): (71.0, 67.0),
    ("mgda_ub", "default", 0): (72.0, 69.0), ("mgda_ub", "default", 1): (73.0, 68.0),
    ("mgda", "default", 0): (71.5, 68.5),
    ("gradnorm", "default", 0): (40.0, 30.0), ("gradnorm", "default", 1): (60.0, 50.0),
    ("linear", "pref_0.333-0.667", 0): (69.0, 70.0), ("linear", "pref_0.667-0.333", 0): (73.0, 66.0),
    ("pareto_mtl", "pref_0.333-0.667", 0): (66.0, 55.0), ("pareto_mtl", "pref_0.667-0.333", 0): (45.0, 50.0),
}


def tradeoff_frame() -> pd.DataFrame:
    rows = []
    for (method, variant, seed), values in ACC.items():
        for task, v in zip(("left", "right"), values):
            rows.append(["multimnist", method, variant, seed, None, None, "test", task, "accuracy", v])
    for seed, (left, right) in enumerate(((65.0, 66.0), (66.0, 67.0))):  # single task: one model per task
        for t, task in enumerate(("left", "right")):
            for other, v in (("left", left), ("right", right)):
                rows.append(["multimnist", "single_task", f"task-{task}", seed, None, t, "test", other, "accuracy", v if other == task else 10.0])
    return long_frame(rows)


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _mean_colors(ax) -> dict[str, str]:
    """Colour of each emphasised (black-edged) point collection of an axes."""
    out = {}
    for coll in ax.collections:
        edges = coll.get_edgecolors()
        if len(edges) and np.allclose(edges[0][:3], 0) and len(coll.get_facecolors()):
            out[to_hex(coll.get_facecolors()[0])] = coll
    return out


def test_tradeoff_figure_structure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results/published.yaml").write_text(yaml.safe_dump({
        "sources": {"s": "Sener & Koltun, MTL as MOO, NeurIPS 2018"},
        "entries": [{"source": "s", "table": "Table 3", "experiment": "multimnist", "method": m, "task": t, "metric": "accuracy",
                     "value": v, "direction": "higher"} for m, vals in {"mgda_ub": (97.26, 95.90), "uniform": (96.46, 94.99)}.items()
                    for t, v in zip(("left", "right"), vals)],
    }))
    fig = FIGURES.get("tradeoff")(tradeoff_frame(), "mm")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith("(a) all methods") and titles[1].startswith("(b) zoom") and "Sener & Koltun 2018, Table 3" in titles[2]
    labels = _legend_texts(fig)
    for method in ("uniform", "mgda_ub", "mgda", "gradnorm", "linear", "pareto_mtl", "single_task"):
        assert sum(label.startswith(METHODS.get(method).label + " (") for label in labels) == 1, method
    assert "Single task (one model per task, 2 seeds)" in labels and "MGDA (1 seed)" in labels
    assert "Grid search (2-point grid, 1 seed)" in labels
    legend_title = " ".join(fig.legends[0].get_title().get_text().split())
    assert "larger w_t favours task t" in legend_title and "larger u_t allows a larger loss" in legend_title
    for ax in fig.axes:
        assert ax.get_xlabel() == "left task: test accuracy [%]" and ax.get_ylabel() == "right task: test accuracy [%]"
        assert any("better" in t.get_text() for t in ax.texts)
    annotations = {a.get_text() for a in fig.axes[0].texts}
    assert {"w=(.33, .67)", "w=(.67, .33)", "u=(.33, .67)", "u=(.67, .33)"} <= annotations
    # the registry colour, the same on our panel and on the paper's
    ours, paper = _mean_colors(fig.axes[0]), _mean_colors(fig.axes[2])
    for method in ("mgda_ub", "uniform"):
        assert method_style(method).color.lower() in ours and method_style(method).color.lower() in paper
    # the paper's points stay off our axes (other settings, other scale)
    assert fig.axes[0].get_xlim()[1] < 90 and fig.axes[2].get_xlim()[0] > 90


def test_tradeoff_figure_bytes_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.png"
        save_figure(FIGURES.get("tradeoff")(tradeoff_frame(), "mm"), [path])
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


# --------------------------------------------------------------------------- synthetic front (Lin et al. Fig. 7)


def _synthetic_runs(root: Path) -> None:
    from mtlpareto.data.synthetic import make_problem

    problem = make_problem("sine_fonseca", 3)
    prefs = np.linspace(0, 1, 11)
    for method, hvs in (("ctrl_pareto", (0.30, 0.31, 0.32)), ("ctrl_linear", (0.25,))):
        for seed, hv in enumerate(hvs):
            u = np.linspace(-0.9, 0.9, len(prefs)) + 0.01 * seed
            f, x = problem.pareto_front(u), problem.pareto_set(u)
            curve = [{"preference": [p, 1 - p], "losses": {"f1": a, "f2": b}, "solution": list(xs)} for p, (a, b), xs in zip(prefs, f, x)]
            path = root / pipeline.METRICS_PATTERN.format(profile="quick", experiment="syn", method=method, variant="default", seed=seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "experiment": "syn", "method": method, "variant": "default", "seed": seed, "preference": None, "task": None,
                "tasks": task_directions(["f1", "f2"], "objective"), "splits": {"test": {"f1": {"loss": 0.5}, "f2": {"loss": 0.5}}}, "curve": {"test": curve},
                "hypervolume": {"reference": [1.0, 1.0], "test": hv}, "front_coverage": 0.5,
                "true_front": {"problem": "sine_fonseca", "dim": 3, "hypervolume": 0.342},
            }))


def test_pareto_front_figure_has_rays_the_true_front_and_one_legend_entry_per_method(tmp_path, monkeypatch):
    from mtlpareto.figures.pareto_front import RAY_PREFERENCES, hv_text, median_run

    _synthetic_runs(tmp_path)
    monkeypatch.chdir(tmp_path)
    df = load_metrics(sorted(Path("results/quick/runs").rglob("metrics.json")))
    fig = FIGURES.get("pareto_front")(df, "syn")
    ax_f, ax_x = fig.axes
    rays = [line for line in ax_f.get_lines() if line.get_xdata()[0] == 0 and line.get_ydata()[0] == 0]
    assert len(rays) == len(RAY_PREFERENCES)
    for line, p1 in zip(rays, RAY_PREFERENCES):  # on the ray p_1 f_1 = p_2 f_2
        end = np.array([line.get_xdata()[1], line.get_ydata()[1]])
        assert p1 * end[0] == pytest.approx((1 - p1) * end[1])
    assert any(len(line.get_xdata()) == 400 for line in ax_f.get_lines())  # the closed-form front
    assert any(len(line.get_xdata()) == 400 for line in ax_x.get_lines())  # and Pareto set
    labels = _legend_texts(fig)
    assert sum(label.startswith("Controllable Pareto MTL (") for label in labels) == 1
    assert "Controllable LS (HV 0.250, 1 seed; covers 50% of the front)" in labels
    assert "±" not in hv_text([0.25]) and hv_text([0.30, 0.31, 0.32]) == "HV 0.310 ± 0.010 (sd), 3 seeds"
    assert median_run([{"seed": s, "hypervolume": {"test": v}} for s, v in enumerate((0.3, 0.1, 0.2))])["seed"] == 2
    assert "dimensionless" in ax_f.get_xlabel() and ax_x.get_xlabel() == "$x_0$"
    # no legend inside the data
    assert ax_f.get_legend() is None and ax_x.get_legend() is None
