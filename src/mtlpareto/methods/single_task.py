"""Single-task baseline: one dedicated model per task (only that task's loss trains it)."""

from __future__ import annotations

import torch

from mtlpareto.errors import ConfigError
from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext


@METHODS.register("single_task")
class SingleTask(Method):
    label = "Single task"
    sweep = "tasks"

    def __init__(self, n_tasks: int, preference=None, task: int | None = None) -> None:
        super().__init__(n_tasks, preference, task)
        if task is None or not 0 <= task < n_tasks:
            raise ConfigError(f"single_task needs a task index in [0, {n_tasks}), got {task!r}")
        self.weights = torch.zeros(n_tasks)
        self.weights[task] = 1.0

    def backward(self, ctx: StepContext) -> torch.Tensor:
        ctx.backward_weighted(self.weights)
        return self.weights
