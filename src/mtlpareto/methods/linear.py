"""Linear scalarisation with fixed preference weights; over the preference grid it is grid search."""

from __future__ import annotations

import torch

from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, preference_tensor


@METHODS.register("linear")
class Linear(Method):
    label = "Grid search"
    sweep = "preferences"

    def __init__(self, n_tasks: int, preference: tuple[float, ...] | None = None, task=None) -> None:
        super().__init__(n_tasks, preference, task)
        self.weights = preference_tensor(preference, n_tasks, "linear")

    def backward(self, ctx: StepContext) -> torch.Tensor:
        ctx.backward_weighted(self.weights)
        return self.weights
