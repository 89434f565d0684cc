"""Regression check of reported numbers: passes on the real metrics, fails on a perturbed one."""

from __future__ import annotations

import pandas as pd
import pytest

from mtlpareto.metrics.reported import Band, check, current_numbers, load_reported, published_lookup, write_reported
from mtlpareto.metrics.tables import write_table


def _frame(shift: float = 0.0) -> pd.DataFrame:
    rows = []
    for method, variant, base in [("uniform", "default", 90.0), ("mgda_ub", "default", 91.0)]:
        for seed in (0, 1, 2):
            for split in ("val", "test"):
                for t, task in enumerate(("left", "right")):
                    value = base + seed * 0.5 - t + (shift if (method, task, split) == ("mgda_ub", "right", "test") else 0.0)
                    rows.append(dict(experiment="multimnist", method=method, variant=variant, seed=seed, preference=None,
                                     task_index=None, split=split, task=task, metric="accuracy", value=value))
    return pd.DataFrame(rows)


def _numbers(tmp_path, df, name="t"):
    csv, md = tmp_path / f"{name}.csv", tmp_path / f"{name}.md"
    write_table("accuracy", df, "multimnist", "title", csv, md)
    return current_numbers({("multimnist", "accuracy"): csv})


def test_check_passes_on_the_real_numbers_and_names_a_perturbed_one(tmp_path):
    numbers = _numbers(tmp_path, _frame())
    assert numbers[("multimnist", "accuracy", "mgda_ub", "right", "accuracy")] == pytest.approx(90.5)
    path = tmp_path / "reported.yaml"
    write_reported(path, "quick", numbers, Band(abs=0.01))
    reported, band = load_reported(path)
    assert len(reported) == 4
    assert check(numbers, reported, band) == []

    perturbed = _numbers(tmp_path, _frame(shift=0.3), "p")
    problems = check(perturbed, reported, band)
    assert len(problems) == 1
    assert "multimnist/accuracy/mgda_ub/right/accuracy" in problems[0] and "90.8" in problems[0]
    # inside a wider band the same change passes
    assert check(perturbed, reported, Band(abs=0.5)) == []
    # a number that disappeared is reported too
    del perturbed[("multimnist", "accuracy", "uniform", "left", "accuracy")]
    assert any("no such number" in p for p in check(perturbed, reported, Band(abs=0.5)))


def test_relative_band():
    assert Band(abs=0.0, rel=0.01).width(200.0) == pytest.approx(2.0)
    assert Band(abs=0.5, rel=0.001).width(10.0) == pytest.approx(0.5)


def test_published_numbers_have_sources_and_directions():
    from conftest import REPO

    published = published_lookup(REPO / "results/published.yaml")
    assert published[("multimnist", "mgda_ub", "left", "accuracy")]["value"] == 97.26
    for entry in published.values():
        assert entry["direction"] in ("higher", "lower")
        assert "Table" in entry["citation"]


def test_markdown_puts_published_beside_ours(tmp_path, monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)  # published.yaml is read relative to the project root
    _numbers(tmp_path, _frame())
    md = (tmp_path / "t.md").read_text()
    assert "left (paper)" in md and "97.26" in md and "96.46" in md and "Table 3" in md


def test_unreadable_reported_and_table_files_are_named(tmp_path):
    from mtlpareto.errors import ConfigError

    numbers = _numbers(tmp_path, _frame())
    path = tmp_path / "reported.yaml"
    write_reported(path, "quick", numbers, Band(abs=0.01))
    path.write_text(path.read_text()[:-25] + "\n  - {value: [")  # truncated mid-entry
    with pytest.raises(ConfigError, match=f"(?s)reported numbers {path} are unreadable .*git checkout"):
        load_reported(path)
    table = tmp_path / "t.csv"
    header = table.read_text().splitlines()[0]
    table.write_text(header + "\nuniform,Uniform,default,left\n")  # cut inside a row: no mean
    with pytest.raises(ConfigError, match=f"table {table} is unreadable"):
        current_numbers({("multimnist", "accuracy"): table})
