"""Random Loss Weighting (Lin et al., "Reasonable effectiveness of random weighting", 2021).

Every step draws w = softmax(z), z ~ N(0, I_T) (the paper's normal-distribution variant),
and backpropagates sum_t w_t L_t. Draws come from the method's own generator, seeded from the
run, so a run is reproducible and a resumed run continues the same stream.
"""

from __future__ import annotations

import torch

from mtlpareto.methods import METHODS
from mtlpareto.methods.base import Method, StepContext, seeded_generator


@METHODS.register("rlw")
class RLW(Method):
    label = "RLW"

    def __init__(self, n_tasks: int, preference=None, task=None, seed: int | None = None) -> None:
        super().__init__(n_tasks, preference, task)
        self.generator = seeded_generator(seed, "rlw")

    def draw(self) -> torch.Tensor:
        return torch.softmax(torch.randn(self.n_tasks, generator=self.generator), dim=0)

    def backward(self, ctx: StepContext) -> torch.Tensor:
        weights = self.draw()
        ctx.backward_weighted(weights)
        return weights

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
