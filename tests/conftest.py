"""Shared fixtures: a tiny, fast profile derived from the repository's params.yaml."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def tiny_params(methods: dict | None = None, seeds=(0,), epochs: int = 1, jobs: str = "per_run") -> dict:
    """A one-seed, one-epoch MultiMNIST profile on a few hundred offline digits.

    `jobs` per_run (one job per run, what most pipeline tests interrupt or inspect) unless asked.
    """
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    quick = copy.deepcopy(params["profiles"]["quick"])
    quick["seeds"] = list(seeds)
    quick["jobs"] = jobs
    quick["datasets"]["multimnist_5k"].update(train_size=512, val_size=128, test_size=256)
    exp = quick["experiments"]["multimnist"]
    quick["experiments"] = {"multimnist": exp}
    exp["train"].update(epochs=epochs, batch_size=128)
    exp["preference_grid"] = {"divisions": 2, "interior": True}
    if methods is not None:
        exp["methods"] = methods
    for options in exp["methods"].values():
        (options or {}).pop("seeds", None)  # every method on the tiny profile's seeds
    return {"profile": "tiny", "profiles": {"tiny": quick}}


def project_files(root: Path) -> None:
    """Files of the repository a pipeline run reads besides params.yaml (the papers' numbers)."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results/published.yaml").write_text((REPO / "results/published.yaml").read_text())


@pytest.fixture
def cli_env() -> dict:
    """Environment in which the `mtlpareto` console script of this interpreter is on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def task_directions(names, kind: str = "classification") -> dict:
    """The "tasks" entry evaluate writes into metrics.json, for hand-written records."""
    from mtlpareto.tasks.classification import ClassificationTask
    from mtlpareto.tasks.objective import ObjectiveTask
    from mtlpareto.training.evaluate import task_directions as directions

    tasks = [ClassificationTask(n, 10) if kind == "classification" else ObjectiveTask(n) for n in names]
    return directions(tasks)


def long_frame(rows: list[list]):
    """A long metrics frame from rows of its first ten columns (experiment ... value) of
    classification tasks: accuracy is the primary metric, higher is better; loss, lower."""
    import pandas as pd

    from mtlpareto.metrics.aggregate import COLUMNS

    df = pd.DataFrame(rows, columns=COLUMNS[:10])
    df["higher_is_better"] = df.metric == "accuracy"
    df["primary"] = df.metric == "accuracy"
    df["task_order"] = df.task.map({t: i for i, t in enumerate(dict.fromkeys(df.task))})
    df["source"] = None
    return df[COLUMNS]
