"""Uniform scaling: minimise (1/T) sum_t L_t."""

from __future__ import annotations

import torch

from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext


@METHODS.register("uniform")
class Uniform(Method):
    label = "Uniform scaling"
    def __init__(self, n_tasks: int, preference=None, task=None) -> None:
        super().__init__(n_tasks, preference, task)
        self.weights = torch.full((n_tasks,), 1.0 / n_tasks)

    def backward(self, ctx: StepContext) -> torch.Tensor:
        ctx.backward_weighted(self.weights)
        return self.weights
