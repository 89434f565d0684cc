"""Dataset kinds behind one registry.

A kind describes its tasks (name, number of classes, metric direction), fetches its raw
files (download with checksums, a mirror, or manual placement) and builds the processed
tensors.  Adding a dataset is one new module plus one import line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from mtlpareto.registry import Registry

RAW_ROOT = Path("data/raw")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, output size and how it is scored (LibMTL-style task dictionary)."""

    name: str
    n_classes: int
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    higher_is_better: bool = True


class DatasetKind(Protocol):
    @staticmethod
    def tasks(spec: dict) -> list[TaskSpec]: ...

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        """Make the raw files available under root (download/verify); return a manifest."""

    @staticmethod
    def build(root: Path, **options) -> dict:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y), "tasks": [...], "meta": {...}}."""


DATASETS: Registry[DatasetKind] = Registry("dataset kind")


def task_specs(spec: dict) -> list[TaskSpec]:
    return DATASETS.get(spec["kind"]).tasks(spec)


def task_names(spec: dict) -> list[str]:
    return [t.name for t in task_specs(spec)]


def dataset_options(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "kind"}


def input_shape(data: dict) -> tuple[int, ...]:
    x: torch.Tensor = data["train"][0]
    return tuple(x.shape[1:])


# Registry lines: one per dataset kind.
from mtlpareto.data import multimnist_kind  # noqa: E402,F401
from mtlpareto.data import celeba  # noqa: E402,F401
from mtlpareto.data import synthetic_kind, cifar100_tasks  # noqa: E402,F401
