"""The dense table: per-task metrics and delta_m both ways, by hand on a small frame."""

from __future__ import annotations

import pandas as pd
import pytest

from mtlpareto.metrics.aggregate import COLUMNS
from mtlpareto.metrics.tables import TABLES, to_markdown

# task -> metric -> (higher is better, primary)
METRICS = {"semantic": {"miou": (True, True), "pixel_acc": (True, False)}, "depth": {"abs_err": (False, True), "rel_err": (False, False)}}
ORDER = {"semantic": 0, "depth": 1}
SINGLE = {"semantic": {"miou": 0.40, "pixel_acc": 0.80}, "depth": {"abs_err": 0.50, "rel_err": 0.20}}
UNIFORM = [  # two seeds
    {"semantic": {"miou": 0.44, "pixel_acc": 0.84}, "depth": {"abs_err": 0.45, "rel_err": 0.22}},
    {"semantic": {"miou": 0.42, "pixel_acc": 0.80}, "depth": {"abs_err": 0.55, "rel_err": 0.20}},
]


def _frame() -> pd.DataFrame:
    rows = []

    def add(method, variant, seed, task_index, scores):
        for split in ("val", "test"):
            for task, metrics in scores.items():
                for metric, value in metrics.items():
                    higher, primary = METRICS[task][metric]
                    rows.append(["scenes", method, variant, seed, None, task_index, split, task, metric, value, higher, primary, ORDER[task], None])
                rows.append(["scenes", method, variant, seed, None, task_index, split, task, "loss", 1.0, False, False, ORDER[task], None])

    for seed, scores in enumerate(UNIFORM):
        add("uniform", "default", seed, None, scores)
    for t, task in enumerate(SINGLE):
        for seed in (0, 1):
            junk = {other: {m: 0.01 for m in METRICS[other]} for other in SINGLE if other != task}
            add("single_task", f"task-{task}", seed, t, {task: SINGLE[task], **junk})
    return pd.DataFrame(rows, columns=COLUMNS)


def _delta(scores: dict, keys: list[tuple[str, str]]) -> float:
    total = 0.0
    for task, metric in keys:
        sign = 1 if METRICS[task][metric][0] else -1
        total += sign * (scores[task][metric] - SINGLE[task][metric]) / SINGLE[task][metric]
    return 100 * total / len(keys)


def test_columns_and_delta_m_both_ways():
    table = TABLES.get("dense")(_frame())
    uniform = table[table.method == "uniform"].set_index("column")
    assert uniform.loc["semantic miou", "mean"] == pytest.approx(0.43)
    assert uniform.loc["depth abs_err", "mean"] == pytest.approx(0.50)
    assert "semantic loss" not in uniform.index
    primary = [("semantic", "miou"), ("depth", "abs_err")]
    every = [(t, m) for t in METRICS for m in METRICS[t]]
    per_task = [_delta(s, primary) for s in UNIFORM]
    all_metrics = [_delta(s, every) for s in UNIFORM]
    assert uniform.loc["Δm, one metric per task [%]", "mean"] == pytest.approx(sum(per_task) / 2, abs=1e-4)
    assert uniform.loc["Δm, every metric [%]", "mean"] == pytest.approx(sum(all_metrics) / 2, abs=1e-4)
    assert uniform.loc["Δm, every metric [%]", "std"] == pytest.approx(abs(all_metrics[0] - all_metrics[1]) / 2**0.5, abs=1e-4)
    single = table[table.method == "single_task"].set_index("column")
    assert single.loc["depth abs_err", "mean"] == pytest.approx(0.5) and "Δm, every metric [%]" not in single.index


def test_markdown_headers_carry_each_columns_direction():
    md = to_markdown(TABLES.get("dense")(_frame()), "scenes: dense", "scenes")
    header = md.splitlines()[2]
    assert "semantic miou ↑" in header and "depth abs_err ↓" in header and "Δm, one metric per task [%] ↑" in header
    assert header.index("semantic miou") < header.index("semantic pixel_acc") < header.index("depth abs_err")  # task order, primary first


def test_a_method_run_in_two_compared_experiments_gives_one_row_each():
    """uniform on hard sharing (scenes) and on MPPS (scenes_mpps): separate rows, each with its own
    seeds' mean and delta_m against the same single-task models."""
    base = _frame()
    other = base[base.method == "uniform"].copy()
    other["experiment"] = "scenes_mpps"
    other.loc[(other.task == "semantic") & (other.metric == "miou"), "value"] += 0.10
    table = TABLES.get("dense")(pd.concat([base, other], ignore_index=True))
    rows = table[(table.method == "uniform") & (table.column == "semantic miou")].set_index("label")
    assert rows.loc["Uniform scaling (scenes)", "mean"] == pytest.approx(0.43)
    assert rows.loc["Uniform scaling (scenes_mpps)", "mean"] == pytest.approx(0.53)
    delta = table[(table.method == "uniform") & (table.metric == "delta_m_per_task")].set_index("label")["mean"]
    primary = [("semantic", "miou"), ("depth", "abs_err")]
    shifted = [{**s, "semantic": {**s["semantic"], "miou": s["semantic"]["miou"] + 0.10}} for s in UNIFORM]
    assert delta["Uniform scaling (scenes)"] == pytest.approx(sum(_delta(s, primary) for s in UNIFORM) / 2, abs=1e-4)
    assert delta["Uniform scaling (scenes_mpps)"] == pytest.approx(sum(_delta(s, primary) for s in shifted) / 2, abs=1e-4)
    assert set(table.entry_experiment.dropna()) == {"scenes", "scenes_mpps"}


def test_mpps_rows_name_their_mask_kind():
    from mtlpareto.metrics.aggregate import sharing_label

    assert sharing_label({"sharing_log": [{"mask": "gaussian", "exclusive_capacity": 0.9}]}) == "MPPS+G"
    assert sharing_label({"sharing_log": [{"mask": "bernoulli"}]}) == "MPPS+B"
    assert sharing_label({}) is None
    base = _frame()
    other = base[base.method == "uniform"].copy()
    other["experiment"], other["sharing"] = "scenes_mpps", "MPPS+B"
    table = TABLES.get("dense")(pd.concat([base, other], ignore_index=True))
    assert {"Uniform scaling (scenes)", "Uniform scaling (MPPS+B, scenes_mpps)"} <= set(table.label)
