"""Hypervolume of loss vectors (minimisation) and the `hypervolume` table.

`hypervolume` uses pymoo's exact implementation (pymoo.indicators.hv.HV); `hypervolume_2d`
is an independent exact sweep for two objectives, used to check it.  Points that do not
strictly dominate the reference point contribute nothing and are dropped first.

The table (Lin et al. 2020, App. C Table 2): per method, the hypervolume of its test-loss
trade-off curve, mean and sample std (ddof=1; NaN for one seed) over seeds.  Methods of a compared experiment (`compare_with`)
enter with the hypervolume of the set of their models' test losses per seed (e.g. the five
grid-search models), and a synthetic problem adds its true front's hypervolume (closed form:
n_seeds 0, no std).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtlpareto.errors import ConfigError
from mtlpareto.metrics.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd


def _points(points, reference) -> tuple[np.ndarray, np.ndarray]:
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if pts.size == 0:
        return np.zeros((0, ref.size)), ref
    if pts.shape[1] != ref.size:
        raise ConfigError(f"hypervolume: points have {pts.shape[1]} objectives but the reference point has {ref.size}")
    if not (np.isfinite(pts).all() and np.isfinite(ref).all()):
        raise ConfigError("hypervolume: points and reference point must be finite")
    return pts[(pts < ref).all(axis=1)], ref


def hypervolume(points, reference) -> float:
    """Exact hypervolume dominated by `points` [N, M] w.r.t. `reference` [M] (pymoo)."""
    from pymoo.indicators.hv import HV

    pts, ref = _points(points, reference)
    if len(pts) == 0:
        return 0.0
    return float(HV(ref_point=ref)(pts))


def hypervolume_2d(points, reference) -> float:
    """Exact 2-D hypervolume by a sweep over the first objective (independent of pymoo)."""
    pts, ref = _points(points, reference)
    if pts.shape[1] != 2:
        raise ConfigError("hypervolume_2d needs two objectives")
    area, best_y = 0.0, ref[1]
    for x, y in pts[np.lexsort((pts[:, 1], pts[:, 0]))]:
        if y < best_y:  # a new non-dominated point: the strip from x to the reference
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def nondominated(points) -> np.ndarray:
    """Boolean mask of the non-dominated rows of points [N, M] (minimisation)."""
    pts = np.asarray(points, dtype=np.float64)
    keep = np.ones(len(pts), dtype=bool)
    for i in range(len(pts)):
        dominated = (pts <= pts[i]).all(1) & (pts < pts[i]).any(1)
        keep[i] = not dominated.any()
    return keep


# --------------------------------------------------------------------------- per-run records


def sample_std(values) -> float:
    """Sample standard deviation (ddof=1) of the seeds' values; NaN for fewer than two."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.std(ddof=1)) if arr.size > 1 else float("nan")


def run_records(df: "pd.DataFrame") -> list[dict]:
    """The metrics JSON records behind the runs of a long metrics frame.

    Figures and tables receive the long frame (splits only); curves and hypervolumes live in
    the same metrics.json files, which the frame's `source` column names.
    """
    records = []
    for source in dict.fromkeys(df["source"]):
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"metrics file {path} missing (run from the repository root after the pipeline)")
        records.append(json.loads(path.read_text()))
    return records


def is_controllable(record: dict) -> bool:
    return "curve" in record and "hypervolume" in record


def _loss_point(record: dict, tasks: list[str], split: str = "test") -> list[float] | None:
    scores = record.get("splits", {}).get(split, {})
    if not all(t in scores and "loss" in scores[t] for t in tasks):
        return None
    return [scores[t]["loss"] for t in tasks]


def compared_point_sets(records: list[dict], tasks: list[str], split: str = "test") -> dict[str, dict[int, list[list[float]]]]:
    """{method: {seed: [loss vectors]}} of one-network-per-run methods (grid search, MGDA, ...).

    Single-task runs combine, per seed, each task's loss from the model trained for it.
    """
    from mtlpareto.methods import METHODS

    sets: dict[str, dict[int, list]] = {}
    single: dict[int, dict[str, float]] = {}
    for rec in records:
        method = rec["method"]
        cls = METHODS.get(method) if method in METHODS else None
        if cls is not None and cls.sweep == "tasks":
            task = rec["variant"].removeprefix("task-")
            loss = rec.get("splits", {}).get(split, {}).get(task, {}).get("loss")
            if loss is not None:
                single.setdefault(rec["seed"], {})[task] = loss
            continue
        point = _loss_point(rec, tasks, split)
        if point is not None:
            sets.setdefault(method, {}).setdefault(rec["seed"], []).append(point)
    for seed, per_task in single.items():
        if all(t in per_task for t in tasks):
            sets.setdefault("single_task", {})[seed] = [[per_task[t] for t in tasks]]
    return sets


