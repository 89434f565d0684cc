"""Dataset kinds behind one registry.

A kind describes its tasks (`mtlpareto.tasks.Task` objects: loss, metrics, directions) and
its input shape, fetches its raw files (download with checksums, a mirror, or manual
placement) and builds the processed tensors.  Adding a dataset is one new module plus one
import line below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from mtlpareto.registry import Registry
from mtlpareto.tasks import Task

RAW_ROOT = Path("data/raw")


class DatasetKind(Protocol):
    @staticmethod
    def tasks(spec: dict) -> list[Task]: ...

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        """Shape of one input sample, known without the data (validation builds models from it)."""

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        """Make the raw files available under root (download/verify); return a manifest."""

    @staticmethod
    def build(root: Path, **options) -> dict:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y), "tasks": [...], "meta": {...}}."""


DATASETS: Registry[DatasetKind] = Registry("dataset kind")


def complete_spec(spec: dict) -> dict:
    """A dataset spec with every option its kind's `build` accepts, defaults filled from that
    signature: the one place a dataset option's default lives."""
    import inspect

    params = inspect.signature(DATASETS.get(spec["kind"]).build).parameters
    defaults = {n: p.default for n, p in params.items() if n != "root" and p.default is not inspect.Parameter.empty}
    return {**defaults, **spec}


def dataset_tasks(spec: dict) -> list[Task]:
    """The tasks of a dataset spec (params.yaml's entry)."""
    spec = complete_spec(spec)
    return DATASETS.get(spec["kind"]).tasks(spec)


def fetch_dataset(spec: dict, root: Path) -> dict:
    """Make a dataset spec's raw files available under `root`; returns its manifest."""
    spec = complete_spec(spec)
    return DATASETS.get(spec["kind"]).fetch(spec, Path(root))


def dataset_input_shape(spec: dict) -> tuple[int, ...]:
    """Shape of one input sample of a dataset spec, without its data."""
    spec = complete_spec(spec)
    return tuple(DATASETS.get(spec["kind"]).input_shape(spec))


def task_names(spec: dict) -> list[str]:
    return [t.name for t in dataset_tasks(spec)]


def dataset_options(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "kind"}


def input_shape(data: dict) -> tuple[int, ...]:
    """Shape of one input sample of a built dataset."""
    x: torch.Tensor = data["train"][0]
    return tuple(x.shape[1:])


# Registry lines: one per dataset kind.
from mtlpareto.data import multimnist_kind  # noqa: E402,F401
from mtlpareto.data import celeba  # noqa: E402,F401
from mtlpareto.data import synthetic_kind, cifar100_tasks  # noqa: E402,F401
from mtlpareto.data import nyuv2  # noqa: E402,F401
from mtlpareto.data import cityscapes  # noqa: E402,F401
from mtlpareto.data import scenes  # noqa: E402,F401
from mtlpareto.data import pascal_context  # noqa: E402,F401
