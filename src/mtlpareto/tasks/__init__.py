"""Task types behind one registry: a task owns its loss, its metrics and their directions.

A dataset kind lists its tasks as `Task` objects; training, evaluation, tables, "best on
validation" and delta_m read everything task-specific from them.  Adding a task type (depth
regression, segmentation, ...) is one module with a `Task` subclass registered by
`@TASK_TYPES.register("name")`, plus its import line below.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.registry import Registry


class MetricMeter:
    """Streaming metrics of one task over a split: `update` per batch, then `compute`."""

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float | None]:
        raise NotImplementedError


class Task:
    """One task of a multi-task problem.

    `metrics` maps each metric the task reports to True when higher is better; `primary` is
    the metric that model selection ("best on validation") and delta_m read first.
    """

    type_name: ClassVar[str]
    metrics: ClassVar[dict[str, bool]]
    primary: ClassVar[str]

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a task needs a non-empty name, got {name!r}")
        self.name = name

    @property
    def out_channels(self) -> int:
        """Size of the head's output (classes, channels of a dense map, 1 for a scalar)."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a batch."""
        raise NotImplementedError

    def meter(self) -> MetricMeter:
        raise NotImplementedError

    def higher_is_better(self, metric: str) -> bool:
        if metric not in self.metrics:
            raise ConfigError(f"task {self.name!r} ({self.type_name}) has no metric {metric!r}; it reports {', '.join(self.metrics)}")
        return self.metrics[metric]

    def config(self) -> dict[str, Any]:
        """What rebuilds this task (`build_task`): stored in checkpoints."""
        return {"type": self.type_name, "name": self.name}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({options})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config().items())))


TASK_TYPES: Registry[type[Task]] = Registry("task type")


def build_task(config: dict[str, Any]) -> Task:
    """The task of a `Task.config()` dictionary."""
    options = {k: v for k, v in config.items() if k != "type"}
    return TASK_TYPES.get(config["type"])(**options)


def task_targets(targets: Any, tasks: list[Task]) -> list[torch.Tensor]:
    """Per-task targets of a batch: the columns of an [N, T] tensor, or a dict's entries by task name.

    Classification labels are stored as one [N, T] tensor; dense targets (label maps, depth)
    as {task name: [N, ...]}.
    """
    if isinstance(targets, dict):
        missing = [t.name for t in tasks if t.name not in targets]
        if missing:
            raise ConfigError(f"the dataset has no targets for task(s) {', '.join(missing)}; it has {', '.join(targets)}")
        return [targets[t.name] for t in tasks]
    if targets.dim() != 2 or targets.shape[1] != len(tasks):
        raise ConfigError(f"targets of shape {tuple(targets.shape)} do not hold one column per task ({len(tasks)} tasks)")
    return [targets[:, t] for t in range(len(tasks))]


def index_targets(targets: Any, index: torch.Tensor) -> Any:
    """Rows `index` of a target tensor or of every tensor of a target dict."""
    if isinstance(targets, dict):
        return {k: v[index] for k, v in targets.items()}
    return targets[index]


def targets_to(targets: Any, device: torch.device | str) -> Any:
    if isinstance(targets, dict):
        return {k: v.to(device) for k, v in targets.items()}
    return targets.to(device)


# Registry lines: one per task type.
from mtlpareto.tasks import classification, objective  # noqa: E402,F401
from mtlpareto.tasks import segmentation  # noqa: E402,F401
from mtlpareto.tasks import depth  # noqa: E402,F401
from mtlpareto.tasks import normals  # noqa: E402,F401
from mtlpareto.tasks import instance  # noqa: E402,F401
from mtlpareto.tasks import saliency, edges  # noqa: E402,F401

__all__ = ["TASK_TYPES", "MetricMeter", "Task", "build_task", "index_targets", "targets_to", "task_targets"]