def _label(method: str) -> str:
    from mtlpareto.methods import METHODS

    return (METHODS.get(method).label if method in METHODS else None) or method


@TABLES.register("hypervolume")
def hypervolume_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """Test-loss hypervolume per method (App. C Table 2), mean and sample std over seeds."""
    import pandas as pd

    records = run_records(df)
    own = [r for r in records if is_controllable(r)]
    if not own:
        raise ConfigError("the hypervolume table needs runs of a controllable method (ctrl_linear, ctrl_pareto, phn_ls, phn_epo)")
    references = {tuple(r["hypervolume"]["reference"]) for r in own}
    if len(references) != 1:
        raise ConfigError(f"the methods of one experiment must share hv_reference; found {sorted(references)}")
    reference = list(references.pop())
    tasks = list(own[0]["splits"]["test"])
    split = "test"
    rows = []

    def add(method: str, label: str, values: list[float], seeds: int, **extra) -> None:
        arr = np.asarray(values, dtype=np.float64)
        rows.append({
            "method": method, "label": label, "task": "all", "metric": "hypervolume", "split": split,
            "mean": round(float(arr.mean()), 6), "std": round(sample_std(arr), 6), "n_seeds": seeds,
            "reference": "(" + ", ".join(f"{v:g}" for v in reference) + ")", **extra,
        })

    for method in dict.fromkeys(r["method"] for r in own):
        runs = [r for r in own if r["method"] == method]
        params = runs[0].get("parameters", {})
        coverage = [r["front_coverage"] for r in runs if "front_coverage" in r]
        add(method, _label(method), [r["hypervolume"][split] for r in runs], len({r["seed"] for r in runs}),
            params_hypernetwork=params.get("hypernetwork"), params_target=params.get("target"), models=1,
            front_coverage=round(float(np.mean(coverage)), 4) if coverage else None)
    others = [r for r in records if not is_controllable(r)]
    from mtlpareto.methods import METHODS

    for method, per_seed in compared_point_sets(others, tasks, split).items():
        values = [hypervolume(points, reference) for points in per_seed.values()]
        per_task = method in METHODS and METHODS.get(method).sweep == "tasks"
        n_models = len(tasks) if per_task else max(len(p) for p in per_seed.values())
        what = "one model per task" if per_task else f"{n_models} model{'s' if n_models > 1 else ''}"
        add(method, f"{_label(method)} ({what}, {others[0]['experiment']})", values, len(per_seed),
            params_hypernetwork=None, params_target=None, models=n_models, front_coverage=None)
    true = [r["true_front"]["hypervolume"] for r in own if "true_front" in r]
    if true:
        # Exact, not a run: no seeds and no spread.
        add("true_front", "True Pareto front (closed form)", [true[0]], 0,
            params_hypernetwork=None, params_target=None, models=0, front_coverage=1.0)
    return pd.DataFrame(rows)


@TABLES.register("focused_accuracy")
def focused_accuracy_table(df: "pd.DataFrame") -> "pd.DataFrame":
    """Lin et al. 2020 Fig. 9 (many tasks): test accuracy averaged over the tasks, each task read
    at the preference focused on it ("real-time preference adjustment"), next to all tasks at
    the uniform preference; mean and sample std (ddof=1) over seeds."""
    import pandas as pd

    records = [r for r in run_records(df) if "focused" in r]
    if not records:
        raise ConfigError("the focused_accuracy table needs controllable runs on more than two tasks (metrics with 'focused')")
    rows = []
    for method in dict.fromkeys(r["method"] for r in records):
        runs = [r for r in records if r["method"] == method]
        for column, values in (
            ("task-focused preference", [np.mean([v["accuracy"] for v in r["focused"]["test"].values()]) for r in runs]),
            ("uniform preference", [np.mean([v["accuracy"] for v in r["splits"]["test"].values()]) for r in runs]),
        ):
            arr = np.asarray(values, dtype=np.float64)
            rows.append({"method": method, "label": _label(method), "task": f"mean over tasks, {column}", "metric": "accuracy", "split": "test",
                         "mean": round(float(arr.mean()), 4), "std": round(sample_std(arr), 4), "n_seeds": len({r["seed"] for r in runs})})
    return pd.DataFrame(rows)
