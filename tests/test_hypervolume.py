"""Hypervolume (pymoo's exact HV) against independent computations, and the hypervolume
table / trade-off figure built from metrics files, including a compared experiment."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import task_directions

from mtlpareto import pipeline
from mtlpareto.config import load_profile
from mtlpareto.data.synthetic import SineFonseca
from mtlpareto.errors import ConfigError
from mtlpareto.metrics.hypervolume import hypervolume, hypervolume_2d, nondominated


def _brute_force(points: np.ndarray, reference: np.ndarray) -> int:
    """Count the unit cells of the integer box below `reference` dominated by some point."""
    count = 0
    for cell in itertools.product(*(range(int(r)) for r in reference)):
        upper = np.asarray(cell) + 1.0  # the cell [c, c+1)^M is dominated iff its upper corner is
        if any((p <= upper - 1.0).all() for p in points):
            count += 1
    return count


@pytest.mark.parametrize("seed, m", [(0, 2), (1, 2), (2, 3), (3, 3)])
def test_hypervolume_matches_brute_force_on_integer_points(seed, m):
    rng = np.random.default_rng(seed)
    reference = np.full(m, 8.0)
    points = rng.integers(0, 9, (12, m)).astype(float)  # some points not below the reference
    assert hypervolume(points, reference) == pytest.approx(_brute_force(points, reference))
    if m == 2:
        assert hypervolume_2d(points, reference) == pytest.approx(_brute_force(points, reference))


@pytest.mark.parametrize("seed", range(5))
def test_pymoo_and_the_2d_sweep_agree_on_random_fronts(seed):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, 30))
    front = np.stack([t, (1 - t) ** rng.uniform(0.3, 3)], 1)  # convex or concave
    noisy = np.concatenate([front, front + rng.uniform(0, 0.3, front.shape)])  # plus dominated points
    reference = np.array([1.2, 1.1])
    hv = hypervolume(noisy, reference)
    assert hv == pytest.approx(hypervolume_2d(noisy, reference), rel=1e-12)
    assert hv == pytest.approx(hypervolume(noisy[nondominated(noisy)], reference), rel=1e-12)
    assert nondominated(noisy)[: len(front)].all()
    # A point that does not dominate the reference adds nothing.
    assert hypervolume(np.vstack([noisy, [[1.3, 0.0]]]), reference) == pytest.approx(hv)


def test_degenerate_inputs():
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0
    assert hypervolume([[2.0, 2.0]], [1, 1]) == 0.0
    assert hypervolume([[0.5, 0.25]], [1, 1]) == pytest.approx(0.375)
    with pytest.raises(ConfigError, match="objectives"):
        hypervolume([[0.1, 0.2, 0.3]], [1, 1])


def test_synthetic_true_front_hypervolume_quadrature_matches_a_dense_sample():
    problem = SineFonseca(dim=3)
    exact = problem.front_hypervolume((1.0, 1.0))
    dense = hypervolume(problem.pareto_front(np.linspace(-1, 1, 20001)), [1.0, 1.0])
    assert dense < exact < dense + 1e-3  # a finite sample dominates slightly less
    assert exact == pytest.approx(0.3421, abs=1e-4)
    with pytest.raises(ConfigError, match="reference point"):
        problem.front_hypervolume((0.5, 1.0))


# --------------------------------------------------------------------------- table and figure


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def _fake_runs(root: Path) -> None:
    """Metrics files of a controllable experiment and of a standard one it is compared with."""
    for seed in (0, 1):
        for method, shift in (("ctrl_pareto", 0.0), ("phn_ls", 0.1)):
            curve = [{"preference": [p, 1 - p], "losses": {"left": 0.3 + shift + 0.5 * (1 - p), "right": 0.3 + shift + 0.5 * p},
                      "accuracies": {"left": 90 - 10 * (1 - p), "right": 90 - 10 * p}} for p in np.linspace(0, 1, 5)]
            points = [[c["losses"]["left"], c["losses"]["right"]] for c in curve]
            _write(root / pipeline.METRICS_PATTERN.format(profile="quick", experiment="mm_ctrl", method=method, variant="default", seed=seed), {
                "experiment": "mm_ctrl", "method": method, "variant": "default", "seed": seed, "preference": None, "task": None,
                "tasks": task_directions(["left", "right"]),
                "splits": {"test": {"left": {"accuracy": 85.0, "loss": 0.55 + shift}, "right": {"accuracy": 85.0, "loss": 0.55 + shift}}},
                "curve": {"test": curve}, "hypervolume": {"reference": [2.0, 2.0], "test": hypervolume(points, [2, 2])},
                "parameters": {"hypernetwork": 100, "target": 90},
            })
        for variant, (a, b) in {"pref_0.667-0.333": (0.4, 0.9), "pref_0.333-0.667": (0.9, 0.4)}.items():
            _write(root / pipeline.METRICS_PATTERN.format(profile="quick", experiment="mm", method="linear", variant=variant, seed=seed), {
                "experiment": "mm", "method": "linear", "variant": variant, "seed": seed, "preference": [0.5, 0.5], "task": None,
                "tasks": task_directions(["left", "right"]),
                "splits": {"test": {"left": {"accuracy": 80.0, "loss": a}, "right": {"accuracy": 80.0, "loss": b}}},
            })
        for t, task in enumerate(("left", "right")):
            _write(root / pipeline.METRICS_PATTERN.format(profile="quick", experiment="mm", method="single_task", variant=f"task-{task}", seed=seed), {
                "experiment": "mm", "method": "single_task", "variant": f"task-{task}", "seed": seed, "preference": None, "task": t,
                "tasks": task_directions(["left", "right"]),
                "splits": {"test": {"left": {"accuracy": 95.0, "loss": 0.2}, "right": {"accuracy": 95.0, "loss": 0.2}}},
            })


def test_hypervolume_table_and_tradeoff_figure_include_the_compared_experiment(tmp_path, monkeypatch):
    from mtlpareto.figures import FIGURES
    from mtlpareto.metrics.aggregate import load_metrics
    from mtlpareto.metrics.tables import TABLES

    _fake_runs(tmp_path)
    monkeypatch.chdir(tmp_path)
    df = load_metrics(sorted(Path("results/quick/runs").rglob("metrics.json")))
    table = TABLES.get("hypervolume")(df).set_index("method")
    assert list(table.index) == ["ctrl_pareto", "phn_ls", "linear", "single_task"]
    curve_hv = hypervolume([[0.3 + 0.5 * (1 - p), 0.3 + 0.5 * p] for p in np.linspace(0, 1, 5)], [2, 2])
    assert table.loc["ctrl_pareto", "mean"] == pytest.approx(curve_hv, abs=1e-6)
    assert table.loc["ctrl_pareto", "std"] == 0 and table.loc["ctrl_pareto", "n_seeds"] == 2  # identical seeds
    assert table.loc["linear", "mean"] == pytest.approx(hypervolume([[0.4, 0.9], [0.9, 0.4]], [2, 2]), abs=1e-6)
    assert table.loc["single_task", "mean"] == pytest.approx(1.8 ** 2, abs=1e-6)
    assert table.loc["ctrl_pareto", "params_hypernetwork"] == 100
    fig = FIGURES.get("tradeoff_curves")(df, "mm_ctrl")
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, outside the data
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count(f"Controllable Pareto MTL (HV {curve_hv:.3f} ± 0.000 (sd), 2 seeds)") == 1
    assert labels.count("Grid search (mm, 2 seeds)") == 1 and labels.count("Single task (mm, 2 seeds)") == 1
    assert fig.axes[0].get_xlabel() == "left task: test loss (cross-entropy)"
    assert fig.axes[-1].get_ylabel() == "right task: test accuracy [%]"
    # the HV reference point is marked on the loss panel
    assert any(t.get_text() == "HV reference (2, 2)" for t in fig.axes[0].texts)


def test_compare_with_adds_the_other_experiments_metrics_to_the_report_inputs(repo_params):
    params = copy.deepcopy(repo_params)
    quick = params["profiles"]["quick"]
    exp = copy.deepcopy(quick["experiments"]["multimnist"])
    exp.update(methods={"ctrl_linear": {}}, tables=["hypervolume"], figures=["tradeoff_curves"], compare_with="multimnist")
    quick["experiments"] = {"multimnist": quick["experiments"]["multimnist"], "mm_ctrl": exp}
    prof = load_profile(params, "quick")
    own = [pipeline.metrics_path(prof, r) for r in prof.runs("mm_ctrl")]
    other = [pipeline.metrics_path(prof, r) for r in prof.runs("multimnist")]
    assert pipeline.experiment_metrics(prof, "mm_ctrl") == own + other
    assert pipeline.experiment_metrics(prof, "multimnist") == other
    stage = next(s for s in pipeline.stages(prof) if s.name == "figure-mm_ctrl-tradeoff_curves")
    assert set(other) <= set(stage.deps)
    exp["compare_with"] = "nope"
    with pytest.raises(ConfigError, match="compare_with: 'nope'"):
        pipeline.experiment_metrics(load_profile(params, "quick"), "mm_ctrl")
