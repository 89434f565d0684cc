"""Tables: sample std (ddof=1) checked against `statistics`, one-seed and closed-form rows
without ±, units / better direction / reference point in the Markdown, and a note saying why
a table has no paper column."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from conftest import long_frame, task_directions
import yaml

from mtlpareto import pipeline
from mtlpareto.metrics.aggregate import COLUMNS, load_metrics, method_summary
from mtlpareto.metrics.reported import current_numbers
from mtlpareto.metrics.tables import TABLES, format_cell, to_markdown, write_table

# (method, seed) -> (left, right) test accuracy; validation = test + 1
ACCURACY = {
    ("uniform", 0): (70.0, 60.0), ("uniform", 1): (74.0, 61.0), ("uniform", 2): (75.0, 66.0),
    ("mgda_ub", 0): (80.0, 50.0), ("mgda_ub", 1): (90.0, 55.0),
    ("pcgrad", 0): (66.0, 67.0),  # one seed
}


def accuracy_frame() -> pd.DataFrame:
    rows = []
    for (method, seed), values in ACCURACY.items():
        for split, shift in (("test", 0.0), ("val", 1.0)):
            for task, v in zip(("left", "right"), values):
                rows.append(["mm", method, "default", seed, None, None, split, task, "accuracy", v + shift])
    return long_frame(rows)


def test_method_summary_std_is_the_sample_std_and_nan_for_one_seed():
    table = method_summary(accuracy_frame(), "accuracy").set_index(["method", "task"])
    assert table.loc[("uniform", "left"), "std"] == round(statistics.stdev([70.0, 74.0, 75.0]), 4)
    assert table.loc[("uniform", "right"), "std"] == round(statistics.stdev([60.0, 61.0, 66.0]), 4)
    # two seeds: |a - b| / sqrt(2), not the population std |a - b| / 2
    assert table.loc[("mgda_ub", "left"), "std"] == pytest.approx(10.0 / math.sqrt(2), abs=1e-4)
    assert math.isnan(table.loc[("pcgrad", "left"), "std"]) and table.loc[("pcgrad", "left"), "n_seeds"] == 1


def test_format_cell_shows_no_spread_without_one():
    assert format_cell(72.9, 2.687, 3) == "72.90 ± 2.69"
    assert format_cell(0.194178, float("nan"), 1, decimals=3) == "0.194"
    assert format_cell(0.342116, float("nan"), 0, decimals=3) == "0.342"  # closed form


def test_accuracy_markdown_states_units_direction_ddof_and_prints_no_plus_minus_for_one_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no published numbers here
    csv, md = tmp_path / "t.csv", tmp_path / "t.md"
    write_table("accuracy", accuracy_frame(), "mm", "mm: accuracy", csv, md)
    text = md.read_text()
    assert "| Method | left accuracy [%] ↑ | right accuracy [%] ↑ | seeds |" in text
    assert "| PCGrad | 66.00 | 67.00 | 1 |" in text
    assert f"| MGDA-UB | 85.00 ± {10 / math.sqrt(2):.2f} | 52.50 ± {5 / math.sqrt(2):.2f} | 2 |" in text
    assert "sample standard deviation (ddof = 1)" in text
    assert "No paper column: the seed papers publish no accuracy for this experiment" in text
    # what `mtlpareto check-reported` reads is still there, one-seed rows included
    numbers = current_numbers({("mm", "accuracy"): csv})
    assert numbers[("mm", "accuracy", "pcgrad", "left", "accuracy")] == 66.0
    assert numbers[("mm", "accuracy", "uniform", "right", "accuracy")] == pytest.approx(187.0 / 3, abs=1e-4)


def test_average_error_std_is_the_sample_std_over_per_seed_averages():
    from mtlpareto.metrics.error_tables import error_frame

    table = TABLES.get("average_error")(accuracy_frame()).set_index("method")
    per_seed = error_frame(accuracy_frame()).query("method == 'uniform' and split == 'test'").groupby("seed").value.mean()
    assert table.loc["uniform", "std"] == round(statistics.stdev(per_seed), 4)
    assert math.isnan(table.loc["pcgrad", "std"])


# --------------------------------------------------------------------------- hypervolume tables


def _write(root: Path, experiment: str, method: str, seed: int, hv: float, **extra) -> None:
    path = root / pipeline.METRICS_PATTERN.format(profile="quick", experiment=experiment, method=method, variant="default", seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    curve = [{"preference": [p, 1 - p], "losses": {"f1": p, "f2": 1 - p}, "accuracies": {"f1": 0.0, "f2": 0.0}} for p in (0.0, 0.5, 1.0)]
    path.write_text(json.dumps({
        "experiment": experiment, "method": method, "variant": "default", "seed": seed, "preference": None, "task": None,
        "tasks": task_directions(["f1", "f2"], "objective"), "splits": {"test": {"f1": {"loss": 0.5}, "f2": {"loss": 0.5}}}, "curve": {"test": curve},
        "hypervolume": {"reference": [1.0, 1.0], "test": hv}, "parameters": {"hypernetwork": 10, "target": 5}, **extra,
    }))


def test_hypervolume_markdown_states_the_reference_point_and_lists_the_closed_form_without_seeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    true = {"true_front": {"problem": "sine_fonseca", "dim": 3, "hypervolume": 0.342116}}
    for seed, hv in enumerate((0.30, 0.32, 0.31)):
        _write(tmp_path, "syn", "ctrl_pareto", seed, hv, front_coverage=0.6, **true)
    _write(tmp_path, "syn", "ctrl_linear", 0, 0.25, front_coverage=0.5, **true)
    df = load_metrics(sorted(Path("results/quick/runs").rglob("metrics.json")))
    table = TABLES.get("hypervolume")(df).set_index("method")
    assert table.loc["ctrl_pareto", "std"] == round(statistics.stdev([0.30, 0.32, 0.31]), 6)
    assert math.isnan(table.loc["ctrl_linear", "std"])
    assert table.loc["true_front", "n_seeds"] == 0 and math.isnan(table.loc["true_front", "std"])
    text = to_markdown(table.reset_index(), "syn: hypervolume", "syn")
    assert "| Method | hypervolume ↑ | front covered [%] ↑ | seeds |" in text
    assert "| True Pareto front (closed form) | 0.342 | 100 | closed form |" in text
    assert "| Controllable LS | 0.250 | 50 | 1 |" in text
    assert "| Controllable Pareto MTL | 0.310 ± 0.010 | 60 | 3 |" in text
    assert "against the reference point (1, 1)" in text
    assert "±" not in text.split("True Pareto front")[1].splitlines()[0]


def test_hypervolume_markdown_says_why_the_papers_numbers_are_not_beside_ours(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "mm_ctrl", "ctrl_pareto", 0, 0.2)
    (tmp_path / "results/published.yaml").write_text(yaml.safe_dump({
        "sources": {"lin": "Lin et al. 2020"},
        "entries": [{"source": "lin", "table": "App. C Table 2", "experiment": "mm_ctrl", "method": "ctrl_pareto", "task": "all",
                     "metric": "hypervolume", "value": 16.74, "direction": "higher", "comparable": False,
                     "why_not_comparable": "another normalisation."}],
    }))
    df = load_metrics(sorted(Path("results/quick/runs").rglob("metrics.json")))
    text = to_markdown(TABLES.get("hypervolume")(df), "mm_ctrl: hypervolume", "mm_ctrl")
    assert "(paper)" not in text and "16.74" not in text
    assert "No paper column: Lin et al. 2020, App. C Table 2 reports this hypervolume, but not comparably: another normalisation." in text


def test_the_repository_hypervolume_entries_say_why_they_are_not_comparable():
    from conftest import REPO

    doc = yaml.safe_load((REPO / "results/published.yaml").read_text())
    incomparable = [e for e in doc["entries"] if e.get("comparable", True) is False]
    assert incomparable and all(e.get("why_not_comparable") for e in incomparable)
