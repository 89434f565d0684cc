"""Closed-form synthetic multi-objective problems as a dataset kind (no files, no samples).

The "dataset" only records which problem to optimise; its `ClosedFormProblem` evaluates the
objectives of the network's solution directly.  Splits are empty tensors with the decision
dimension as feature size, so `input_shape(data)` gives the decision space to the
`decision_vector` model.  One training "epoch" is `steps_per_epoch` optimiser steps.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtlpareto.data import DATASETS
from mtlpareto.data.problems import ClosedFormProblem
from mtlpareto.errors import ConfigError
from mtlpareto.tasks import Task
from mtlpareto.tasks.objective import ObjectiveTask


@DATASETS.register("synthetic")
class SyntheticKind:
    """Two objectives f1, f2 of a closed-form problem (mtlpareto.data.synthetic)."""

    problem = ClosedFormProblem

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        return [ObjectiveTask(f"f{i + 1}") for i in range(2)]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (spec["dim"],)

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        return {"synthetic": {"problem": spec["problem"], "files": "none (closed form)"}}

    @staticmethod
    def build(root: Path, problem: str = "sine_fonseca", dim: int = 10, steps_per_epoch: int = 100) -> dict:
        from mtlpareto.data.synthetic import make_problem

        make_problem(problem, dim)  # validates the name and dimension
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ConfigError(f"synthetic dataset: steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
        empty = (torch.zeros(0, dim), torch.zeros(0, 2))
        return {
            "train": empty,
            "val": empty,
            "test": empty,
            "tasks": ["f1", "f2"],
            "meta": {"synthetic": {"problem": problem, "dim": dim, "steps_per_epoch": steps_per_epoch}},
        }
