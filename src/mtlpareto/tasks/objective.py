"""Objective: the head's output is the objective value itself (closed-form problems).

The synthetic problems of Lin et al. 2020 (data/synthetic.py) have no samples: the "network"
is a decision vector and each task's loss is one of the problem's objectives, to minimise.
"""

from __future__ import annotations

import torch

from mtlpareto.tasks import TASK_TYPES, MetricMeter, Task


class _ObjectiveMeter(MetricMeter):
    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, output: torch.Tensor, target: torch.Tensor | None = None) -> None:
        self.values.append(float(output.mean()))

    def compute(self) -> dict[str, float | None]:
        return {"loss": round(sum(self.values) / len(self.values), 8) if self.values else None}


@TASK_TYPES.register("objective")
class ObjectiveTask(Task):
    type_name = "objective"
    metrics = {"loss": False}
    primary = "loss"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return output.reshape(())

    def meter(self) -> MetricMeter:
        return _ObjectiveMeter()
